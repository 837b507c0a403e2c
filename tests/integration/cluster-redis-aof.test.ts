import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { MqttClient } from 'mqtt'
import { RingEvent, encode, newId, topics } from '@doorbell/core'
import { connectAs, makeHomeKey, pairDevice, pairOwner, pairScreen, startClusterHub, type ClusterHub, type PairedDevice } from '../src/cluster'
import { eventually } from '../src/harness'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'

/**
 * Redis run as docs/cluster.md says (`appendonly yes`) and killed mid-run: nothing a hub
 * acknowledged is lost. A screen's persistent session is away (its QoS 1 rings queued in Redis);
 * a doorbell on hub A presses rings, each acknowledged by the hub (PUBACK), before Redis is killed
 * (SIGKILL, a crash), while it is down, and after it is back; the screen comes back on hub B and
 * receives every acknowledged ring. Without the append-only file the same kill loses them (the
 * cluster test's worst case): the control at the end.
 */

const HOME = 'home'
const RINGS = `doorbell/${HOME}/+/ring`

async function withTimeout<T> (what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out after ${ms} ms waiting for ${what}`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

describe('Redis with appendonly, killed mid-run: nothing acknowledged is lost', { timeout: 300_000 }, () => {
  let dir: string
  let db: TestPostgres
  const started: Array<{ redis: TestRedis, hubs: ClusterHub[] }> = []
  const clients: MqttClient[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cluster-aof-'))
    db = await TestPostgres.start()
  })

  after(async () => {
    for (const c of clients) await withTimeout('a client to end', 2000, c.endAsync(true)).catch(() => {})
    for (const { redis, hubs } of started) {
      for (const hub of hubs) await hub.stop('SIGKILL')
      await redis.destroy()
    }
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** Two hubs on a Redis of their own and a database of their own; a doorbell and a screen paired. */
  async function cluster (name: string, appendonly: boolean): Promise<{ redis: TestRedis, A: ClusterHub, B: ClusterHub, door: PairedDevice, screen: Awaited<ReturnType<typeof pairScreen>> }> {
    const redis = await TestRedis.start({ appendonly })
    const postgresUrl = await db.createDatabase(name)
    const homeKey = makeHomeKey(join(dir, `${name}-key`))
    const hubs: ClusterHub[] = []
    started.push({ redis, hubs })
    const A = await startClusterHub(join(dir, name), 'a', { redis, postgresUrl, homeKey })
    hubs.push(A)
    const owner = await pairOwner(A)
    const B = await startClusterHub(join(dir, name), 'b', { redis, postgresUrl, homeKey })
    hubs.push(B)
    return { redis, A, B, door: await pairDevice(owner.on(A), A), screen: await pairScreen(owner.on(B), B, 'Hall screen') }
  }

  /**
   * Presses rings through `device` until `count` are acknowledged by the hub; each publish bounded
   * (one that is not acknowledged in time is not counted: only acknowledged rings must arrive).
   */
  async function press (device: MqttClient, door: PairedDevice, count: number, limitMs: number): Promise<string[]> {
    const acked: string[] = []
    const deadline = Date.now() + limitMs
    while (acked.length < count && Date.now() < deadline) {
      const ringId = newId('r')
      const payload = encode(RingEvent, { type: 'ring', deviceId: door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 })
      const ok = await withTimeout('a PUBACK', 3000, device.publishAsync(topics.ring(HOME, door.deviceId), payload, { qos: 1 })).then(() => true, () => false)
      if (ok) acked.push(ringId)
    }
    return acked
  }

  /** The scenario: screen away, rings before, during and after a Redis SIGKILL, screen back. */
  async function scenario (name: string, appendonly: boolean): Promise<{ acked: string[], received: string[] }> {
    const { redis, A, B, door, screen } = await cluster(name, appendonly)
    const clientId = `viewer-${screen.viewerId}-hall`
    const away = await connectAs(B.mqttUrl, screen, { clientId, clean: false })
    await away.subscribeAsync(RINGS, { qos: 1 })
    await away.endAsync()
    const device = await connectAs(A.mqttUrl, door, { reconnectPeriod: 200 })
    clients.push(device)

    const acked = await press(device, door, 5, 20_000)
    assert.equal(acked.length, 5, 'five rings acknowledged before the crash')
    await redis.stop('SIGKILL')
    // Pressed while Redis is down: acknowledged or not, as the hub can; the acknowledged must arrive.
    acked.push(...await press(device, door, 2, 4000))
    await redis.run()
    const afterRestart = await press(device, door, 5, 30_000)
    assert.equal(afterRestart.length, 5, 'five rings acknowledged after Redis is back')
    acked.push(...afterRestart)

    const back = await connectAs(B.mqttUrl, screen, { clientId, clean: false })
    clients.push(back)
    const received: string[] = []
    back.on('message', (topic, payload) => { if (topic.endsWith('/ring')) received.push((JSON.parse(payload.toString()) as { ringId: string }).ringId) })
    if (appendonly) {
      await eventually('every acknowledged ring on the screen', () => acked.every((id) => received.includes(id)), 20_000).catch(() => {})
    } else {
      // The control: wait for the rings pressed after the restart (the session was made again by nothing: none may come).
      await new Promise((resolve) => setTimeout(resolve, 3000))
    }
    return { acked, received }
  }

  it('appendonly yes: every ring acknowledged before, during and after the kill reaches the screen', async () => {
    const { acked, received } = await scenario('aof', true)
    const lost = acked.filter((id) => !received.includes(id))
    console.log(`appendonly: ${acked.length} acknowledged, ${received.length} received, ${lost.length} lost`)
    assert.deepEqual(lost, [], 'no acknowledged ring lost')
  })

  it('the control, appendonly no: the same kill loses the rings queued for the screen', async () => {
    const { acked, received } = await scenario('noaof', false)
    const lost = acked.filter((id) => !received.includes(id))
    console.log(`no persistence: ${acked.length} acknowledged, ${received.length} received, ${lost.length} lost`)
    assert.ok(lost.length >= 5, 'the five queued before the kill are gone with Redis\'s memory')
  })
})
