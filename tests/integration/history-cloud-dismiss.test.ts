/**
 * Issue 19, a dismissal from a screen away from home (the cloud path), AWS stood in for as in the
 * other cloud tests (KVS signaling emulator, IoT Core and credentials stand-ins): with the hub down
 * and no direct path (the doorbell's mesh is off), a resident's CloudClient sends the direct path's
 * signed request on the doorbell's KVS channel (core/src/cloudCommand.ts, `{type: "dismiss"}`);
 * the doorbell checks it with the same handler as the direct path (DoorGuard) and notes who and
 * when on its kept ring, which hands it to the hub when it is back: the hub's history shows the
 * ring dismissed by that resident. A payload that fails its schema (unmodified KVS SDK), a guest,
 * a forged proof, a request under another viewer's client id, a replay and an unknown ring are
 * refused with a reason and change nothing. Real parts: the hub (stopped, then started again on
 * its data folder and ports), the doorbell with ffmpeg's test pattern, node:sqlite, the KVS SDK.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeptRing, decodeCloudDismissResult, generateSigningKey, memoryLogger, signViewClaim, type DismissDirectRequest, type HubConfigInput, type SigningKey } from '@doorbell/core'
import { startHub, type Hub } from '@doorbell/hub'
import { CloudClient } from '@doorbell/viewer/cloud'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually } from '../src/harness'
import { startCloud } from '../src/cloud'
import { pairViewer, type PairedViewer } from '../src/trust'
import { openRawKvsViewer } from '../src/cloud/rawViewer'
import { startAwayDoorbell } from '../src/cloud/awayDoorbell'

test('the hub down, away from home: a resident dismisses the ring on the doorbell\'s KVS channel; a guest, a forged proof and bad input are refused; the hub back, its history says dismissed by that resident', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-cloud-dismiss-'))
  const cleanup: Array<() => Promise<void> | void> = [() => { rmSync(dir, { recursive: true, force: true }) }]
  t.after(async () => { for (const c of cleanup.reverse()) await c() })
  const lines: string[] = []
  t.after(() => { if (process.exitCode) console.log(lines.slice(-80).join('\n')) })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  const config = (http: number, mqtt: number): HubConfigInput => ({ host: '127.0.0.1', httpPort: http, mqttPort: mqtt, tls: 'off', dataDir: join(dir, 'hub'), mesh: { enabled: false } })
  let hub: Hub | null = await startHub(config(0, 0), { log: memoryLogger(lines, 'hub') })
  cleanup.push(async () => { await hub?.stop() })
  const ports = { http: Number(new URL(hub.url).port), mqtt: Number(new URL(hub.mqttUrl).port) }
  const owner = await pairViewer(hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(hub, { name: 'Guest phone', role: 'guest' })
  const { device, button } = await startAwayDoorbell({ hub, dir, cloud: provisioned.device, lines, ringTimeoutSeconds: 8, cleanup })

  /** A screen away from home: its CloudClient, with the resident's AWS credentials, as the viewer `who`. */
  const away = (who: PairedViewer): CloudClient => {
    const c = new CloudClient({ config: provisioned.viewer, credentials: cloud.resident, viewerId: who.viewerId, log: (level, message) => { lines.push(`${level} [cloud ${who.name}] ${message}`) } })
    cleanup.push(() => c.close())
    return c
  }
  /** The direct path's request, signed as the viewer's Home signs it (home.ts `dismissWithoutHub`). */
  const request = async (who: PairedViewer, ringId: string, key: SigningKey = who.key): Promise<DismissDirectRequest> => ({
    homeId: who.homeId,
    viewerId: who.viewerId,
    credential: who.credential,
    proof: await signViewClaim({ key, home: who.homeId, device: 'front-door', session: ringId }),
    ringId
  })

  // The hub goes away; the doorbell rings and keeps the ring.
  await hub.stop()
  hub = null
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId, 15_000)
  const keptDir = join(dir, 'device', 'kept-rings')
  const keptFile = join(keptDir, `${ringId}.json`)
  await eventually('the ring kept on the doorbell', () => existsSync(keptFile), 15_000)
  const keptNow = (): KeptRing => KeptRing.parse(JSON.parse(readFileSync(keptFile, 'utf8')))

  // Bad input with the unmodified KVS SDK (given copies of the credentials: the AWS SDK writes into what it is given): a `dismiss` that fails its schema gets a clear refusal under its id.
  const { raw, answers } = await openRawKvsViewer({ region: provisioned.viewer.region, endpoint: provisioned.viewer.kvsEndpoint, channelName: provisioned.device.channelName, credentials: cloud.resident, clientId: resident.viewerId })
  cleanup.push(() => { raw.close() })
  raw.sendSdpOffer(JSON.stringify({ type: 'dismiss', id: 'd-broken', request: { ringId } }) as never)
  const answer = await eventually('the refusal of the malformed dismissal', () => answers[0], 20_000)
  const decoded = decodeCloudDismissResult(answer)
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.error)
  assert.equal(decoded.message.id, 'd-broken')
  assert.equal(decoded.message.answer.kind, 'refused')
  assert.match(decoded.message.answer.kind === 'refused' ? decoded.message.answer.message : '', /request\.homeId: /)
  raw.close()

  // Refused by the doorbell's checks, and nothing noted: a guest, a proof not signed by the member's key, another viewer's request under this client id, a ring the doorbell does not keep.
  const kitchen = away(resident)
  await assert.rejects(away(guest).dismissRing('front-door', await request(guest, ringId), 30_000), /the doorbell refused: dismissals go in the history, which is for the home's owner, residents and operators; not for guests/)
  await assert.rejects(kitchen.dismissRing('front-door', await request(resident, ringId, (await generateSigningKey(false)).privateKey), 30_000), /the doorbell refused: the proof is not signed by Kitchen tablet's key/)
  await assert.rejects(away(owner).dismissRing('front-door', await request(resident, ringId), 30_000), /the doorbell refused: this dismissal is signed for viewer .* but KVS names its sender/)
  await assert.rejects(kitchen.dismissRing('front-door', await request(resident, 'r-not-a-ring'), 30_000), /the doorbell refused: no such ring: the doorbell keeps only the rings the hub has not taken/)
  assert.equal(keptNow().dismissals, undefined, 'nothing noted')

  // The resident dismisses it from away from home: noted on the doorbell, who and from which screen.
  // ('dismissed' if a loaded machine let it ring out by now.)
  const signed = await request(resident, ringId)
  assert.ok(['ringing', 'dismissed'].includes(await kitchen.dismissRing('front-door', signed, 30_000)))
  assert.deepEqual(keptNow().dismissals?.map((d) => [d.memberName, d.viewerId]), [['Kitchen tablet', resident.viewerId]])
  await eventually('the doorbell\'s log line', () => lines.some((l) => l.includes('a screen dismissed a ring over the cloud path') && l.includes('viewer=Kitchen tablet')))
  // The same request again: its proof was used once.
  await assert.rejects(kitchen.dismissRing('front-door', signed, 30_000), /the doorbell refused: this proof was already used/)
  assert.equal(keptNow().dismissals?.length, 1)

  // The ring rings out; the hub is back on its data folder and ports: the kept ring hands the dismissal over.
  await eventually('the ring over', () => device.state().lastRing?.ringId === ringId && device.state().lastRing?.outcome === 'missed', 60_000)
  hub = await startHub(config(ports.http, ports.mqtt), { log: memoryLogger(lines, 'hub') })
  const api = new HubApi({ base: hub.url, token: owner.token })
  const event = await eventually('the ring in the hub\'s history, dismissed', async () => {
    const e = (await api.events({ limit: 20 })).events.find((x) => x.ringId === ringId)
    return e?.outcome === 'dismissed' ? e : null
  }, 60_000)
  assert.deepEqual(event.who, ['Kitchen tablet'])
  await eventually('the kept copy handed over and dropped', () => readdirSync(keptDir).length === 0, 30_000)
})
