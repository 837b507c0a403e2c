/**
 * Issue 19, the doorbell's own copy: with the hub down, a press is kept on the doorbell's disk with
 * its picture and how it ended; the doorbell restarts meanwhile (so nothing but its disk holds the
 * ring: mqtt.js's queue is gone with the process); the hub comes back and its history has the ring
 * once, with its picture. Real parts: the hub in its own process (Aedes, node:sqlite), the doorbell
 * (ffmpeg's test pattern), mqtt.js.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeptRing, type EventsPage } from '@doorbell/core'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import { eventually } from '../src/harness'
import { kill, startHomeHub, startHubProcess } from '../src/hubProcess'
import { assertTestPatternBars } from '../src/jpeg'

test('the hub down during a ring: the doorbell keeps it on disk (across its own restart) and the hub has it, once, with its picture when it is back', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-kept-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { enabled: false } })
  let hub = home.hub
  t.after(async () => { await kill(hub, 'SIGTERM') })
  const invite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const keptDir = join(dir, 'device', 'kept-rings')
  const lines: string[] = []
  let button = new SimulatedButton()
  const start = async (): Promise<Doorbell> => await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: invite.url },
    dataDir: join(dir, 'device'),
    mesh: { enabled: false },
    ringTimeoutSeconds: 2
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  let device = await start()
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))
  const rings = async (): Promise<EventsPage['events']> => (await home.asOwner.events({ limit: 50 })).events.filter((e) => e.kind === 'ring')

  // With the hub up: a ring reaches its history directly, and the doorbell's copy is handed over and dropped.
  button.press()
  await eventually('the first ring in the history, with its picture', async () => (await rings()).some((e) => e.snapshot && e.outcome === 'missed'), 20_000)
  await eventually('the first ring\'s copy handed over', () => readdirSync(keptDir).length === 0, 20_000)

  // The hub goes away. A press: the doorbell keeps the ring, its pictures and how it ended.
  await kill(hub, 'SIGKILL')
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  const kept = await eventually('the ring kept whole on disk', () => {
    const file = join(keptDir, `${ringId}.json`)
    try {
      const k = KeptRing.parse(JSON.parse(readFileSync(file, 'utf8')))
      return k.record !== null && k.snapshot?.seq === 2 ? k : undefined
    } catch { return undefined }
  }, 20_000)
  assert.equal(kept.record?.outcome, 'missed')
  assertTestPatternBars(Buffer.from(kept.snapshot!.jpeg!, 'base64'))

  // The doorbell restarts while the hub is still away: only its disk holds the ring now.
  await device.stop()
  button = new SimulatedButton()
  device = await start()
  assert.deepEqual(readdirSync(keptDir), [`${ringId}.json`])

  // The hub comes back: the ring is in its history once, with the picture, and the copy is gone.
  hub = startHubProcess(home.config)
  await device.hubConnected(AbortSignal.timeout(30_000))
  const back = await eventually('the kept ring in the history', async () => (await rings()).find((e) => e.ringId === ringId && e.snapshot), 20_000)
  assert.equal(back.outcome, 'missed')
  assert.equal(back.unseen, true)
  await eventually('the copy handed over and dropped', () => readdirSync(keptDir).length === 0, 20_000)
  const picture = await home.asOwner.eventSnapshot(back.id)
  assertTestPatternBars(Buffer.from(await picture.arrayBuffer()))
  assert.ok(hub.lines.some((l) => l.includes('took a ring the doorbell kept') && l.includes(ringId)), hub.lines.slice(-10).join('\n'))

  // Handed over again (the same file put back, as after a lost acknowledgement): nothing changes.
  const before = await rings()
  await device.stop()
  writeFileSync(join(keptDir, `${ringId}.json`), JSON.stringify(kept))
  button = new SimulatedButton()
  device = await start()
  await device.hubConnected(AbortSignal.timeout(10_000))
  await eventually('the repeated copy taken', () => readdirSync(keptDir).length === 0, 20_000)
  const after = await rings()
  assert.equal(after.length, 2, 'two rings, no duplicate')
  assert.deepEqual(after.map((e) => [e.id, e.ringId, e.outcome, e.snapshot]), before.map((e) => [e.id, e.ringId, e.outcome, e.snapshot]))
})
