/**
 * Issue 19, the doorbell's own history on the direct path: with the hub down, a ring is kept on the
 * doorbell (kept-rings), and a screen that reaches the doorbell directly (the viewer's DirectClient
 * over webrtc-direct) reads it with its picture: a signed read, refused to guests and to a proof
 * not signed by the member's key. Real parts: the hub (stopped), the doorbell with ffmpeg's test
 * pattern and its libp2p mesh, the viewer's libp2p client.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSigningKey, memoryLogger } from '@doorbell/core'
import { SimulatedButton, SimulatedLock, startDoorbell } from '@doorbell/device'
import { startHub } from '@doorbell/hub'
import { directReachOf } from '@doorbell/mesh'
import { DirectClient } from '@doorbell/viewer/direct'
import { eventually } from '../src/harness'
import { deviceInvite, pairViewer, type PairedViewer } from '../src/trust'
import { assertTestPatternBars } from '../src/jpeg'

test('the hub down: a screen reads the rings the doorbell keeps, with their pictures, over the direct path; guests and a forged proof are refused', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-direct-kept-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const lines: string[] = []
  t.after(() => { if (process.exitCode) console.log(lines.slice(-40).join('\n')) })
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'hub'), mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  let hubUp = true
  t.after(async () => { if (hubUp) await hub.stop() })
  const owner = await pairViewer(hub, { name: 'Kitchen tablet', role: 'owner' })
  const resident = await pairViewer(hub, { name: 'Hall tablet', role: 'resident' })
  const guest = await pairViewer(hub, { name: 'Visitor', role: 'guest' })
  const button = new SimulatedButton()
  const device = await startDoorbell({
    hubUrl: hub.mqttUrl,
    pairing: { url: await deviceInvite(hub, 'front-door') },
    dataDir: join(dir, 'device'),
    mesh: { tcpPort: 0, directPort: 0 },
    ringTimeoutSeconds: 2
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))
  const reach = directReachOf(device.mesh!.node)!

  // The hub goes away; a ring is kept on the doorbell, with its pictures and how it ended.
  await hub.stop()
  hubUp = false
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  await eventually('the ring over, its second picture taken', () => device.state().lastRing?.outcome === 'missed' && lines.some((l) => l.includes('snapshot') && l.includes(ringId) && l.includes('seq=2')), 15_000)

  const screen = (who: PairedViewer, key = who.key): DirectClient => {
    const client = new DirectClient({ homeId: who.homeId, viewerId: who.viewerId, viewerName: who.name, credential: who.credential, key, devices: () => [{ deviceId: 'front-door', reach }], log: (level, message) => { lines.push(`${level} [viewer ${who.name}] ${message}`) } })
    t.after(() => client.close())
    return client
  }

  // The owner's screen, and a resident's: the kept ring, its picture the test pattern, missed.
  for (const who of [owner, resident]) {
    const client = screen(who)
    await client.start()
    const [read] = await client.keptRings()
    assert.ok(read)
    assert.equal(read.error, undefined)
    assert.equal(read.deviceId, 'front-door')
    assert.equal(read.more, false)
    assert.deepEqual(read.rings.map((k) => k.ring.ringId), [ringId])
    const kept = read.rings[0]!
    assert.equal(kept.record?.outcome, 'missed')
    assert.equal(kept.snapshot?.seq, 2)
    assertTestPatternBars(Buffer.from(kept.snapshot!.jpeg!, 'base64'))
  }
  assert.ok(lines.some((l) => l.includes('a screen read the kept rings directly') && l.includes('viewer=Hall tablet')))

  // A guest's screen connects (it sees live rings) but may not read the history.
  const visitor = screen(guest)
  await visitor.start()
  const [refused] = await visitor.keptRings()
  assert.deepEqual(refused?.rings, [])
  assert.match(refused?.error ?? '', /refused: the history is for the home's owner, residents and operators/)

  // A proof not signed by the key the member's grant names: refused, nothing read.
  const ownerReads = (): number => lines.filter((l) => l.includes('a screen read the kept rings directly') && l.includes('viewer=Kitchen tablet')).length
  const readsBefore = ownerReads()
  const stranger = screen(owner, (await generateSigningKey(false)).privateKey)
  await stranger.start().catch(() => {})
  const [forged] = await stranger.keptRings()
  assert.ok(forged === undefined || (forged.rings.length === 0 && /refused/.test(forged.error ?? '')), JSON.stringify(forged))
  assert.equal(ownerReads(), readsBefore, 'nothing was read with the forged proof')
  assert.ok(lines.some((l) => l.includes('refused a direct read of the kept rings')))

  // The ring stays kept for the hub (a read changes nothing on the doorbell).
  const again = screen(owner)
  await again.start()
  assert.deepEqual((await again.keptRings())[0]?.rings.map((k) => k.ring.ringId), [ringId])
})
