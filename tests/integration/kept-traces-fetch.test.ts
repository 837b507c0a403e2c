/**
 * The owner fetches the doorbell's kept call traces from Home settings (issue 25): the
 * `traces-list` and `trace-read` commands outside a call, over a real hub's MQTT to a real
 * doorbell, from the viewer's own `Home` (werift + mqtt.js in Node). Owner only: a resident and
 * a replayed or stale command are refused by the doorbell and audited. A trace bigger than one
 * result travels in chunks, reassembles, and is checked against the doorbell's SHA-256.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Grant, NO_CALL_SESSION, TRACE_CHUNK_BYTES, makeTrace, parseTrace, peek, signTracesCommand } from '@doorbell/core'
import { HubClient, KeptTraceError } from '@doorbell/viewer/lib'
import { eventually, startLan } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'
import { ringAnswerOpenHangUp } from '../src/fullCall'
import { pairViewer } from '../src/trust'

test('the owner lists and reads a kept trace over the hub; a resident, a replay and a stale command are refused and audited; a big trace comes in chunks', { timeout: 120_000 }, async (t) => {
  const lan = await startLan({ keepTraces: { calls: 5 } })
  const owner = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Hall phone', role: 'resident' })
  const viewer = nodeViewer(lan.hub.mqttUrl, owner)
  const other = nodeViewer(lan.hub.mqttUrl, resident)
  t.after(async () => { await viewer.close(); await other.close(); await lan.stop() })
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get('front-door'))
  await eventually('the resident\'s screen too', () => other.home.doorbells.get('front-door'))

  // A real call: ring, answer, open the door, hang up.
  await ringAnswerOpenHangUp(lan, viewer)
  await eventually('the call\'s trace kept', () => lan.device.traces!.list().length === 1)

  // The owner's list, as Home settings asks for it.
  const fetcher = viewer.home.keptTraces('front-door')
  const list = await fetcher.list()
  assert.equal(list.keeping, true)
  assert.equal(list.traces.length, 1)
  const [kept] = list.traces
  assert.deepEqual(kept!.who, ['Kitchen tablet'])
  assert.ok(kept!.durationMs > 0)
  assert.deepEqual(list.traces, lan.device.traces!.list(), 'the list is the keeper\'s')

  // The owner reads it: the very file, with the call in it and no secret.
  const read = await fetcher.read(kept!.id)
  assert.equal(read.text, lan.device.traces!.read(kept!.id), 'the file as kept, byte for byte')
  const called = new Set(read.trace.entries.flatMap((e) => e.event.type === 'event' ? [e.event.event] : []))
  for (const e of ['PRESS', 'OFFER', 'UNLOCK']) assert.ok(called.has(e), `the fetched trace has ${e}`)
  const grant = peek(Grant, owner.credential)
  assert.ok(grant.ok)
  for (const [what, secret] of [['token', owner.token], ['credential', owner.credential], ['credential\'s signature', owner.credential.split('.')[1]!], ['public key', grant.value.key]] as const) {
    assert.ok(!read.text.includes(secret), `no ${what} in the fetched trace`)
  }

  // A resident is refused, by the doorbell, and it is in the audit log.
  await assert.rejects(other.home.keptTraces('front-door').list(), (err: unknown) => {
    assert.ok(err instanceof KeptTraceError)
    assert.equal(err.code, 'denied')
    assert.match(err.message, /only the owner reads this doorbell's call traces, not Hall phone \(resident\)/)
    return true
  })
  await assert.rejects(other.home.keptTraces('front-door').read(kept!.id), /only the owner/)

  // A replayed and a stale command of the owner's: refused, with their reasons.
  const screen = new HubClient({ url: lan.hub.mqttUrl, homeId: owner.homeId, viewerId: owner.viewerId, viewerName: owner.name, auth: { memberId: owner.memberId, token: owner.token }, log: () => {} })
  t.after(() => screen.close())
  await eventually('the owner\'s second screen to sign in', () => screen.connected)
  const signing = { credential: owner.credential, key: owner.key, home: owner.homeId, device: 'front-door', session: NO_CALL_SESSION }
  const once = await signTracesCommand({ ...signing, command: 'c-once', action: 'traces-list' })
  assert.equal((await screen.sendCommand('front-door', once)).ok, true)
  const replayed = await screen.sendCommand('front-door', once)
  assert.ok(!replayed.ok && replayed.reason === 'replay', 'a replayed list is refused')
  const stale = await screen.sendCommand('front-door', await signTracesCommand({ ...signing, command: 'c-stale', action: 'trace-read', trace: kept!.id, chunk: 0, now: Date.now() - 60_000 }))
  assert.ok(!stale.ok && stale.reason === 'stale', 'a command a minute old is refused')
  // A signed read of one chunk cannot be turned into a read of another.
  const signed = await signTracesCommand({ ...signing, command: 'c-swap', action: 'trace-read', trace: kept!.id, chunk: 0 })
  const swapped = await screen.sendCommand('front-door', { ...signed, chunk: 1 } as typeof signed)
  assert.ok(!swapped.ok && swapped.reason === 'wrong-session', 'the chunk is in the signed claim')
  const missing = await screen.sendCommand('front-door', await signTracesCommand({ ...signing, command: 'c-none', action: 'trace-read', trace: '0000000000000-0', chunk: 0 }))
  assert.ok(!missing.ok && missing.error.code === 'no-trace', 'no such trace: said so')

  const audit = await eventually('the refusals in the hub\'s audit log', () => {
    const rows = lan.hub.trust.audit.all().filter((a) => a.kind === 'traces')
    return rows.filter((a) => a.outcome === 'denied').length >= 6 ? rows : null
  })
  const denied = audit.filter((a) => a.outcome === 'denied')
  assert.deepEqual(denied.filter((a) => a.actor === 'Hall phone').map((a) => a.reason), ['no-owner-right', 'no-owner-right'])
  for (const reason of ['replay', 'stale', 'wrong-session', 'no-trace']) assert.ok(denied.some((a) => a.reason === reason && a.actor === 'Kitchen tablet'), `${reason} audited`)
  assert.ok(audit.some((a) => a.outcome === 'allowed' && a.actor === 'Kitchen tablet' && /^read kept call trace/.test(a.message)), 'the owner\'s read audited')
  // Only the call's own door opening is a door event of the history: a trace fetch is not one.
  const doors = (await lan.hub.history.store.list({ limit: 200 }, { memberId: owner.memberId, devices: null })).events.filter((e) => e.kind === 'door')
  assert.deepEqual(doors.map((e) => e.outcome), ['allowed'], 'no trace command in the event history')

  // A trace bigger than one result: the kept call, repeated, written as the keeper writes one.
  const base = parseTrace(read.text)
  const entries = Array.from({ length: Math.ceil(3.5 * TRACE_CHUNK_BYTES / read.text.length) }, () => base.entries).flat()
  const big = JSON.stringify(makeTrace(entries, { ...base.range, label: 'a long call' }, Date.now()))
  const bigId = `${String(base.range.from + 1).padStart(13, '0')}-99`
  writeFileSync(join(lan.device.config.dataDir, 'traces', `${bigId}.json`), big)
  assert.ok(big.length > 3 * TRACE_CHUNK_BYTES, 'needs at least four chunks')
  const fetched = await fetcher.read(bigId)
  assert.equal(fetched.text, big, 'reassembled byte for byte, its SHA-256 checked')
  assert.equal(fetched.trace.entries.length, entries.length)
})

test('trace keeping off: the owner\'s list is empty and says keeping is off; a read says so too', { timeout: 60_000 }, async (t) => {
  const lan = await startLan({})
  const owner = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'owner' })
  const viewer = nodeViewer(lan.hub.mqttUrl, owner)
  t.after(async () => { await viewer.close(); await lan.stop() })
  await eventually('the retained state of the doorbell', () => viewer.home.doorbells.get('front-door'))
  assert.deepEqual(await viewer.home.keptTraces('front-door').list(), { keeping: false, traces: [] })
  await assert.rejects(viewer.home.keptTraces('front-door').read('1700000000000-0'), (err: unknown) => {
    assert.ok(err instanceof KeptTraceError)
    assert.equal(err.code, 'no-trace')
    assert.equal(err.message, 'trace keeping is off on this doorbell')
    return true
  })
})
