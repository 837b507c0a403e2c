import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { KVS_MAX_PREVIEWS, KVS_MAX_VIEWERS } from '@doorbell/core'
import { startLan, eventually } from '../src/harness'
// In process: eleven pairings over HTTP would meet the hub's pairing rate limit.
import { pairViewerInProcess } from '../bench/lib'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'
import { startCloud } from '../src/cloud'

/**
 * Issue 21's live preview on the cloud path, within KVS's limit of 10 viewers per signaling
 * channel (enforced by the KVS stand-in as KVS does: the 11th connection is refused with
 * ClientLimitExceededException). Eleven screens away from home (their hub out of reach, the
 * viewer's own Home on werift, each a KVS viewer with its own client id) preview one ring:
 * the doorbell holds at most 9 cloud previews (one KVS slot kept for Answer), the other screens
 * keep the snapshot and say live preview is unavailable (not an error), never more than 10 KVS
 * viewers at once; a screen without a preview answers and gets the visitor's video; the
 * previews end ("Answered on …") and their screens give their KVS connections back at once.
 */

const DEVICE = 'front-door'
const SCREENS = 11

async function deadPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
  return port
}

test('11 screens preview a ring over the cloud path: at most 9 live, the others the snapshot with the reason, never over KVS\'s 10 viewers; the answer gets through; the KVS slots come back', { timeout: 300_000 }, async (t) => {
  const cloud = await startCloud()
  t.after(() => cloud.stop())
  const provisioned = await cloud.provision('home', DEVICE)
  // A long ring: eleven werift sessions connect on a loaded machine.
  const lan = await startLan({ deviceId: DEVICE, cloud: provisioned.device, ringTimeoutSeconds: 240 })
  t.after(() => lan.stop())
  await eventually('the doorbell on IoT Core and its KVS channel', () => lan.device.cloud?.connected.iot === true && lan.device.cloud.connected.kvs, 30_000)

  // The screens' hub is out of reach (a closed port) and they have no direct addresses: the cloud path.
  const away = `mqtt://127.0.0.1:${await deadPort()}`
  const screens: Array<{ name: string, viewerId: string, v: NodeViewer }> = []
  for (let i = 1; i <= SCREENS; i++) {
    const paired = await pairViewerInProcess(lan.hub, { name: `Screen ${i}` })
    const v = nodeViewer(away, paired, 'h264', {
      preview: true,
      cloud: () => ({ config: provisioned.viewer, credentials: cloud.resident }),
      linkTiming: { lanGraceMs: 200 }
    })
    t.after(() => v.close())
    screens.push({ name: paired.name, viewerId: paired.viewerId, v })
  }
  await eventually('every screen on the cloud path', () => screens.every((s) => s.v.home.link.getSnapshot().matches({ cloud: 'up' })), 60_000)

  const channel = provisioned.device.channelName
  const card = (s: NodeViewer) => s.home.doorbells.get(DEVICE)
  const cloudPreviews = (): number => Object.values(lan.device.call.getSnapshot().context.sessions).filter((x) => x.preview && x.path === 'cloud').length
  // Sampled throughout: KVS never holds more than 10 viewers, the doorbell never more than 9 cloud previews.
  let mostViewers = 0
  let mostPreviews = 0
  const sampler = setInterval(() => {
    mostViewers = Math.max(mostViewers, cloud.kvs.connections(channel).viewers.length)
    mostPreviews = Math.max(mostPreviews, cloudPreviews())
  }, 10)
  t.after(() => { clearInterval(sampler) })

  lan.button.press()
  const live = () => screens.filter((s) => card(s.v)?.getSnapshot().matches({ incoming: { preview: 'live' } }) === true)
  const told = () => screens.filter((s) => {
    const snap = card(s.v)?.getSnapshot()
    return snap?.matches({ incoming: 'snapshot' }) === true && snap.context.previewNote !== null
  })
  await eventually(`${KVS_MAX_PREVIEWS} live previews and ${SCREENS - KVS_MAX_PREVIEWS} screens told why not`, () => live().length === KVS_MAX_PREVIEWS && told().length === SCREENS - KVS_MAX_PREVIEWS, 180_000)
  assert.equal(cloudPreviews(), KVS_MAX_PREVIEWS, 'the doorbell holds 9 cloud previews')
  for (const s of told()) {
    const note = card(s.v)!.getSnapshot().context.previewNote!
    assert.match(note, /^Live preview unavailable away from home/, `${s.name}: said as unavailable, not as an error`)
  }
  assert.ok(lan.lines.some((l) => l.includes('preview refused: the cloud path has its share of KVS viewers')), 'the doorbell refused at least one preview over its cloud share')
  // The screens told "unavailable" gave their KVS connections back (or never got one).
  await eventually('only the live previews hold KVS connections', () => cloud.kvs.connections(channel).viewers.length === KVS_MAX_PREVIEWS, 30_000)
  for (const s of live()) assert.ok(s.v.rtp.length > 0, `${s.name}: video arrives`)

  // A screen without a preview answers: a 10th KVS connection, the call, the visitor's video.
  const answerer = told()[0]!
  const liveBefore = live()
  answerer.v.home.answer(DEVICE)
  await eventually('the answering screen in the call', () => card(answerer.v)?.getSnapshot().matches({ active: 'connected' }), 60_000)
  const rtpAtAnswer = answerer.v.rtp.length
  await eventually('the visitor\'s video on the answering screen', () => answerer.v.rtp.length > rtpAtAnswer + 10, 30_000)
  const call = lan.device.call.getSnapshot()
  assert.ok(call.matches('inCall'))
  assert.deepEqual(Object.values(call.context.sessions).map((x) => [x.viewerName, x.preview, x.path]), [[answerer.name, false, 'cloud']], 'the answer is the only session: the previews ended with the ring')

  // The previews ended, saying who answered, and their screens gave back their KVS connections at once (not after the 5-minute idle close).
  await eventually('the previews ended: "Answered on …"', () => liveBefore.every((s) => {
    const snap = card(s.v)?.getSnapshot()
    // The banner's snapshot with who answered (or, once the doorbell's state arrives, the ring over).
    return snap !== undefined && !snap.matches({ incoming: 'preview' }) && (snap.matches('incoming') ? snap.context.previewNote === `Answered on ${answerer.name}` : true)
  }), 30_000)
  await eventually('the KVS slots back: the answering screen\'s connection alone', () => {
    const viewers = cloud.kvs.connections(channel).viewers
    return viewers.length === 1 && viewers[0] === answerer.viewerId
  }, 30_000)
  clearInterval(sampler)
  assert.ok(mostViewers <= KVS_MAX_VIEWERS, `KVS held ${mostViewers} viewers at most`)
  assert.equal(mostPreviews, KVS_MAX_PREVIEWS, 'at most 9 cloud previews at once')
  // The emulator refused no viewer beyond its limit except with ClientLimitExceeded, which the screens said as "unavailable".
  const refusedOther = cloud.kvs.log.filter((x) => x.action === 'CONNECT' && x.outcome === 'refused' && !/ClientLimitExceeded/.test(x.reason ?? ''))
  assert.deepEqual(refusedOther, [], 'no connection refused for another reason')

  answerer.v.home.hangUp(DEVICE)
  await eventually('the call over', () => lan.device.call.getSnapshot().matches('idle'), 30_000)
})
