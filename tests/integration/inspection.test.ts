import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { topics } from '@doorbell/core'
import { eventually, startLan } from '../src/harness'
import { pairViewer } from '../src/trust'

async function inspectionDuringARing (inspect: boolean, keepTraces?: { calls: number }): Promise<string[]> {
  const lan = await startLan({ inspect, ...(keepTraces ? { keepTraces } : {}) }, { inspect })
  // Keeping traces is off by default too: then the doorbell has no keeper (and, with inspection off, no recorder).
  assert.equal(lan.device.traces === null, keepTraces === undefined)
  assert.equal(lan.device.call.options.inspect === undefined, !inspect && keepTraces === undefined, 'an inspector is attached only when inspection or keeping is on')
  const seen: string[] = []
  // The inspector is the owner's: only an owner may subscribe to the home's inspection.
  const owner = await pairViewer(lan.hub, { name: 'Watcher', role: 'owner' })
  const watcher = mqtt.connect(lan.hub.mqttUrl, { clientId: `viewer-${owner.viewerId}-watcher`, username: owner.memberId, password: owner.token })
  try {
    const granted = await new Promise<number[]>((resolve, reject) => watcher.on('connect', () => {
      watcher.subscribe(topics.homeInspection('home'), (err, g) => { if (err) reject(err); else resolve((g ?? []).map((x) => x.qos)) })
    }))
    // A refused subscription would hear nothing too: it must have been granted for "nothing" to mean anything.
    assert.ok(granted.length === 1 && granted[0]! < 128, `the owner's subscription to inspection is granted (${granted.join(',')})`)
    watcher.on('message', (topic) => { seen.push(topic) })
    lan.button.press()
    await eventually('the device ringing', () => lan.device.call.getSnapshot().matches('ringing'))
    // Long enough for a batch (50 ms) and a roster (3 s) when inspection is on.
    await new Promise((resolve) => setTimeout(resolve, 3500))
    return seen
  } finally {
    watcher.end(true)
    await lan.stop()
  }
}

test('inspection off (the default): the device publishes nothing for the inspector', { timeout: 30_000 }, async () => {
  assert.deepEqual(await inspectionDuringARing(false), [])
})

test('keeping traces on, inspection off: the device still publishes nothing for the inspector', { timeout: 30_000 }, async () => {
  assert.deepEqual(await inspectionDuringARing(false, { calls: 2 }), [])
})

test('inspection on: the device publishes its machines on its inspect topic', { timeout: 30_000 }, async () => {
  const seen = await inspectionDuringARing(true)
  assert.ok(seen.length > 0)
  assert.ok(seen.every((t) => t === topics.inspect('home', 'front-door')))
})

test('the hub refuses inspection published under another source', { timeout: 30_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  const mallory = await pairViewer(lan.hub, { name: 'Mallory', role: 'resident', viewerId: 'mallory' })
  const client = mqtt.connect(lan.hub.mqttUrl, { clientId: 'viewer-mallory-tab', username: mallory.memberId, password: mallory.token, reconnectPeriod: 0 })
  await new Promise<void>((resolve) => client.on('connect', () => resolve()))
  const batch = { source: { kind: 'device', id: 'front-door', name: 'Front door' }, events: [{ type: 'event', at: 1, from: null, to: 'x', event: 'UNLOCK' }] }
  client.publish(topics.inspect('home', 'front-door'), JSON.stringify(batch))
  await eventually('the hub to refuse it', () => lan.lines.some((l) => l.includes('refused a publish') && l.includes('may not publish inspection')))
  client.end(true)
})
