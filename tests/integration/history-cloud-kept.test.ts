/**
 * Issue 19, the doorbell's own history away from home (the cloud path), AWS stood in for as in the
 * other cloud tests (KVS signaling emulator, IoT Core and credentials stand-ins): with the hub down
 * and no direct path (the doorbell's mesh is off), a ring is kept on the doorbell, and a resident's
 * CloudClient reads it with its picture on the doorbell's KVS channel (core/src/cloudKept.ts,
 * `{type: "kept-read"}`: the direct path's signed request, checked by the same code; the answer in
 * parts that fit KVS). A payload that fails its schema (unmodified KVS SDK), a guest, an operator
 * of another zone, a forged proof, a request under another viewer's client id and a replay are
 * refused with a reason and change nothing on the doorbell. Real parts: the hub (stopped), the
 * doorbell with ffmpeg's test pattern, the KVS SDK and the AWS SDK v3 against the stand-ins.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KEPT_SESSION, KeptParts, decodeCloudKeptPart, generateSigningKey, memoryLogger, signViewClaim, type KeptReadFrame, type KeptReadRequest, type SigningKey } from '@doorbell/core'
import { startHub, type Hub } from '@doorbell/hub'
import { CloudClient } from '@doorbell/viewer/cloud'
import { eventually } from '../src/harness'
import { startCloud } from '../src/cloud'
import { assertTestPatternBars } from '../src/jpeg'
import { pairViewer, type PairedViewer } from '../src/trust'
import { openRawKvsViewer } from '../src/cloud/rawViewer'
import { startAwayDoorbell } from '../src/cloud/awayDoorbell'

test('the hub down, away from home: a resident reads the ring the doorbell keeps, with its picture, on its KVS channel; a guest, another zone\'s operator, a forged or replayed request and bad input are refused and change nothing', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-cloud-kept-'))
  const cleanup: Array<() => Promise<void> | void> = [() => { rmSync(dir, { recursive: true, force: true }) }]
  t.after(async () => { for (const c of cleanup.reverse()) await c() })
  const lines: string[] = []
  t.after(() => { if (process.exitCode) console.log(lines.slice(-80).join('\n')) })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  let hub: Hub | null = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: join(dir, 'hub'), mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  cleanup.push(async () => { await hub?.stop() })
  const owner = await pairViewer(hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(hub, { name: 'Guest phone', role: 'guest' })
  const operator = await pairViewer(hub, { name: 'North console', role: 'operator', zones: ['north'] })
  const { device, button } = await startAwayDoorbell({ hub, dir, cloud: provisioned.device, lines, ringTimeoutSeconds: 2, cleanup })

  // The hub goes away; a ring nobody answers is kept on the doorbell, with its second picture.
  await hub.stop()
  hub = null
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId, 15_000)
  await eventually('the ring over, its second picture taken', () => device.state().lastRing?.ringId === ringId && device.state().lastRing?.outcome === 'missed' && lines.some((l) => l.includes('snapshot') && l.includes(ringId) && l.includes('seq=2')), 30_000)
  const keptDir = join(dir, 'device', 'kept-rings')
  const keptFile = join(keptDir, `${ringId}.json`)
  await eventually('the ring kept with its second picture', () => { try { return (JSON.parse(readFileSync(keptFile, 'utf8')) as { snapshot?: { seq?: number } }).snapshot?.seq === 2 } catch { return false } }, 15_000)
  const keptBefore = readFileSync(keptFile, 'utf8')

  /** A screen away from home: its CloudClient, with the resident's AWS credentials, as the viewer `who`. */
  const away = (who: PairedViewer): CloudClient => {
    const c = new CloudClient({ config: provisioned.viewer, credentials: cloud.resident, viewerId: who.viewerId, log: (level, message) => { lines.push(`${level} [cloud ${who.name}] ${message}`) } })
    cleanup.push(() => c.close())
    return c
  }
  /** The direct path's read, signed as the viewer's Home signs it (home.ts `keptRings`). */
  const request = async (who: PairedViewer, key: SigningKey = who.key): Promise<KeptReadRequest> => ({
    homeId: who.homeId,
    viewerId: who.viewerId,
    credential: who.credential,
    proof: await signViewClaim({ key, home: who.homeId, device: 'front-door', session: KEPT_SESSION })
  })

  // Bad input with the unmodified KVS SDK (given copies of the credentials: the AWS SDK writes into what it is given): a read that fails its schema gets a clear refusal under its id.
  const { raw, answers } = await openRawKvsViewer({ region: provisioned.viewer.region, endpoint: provisioned.viewer.kvsEndpoint, channelName: provisioned.device.channelName, credentials: cloud.resident, clientId: resident.viewerId })
  cleanup.push(() => { raw.close() })
  raw.sendSdpOffer(JSON.stringify({ type: 'kept-read', id: 'k-broken', request: { homeId: resident.homeId } }) as never)
  const part = await eventually('the refusal of the malformed read', () => answers[0], 20_000)
  const decoded = decodeCloudKeptPart(part)
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.error)
  assert.equal(decoded.message.id, 'k-broken')
  assert.equal(decoded.message.parts, 1)
  const refusal = new KeptParts(1).add(decoded.message) as KeptReadFrame[]
  assert.equal(refusal[0]?.kind, 'refused')
  assert.match(refusal[0]?.kind === 'refused' ? refusal[0].message : '', /request\.viewerId: /)
  raw.close()

  // The resident reads it from away from home: the kept ring, missed, its picture the doorbell's test pattern.
  const kitchen = away(resident)
  const signed = await request(resident)
  const readAt = performance.now()
  const read = await kitchen.readKeptRings('front-door', signed, 60_000)
  const readMs = Math.round(performance.now() - readAt)
  assert.deepEqual(read.rings.map((k) => k.ring.ringId), [ringId])
  assert.equal(read.more, false)
  const kept = read.rings[0]!
  assert.equal(kept.record?.outcome, 'missed')
  assert.equal(kept.snapshot?.seq, 2)
  assertTestPatternBars(Buffer.from(kept.snapshot!.jpeg!, 'base64'))
  assert.ok(lines.some((l) => l.includes('a screen read the kept rings over the cloud path') && l.includes('viewer=Kitchen tablet')))
  const parts = cloud.kvs.log.filter((e) => e.outcome === 'routed' && e.action === 'SDP_ANSWER' && e.from === '(master)').length
  assert.ok(parts >= 3, `the answer came in ${parts} parts`)
  t.diagnostic(`the kept ring (picture ${Math.round(kept.snapshot!.jpeg!.length * 3 / 4 / 1024)} KB) read over KVS in ${parts - 1} parts, ${readMs} ms (channel opening included)`)

  // Refused by the doorbell's checks, each with its reason, and nothing read: a replay of that
  // same request, a guest, an operator of another zone, a proof not signed by the member's key,
  // and the resident's request sent under another viewer's client id.
  const reads = (): number => lines.filter((l) => l.includes('a screen read the kept rings over the cloud path')).length
  await assert.rejects(kitchen.readKeptRings('front-door', signed, 60_000), /the doorbell refused: this proof was already used/)
  await assert.rejects(away(guest).readKeptRings('front-door', await request(guest), 60_000), /the doorbell refused: the history is for the home's owner, residents and operators/)
  await assert.rejects(away(operator).readKeptRings('front-door', await request(operator), 60_000), /the doorbell refused: North console watches other zones, not home/)
  await assert.rejects(kitchen.readKeptRings('front-door', await request(resident, (await generateSigningKey(false)).privateKey), 60_000), /the doorbell refused: the proof is not signed by Kitchen tablet's key/)
  await assert.rejects(away(owner).readKeptRings('front-door', await request(resident), 60_000), /the doorbell refused: this read is signed for viewer .* but KVS names its sender/)
  assert.equal(reads(), 1, 'only the resident\'s one read was answered with rings')

  // Reading changed nothing on the doorbell: the ring is still kept, as it was, for the hub.
  assert.deepEqual(readdirSync(keptDir), [`${ringId}.json`])
  assert.equal(readFileSync(keptFile, 'utf8'), keptBefore)
})
