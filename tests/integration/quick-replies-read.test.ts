/**
 * Issue 17, the quick replies a ring banner offers with the hub down (core/src/repliesRead.ts):
 * the doorbell answers a signed read of the replies it plays now, on the direct path
 * (`/doorbell/replies/1.0.0`, a Node libp2p peer in place of the browser) and on its KVS channel
 * (AWS stood in for as in the other cloud tests: the viewer's CloudClient and the unmodified KVS
 * SDK). The list is the owner's newest, as the doorbell took it; a guest (no talk right), bad
 * frames, a replayed proof and a read under another viewer's KVS client id are refused with a
 * reason. Real parts: the hub, the doorbell with its mesh, espeak-ng and ffmpeg, libp2p, the KVS SDK.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsDatastore } from 'datastore-fs'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import {
  MAX_REPLIES_FRAME_BYTES, REPLIES_PROTOCOL, REPLIES_SESSION, RepliesReadAnswer, decodeCloudRepliesResult, readFrame, signReplyList, signViewClaim,
  type RepliesReadRequest
} from '@doorbell/core'
import { createMeshPeer } from '@doorbell/mesh'
import { CloudClient } from '@doorbell/viewer/cloud'
import { eventually, startLan } from '../src/harness'
import { startCloud } from '../src/cloud'
import { pairViewer, type PairedViewer } from '../src/trust'
import { openRawKvsViewer } from '../src/cloud/rawViewer'

const FIRST = ['Leave it at the door', 'We will be right there']
const NOW = ['We are coming down', 'Leave it at the door', 'We will be right there']

test('a screen reads the doorbell\'s own quick replies (what a banner offers with the hub down), directly and over KVS: the newest list; a guest, bad frames, a replay and another viewer\'s client id are refused', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-replies-read-'))
  const cleanup: Array<() => Promise<void> | void> = [() => { rmSync(dir, { recursive: true, force: true }) }]
  t.after(async () => { for (const c of cleanup.reverse()) await c() })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  const lan = await startLan({ cloud: provisioned.device, audio: { speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  cleanup.push(() => lan.stop())
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-60).join('\n')) })
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(lan.hub, { name: 'Guest phone', role: 'guest' })
  const save = async (replies: string[]): Promise<void> => {
    const saved = await fetch(`${lan.hub.url}api/replies`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(await signReplyList({ credential: owner.credential, key: owner.key, home: owner.homeId, replies }))
    })
    assert.equal(saved.status, 200)
    await eventually(`the doorbell to render ${replies.length} replies`, () => lan.lines.some((l) => l.includes(`[device/replies] quick replies ready count=${replies.length}`)), 30_000)
  }
  // The owner changes the list: the doorbell's is the newest.
  await save(FIRST)
  await save(NOW)
  const request = async (who: PairedViewer): Promise<RepliesReadRequest> =>
    ({ homeId: who.homeId, viewerId: who.viewerId, credential: who.credential, proof: await signViewClaim({ key: who.key, home: who.homeId, device: 'front-door', session: REPLIES_SESSION }) })
  const readLines = (): number => lan.lines.filter((l) => l.includes('a screen read the quick replies')).length

  // The direct path: one request a stream, the raw bytes as given.
  const datastore = new FsDatastore(join(dir, 'peer'))
  await datastore.open()
  const probe = await createMeshPeer({ datastore, host: '127.0.0.1', tcpPort: 0, directPort: 0, tcp: tcp(), discovery: [] })
  await probe.start()
  cleanup.push(async () => { await probe.stop(); await datastore.close() })
  const addrs = lan.device.mesh!.node.getMultiaddrs()
  const direct = async (frame: RepliesReadRequest | string): Promise<RepliesReadAnswer> => {
    const stream = await probe.dialProtocol(addrs, REPLIES_PROTOCOL)
    const io = lpStream(stream, { maxDataLength: MAX_REPLIES_FRAME_BYTES })
    await io.write(new TextEncoder().encode(typeof frame === 'string' ? frame : JSON.stringify(frame)))
    const got = await readFrame(io, RepliesReadAnswer, 'the doorbell\'s answer', 15_000, MAX_REPLIES_FRAME_BYTES)
    await stream.close().catch(() => {})
    assert.ok(got.ok, got.ok ? '' : got.error.message)
    return got.value
  }
  const residentRead = await request(resident)
  assert.deepEqual(await direct(residentRead), { kind: 'replies', replies: NOW })
  assert.match(refused(await direct(residentRead)), /^this proof was already used$/, 'a proof reads once')
  assert.match(refused(await direct(await request(guest))), /^Guest phone may not talk on this doorbell, so plays no quick reply/)
  assert.match(refused(await direct('not json')), /JSON/)
  assert.match(refused(await direct(JSON.stringify({ homeId: resident.homeId, viewerId: resident.viewerId }))), /credential/)
  assert.match(refused(await direct({ ...await request(resident), homeId: 'other-home' })), /^this doorbell belongs to another home than other-home/)
  // Another screen's grant with this screen's id: not its holder.
  assert.equal(refused(await direct({ ...await request(owner), viewerId: resident.viewerId })), 'the credential belongs to another viewer')
  assert.equal(readLines(), 1, 'only the resident\'s first read was answered with the list')

  // Away from home, on the doorbell's KVS channel.
  await eventually('the doorbell on IoT Core and its KVS channel', () => lan.device.cloud?.connected.iot === true && lan.device.cloud.connected.kvs, 30_000)
  const away = (who: PairedViewer): CloudClient => {
    const c = new CloudClient({ config: provisioned.viewer, credentials: cloud.resident, viewerId: who.viewerId, log: (level, message) => { lan.lines.push(`${level} [cloud ${who.name}] ${message}`) } })
    cleanup.push(() => c.close())
    return c
  }
  assert.deepEqual(await away(resident).readReplies('front-door', await request(resident), 30_000), NOW)
  await assert.rejects(away(guest).readReplies('front-door', await request(guest), 30_000), /the doorbell refused: Guest phone may not talk on this doorbell/)
  // KVS names the sender by its client id: the owner's screen sending the resident's read is not the resident.
  await assert.rejects(away(owner).readReplies('front-door', await request(resident), 30_000), /the doorbell refused: this read is signed for viewer/)

  // Bad input with the unmodified KVS SDK: refused with the reason, under the id it could read.
  const { raw, answers } = await openRawKvsViewer({ region: provisioned.viewer.region, endpoint: provisioned.viewer.kvsEndpoint, channelName: provisioned.device.channelName, credentials: cloud.resident, clientId: resident.viewerId })
  cleanup.push(() => { raw.close() })
  raw.sendSdpOffer(JSON.stringify({ type: 'replies', id: 'q-broken', request: { homeId: resident.homeId } }) as never)
  const answer = decodeCloudRepliesResult(await eventually('the refusal of the malformed read', () => answers[0], 15_000))
  assert.ok(answer.ok, answer.ok ? '' : answer.error)
  assert.equal(answer.message.id, 'q-broken')
  assert.match(refused(answer.message.answer), /^request\.viewerId: /)
  assert.equal(readLines(), 2, 'only the resident\'s reads were answered with the list')
})

function refused (a: RepliesReadAnswer): string {
  return a.kind === 'refused' ? a.message : `read ${JSON.stringify(a.replies)}`
}
