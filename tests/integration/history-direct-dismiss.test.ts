/**
 * Issue 19, a dismissal on the direct path: with the hub down, a resident's screen dismisses the
 * ring on the doorbell itself (the viewer's DirectClient over webrtc-direct, a signed request
 * checked by DoorGuard); the doorbell notes who and when on its kept copy, another screen reading
 * the doorbell's history sees it dismissed, and when the hub is back the kept ring hands the
 * dismissal over: the hub's history shows the ring dismissed by that member, as if it had been up.
 * An unknown ring, a guest, a screen whose key is not the member's change nothing. Real parts: the hub (stopped,
 * then started again on its data folder and ports), the doorbell with ffmpeg's test pattern and
 * its libp2p mesh, the viewer's libp2p client, node:sqlite.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeptRing, generateSigningKey, memoryLogger, type HubConfigInput } from '@doorbell/core'
import { SimulatedButton, SimulatedLock, startDoorbell } from '@doorbell/device'
import { startHub, type Hub } from '@doorbell/hub'
import { directReachOf } from '@doorbell/mesh'
import { DirectClient } from '@doorbell/viewer/direct'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually } from '../src/harness'
import { deviceInvite, pairViewer, type PairedViewer } from '../src/trust'

test('the hub down: a resident dismisses the ring on the doorbell; other screens see it; the hub back, its history says dismissed by that resident', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-direct-dismiss-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const lines: string[] = []
  t.after(() => { if (process.exitCode) console.log(lines.slice(-60).join('\n')) })
  const config = (http: number, mqtt: number): HubConfigInput => ({ host: '127.0.0.1', httpPort: http, mqttPort: mqtt, tls: 'off', dataDir: join(dir, 'hub'), mesh: { enabled: false } })
  let hub: Hub | null = await startHub(config(0, 0), { log: memoryLogger(lines, 'hub') })
  t.after(async () => { await hub?.stop() })
  const ports = { http: Number(new URL(hub.url).port), mqtt: Number(new URL(hub.mqttUrl).port) }
  const owner = await pairViewer(hub, { name: 'Kitchen tablet', role: 'owner' })
  const resident = await pairViewer(hub, { name: 'Hall tablet', role: 'resident' })
  const guest = await pairViewer(hub, { name: 'Visitor', role: 'guest' })
  const button = new SimulatedButton()
  const device = await startDoorbell({
    hubUrl: hub.mqttUrl,
    pairing: { url: await deviceInvite(hub, 'front-door') },
    dataDir: join(dir, 'device'),
    mesh: { tcpPort: 0, directPort: 0 },
    ringTimeoutSeconds: 8
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))
  const reach = directReachOf(device.mesh!.node)!
  const screen = async (who: PairedViewer, key = who.key): Promise<DirectClient> => {
    const client = new DirectClient({ homeId: who.homeId, viewerId: who.viewerId, viewerName: who.name, credential: who.credential, key, devices: () => [{ deviceId: 'front-door', reach }], log: (level, message) => { lines.push(`${level} [viewer ${who.name}] ${message}`) } })
    t.after(() => client.close())
    await client.start().catch(() => {})
    return client
  }

  // The hub goes away; the doorbell rings; the screens reach it directly.
  await hub.stop()
  hub = null
  const hall = await screen(resident)
  const kitchen = await screen(owner)
  const visitor = await screen(guest)
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  // The doorbell's copy on its disk (snapshotKeep.ts).
  const keptDir = join(dir, 'device', 'kept-rings')
  const keptFile = join(keptDir, `${ringId}.json`)
  await eventually('the ring kept on the doorbell', () => existsSync(keptFile))
  const keptNow = (): KeptRing => KeptRing.parse(JSON.parse(readFileSync(keptFile, 'utf8')))

  // Refused, and nothing changes: a ring the doorbell does not keep, a guest, a proof not signed by the member's key.
  await assert.rejects(hall.dismissRing('front-door', 'r-not-a-ring'), /refused: no such ring: the doorbell keeps only the rings the hub has not taken/)
  await assert.rejects(visitor.dismissRing('front-door', ringId), /refused: dismissals go in the history, which is for the home's owner, residents and operators; not for guests/)
  const stranger = await screen(resident, (await generateSigningKey(false)).privateKey)
  await assert.rejects(stranger.dismissRing('front-door', ringId), (err: unknown) => /refused|not connected/.test((err as Error).message))
  assert.equal(keptNow().dismissals, undefined, 'nothing noted')

  // The resident dismisses it while it rings: noted on the doorbell, who and from which screen.
  // ('dismissed' if a loaded machine let it ring out by now.)
  assert.ok(['ringing', 'dismissed'].includes(await hall.dismissRing('front-door', ringId)))
  assert.deepEqual(keptNow().dismissals?.map((d) => [d.memberName, d.viewerId]), [['Hall tablet', resident.viewerId]])
  // The doorbell logs it once its answer is written: the screen may have the answer first.
  await eventually('the doorbell\'s log line', () => lines.some((l) => l.includes('a screen dismissed a ring directly') && l.includes('viewer=Hall tablet')))
  // Told twice: changes nothing.
  assert.ok(['ringing', 'dismissed'].includes(await hall.dismissRing('front-door', ringId)))
  assert.equal(keptNow().dismissals?.length, 1)

  // The ring rings out; another screen reading the doorbell's history sees it dismissed, by whom.
  await eventually('the ring over', () => device.state().lastRing?.ringId === ringId && device.state().lastRing?.outcome === 'missed', 30_000)
  const [read] = await kitchen.keptRings()
  const seen = read?.rings.find((k) => k.ring.ringId === ringId)
  assert.equal(seen?.record?.outcome, 'missed')
  assert.deepEqual(seen?.dismissals?.map((d) => d.memberName), ['Hall tablet'])

  // The hub is back on its data folder and ports: the kept ring hands the dismissal over.
  hub = await startHub(config(ports.http, ports.mqtt), { log: memoryLogger(lines, 'hub') })
  const api = new HubApi({ base: hub.url, token: owner.token })
  const event = await eventually('the ring in the hub\'s history, dismissed', async () => {
    const e = (await api.events({ limit: 20 })).events.find((x) => x.ringId === ringId)
    return e?.outcome === 'dismissed' ? e : null
  }, 60_000)
  assert.deepEqual(event.who, ['Hall tablet'])
  assert.equal(event.unseen, false, 'a dismissed ring was seen')
  await eventually('the kept copy handed over and dropped', () => readdirSync(keptDir).length === 0, 30_000)
  // The same, as the hub records a dismissal it is told while up: the route refuses nothing new.
  const residentApi = new HubApi({ base: hub.url, token: resident.token })
  assert.equal((await residentApi.dismissRing('front-door', ringId)).outcome, 'dismissed')
  assert.deepEqual((await api.events({ limit: 20 })).events.find((x) => x.ringId === ringId)?.who, ['Hall tablet'])
})
