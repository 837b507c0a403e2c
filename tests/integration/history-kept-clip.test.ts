/**
 * Issue 19, a clip made while the hub is down: with the owner's clip setting on, the hub is killed,
 * a press; the doorbell cuts the clip from the video it already sends (no second encode) and keeps
 * it on its disk with the ring (across its own restart); the hub comes back and its history has
 * the ring once with that clip, served with Range requests, an H.264 MP4 of about the configured
 * length; handed over again, nothing changes. And what a broken or hostile doorbell might hand
 * over: a clip that is not a video, or one over the size bound, is refused with its reason while
 * the ring itself is recorded. Real parts: the hub in its own process (Aedes, node:sqlite,
 * Fastify), the doorbell (ffmpeg's test pattern), mqtt.js, ffprobe.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import {
  CLIP_PART_BYTES, KeptRing, MAX_CLIP_BYTES, encode, memoryLogger, newId, topics,
  type CallRecord, type ClipPart, type HistoryEvent, type RingEvent
} from '@doorbell/core'
import { pairDevice, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually, startLan } from '../src/harness'
import { kill, startHomeHub, startHubProcess } from '../src/hubProcess'
import { deviceInvite, pairViewer } from '../src/trust'
import { assertTestPatternBars } from '../src/jpeg'

const SECONDS = 4

/** A program's exit and output, without blocking the event loop. */
async function run (bin: string, args: string[]): Promise<{ status: number | null, stdout: Buffer, stderr: string }> {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  let stderr = ''
  proc.stdout.on('data', (c: Buffer) => out.push(c))
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const status = await new Promise<number | null>((resolve, reject) => { proc.once('error', reject); proc.once('close', resolve) })
  return { status, stdout: Buffer.concat(out), stderr }
}

test('the hub down during a ring with clips on: the doorbell keeps the clip (across its restart), and the hub back has it with the ring, served with ranges, an H.264 MP4 of about N s; handed over again, nothing changes', { timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-kept-clip-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { enabled: false } })
  let hub = home.hub
  t.after(async () => { await kill(hub, 'SIGTERM') })
  t.after(() => { if (process.env.CLIP_DEBUG) console.log([...hub.lines.slice(-30), ...lines.slice(-40)].join('\n')) })
  const invite = await home.asOwner.invite({ kind: 'device', deviceId: 'front-door' })
  const keptClips = join(dir, 'device', 'kept-clips')
  const keptRings = join(dir, 'device', 'kept-rings')
  const lines: string[] = []
  let button = new SimulatedButton()
  const start = async (): Promise<Doorbell> => await startDoorbell({
    hubUrl: home.mqttUrl,
    pairing: { url: invite.url },
    dataDir: join(dir, 'device'),
    mesh: { enabled: false },
    ringTimeoutSeconds: 2,
    camera: { clipSeconds: SECONDS }
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  let device = await start()
  t.after(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))
  const eventOf = async (ringId: string): Promise<HistoryEvent | undefined> => (await home.asOwner.events({ limit: 50 })).events.find((e) => e.ringId === ringId)

  // The owner turns clips on; the doorbell keeps the signed setting on its disk.
  assert.equal((await home.asOwner.setClip('front-door', true)).clip, true)
  await eventually('the doorbell took the setting', () => lines.some((l) => l.includes('turned on the ring clip')), 15_000)

  // The hub goes away. A press: the ring, its pictures and its clip are kept on the doorbell's disk.
  await kill(hub, 'SIGKILL')
  button.press()
  const ringId = await eventually('the ring', () => device.state().call.ringId)
  await eventually('the clip kept on disk', () => readdirSync(keptClips).includes(`${ringId}.json`), 60_000)
  assert.deepEqual(readdirSync(keptClips).sort(), [`${ringId}.json`, `${ringId}.mp4`])
  const keptVideo = readFileSync(join(keptClips, `${ringId}.mp4`))
  const keptRecord = readFileSync(join(keptClips, `${ringId}.json`))
  assert.ok(lines.some((l) => l.includes('kept a ring\'s clip for the hub') && l.includes(ringId)), lines.filter((l) => l.includes('clip')).join('\n'))
  assert.ok(!lines.some((l) => l.includes('no clip for this ring')), 'the clip was not given up')
  await eventually('the ring kept, ended', () => {
    try { return KeptRing.parse(JSON.parse(readFileSync(join(keptRings, `${ringId}.json`), 'utf8'))).record !== null } catch { return false }
  }, 20_000)

  // The doorbell restarts while the hub is still away: only its disk holds the ring and the clip.
  await device.stop()
  button = new SimulatedButton()
  device = await start()
  assert.deepEqual(readdirSync(keptClips).sort(), [`${ringId}.json`, `${ringId}.mp4`])

  // The hub comes back: the ring once, with its picture and the clip; the doorbell's copies go.
  hub = startHubProcess(home.config)
  await device.hubConnected(AbortSignal.timeout(60_000))
  const event = await eventually('the kept ring with its clip', async () => { const e = await eventOf(ringId); return e?.clip && 'type' in e.clip ? e : undefined }, 60_000)
  assert.ok(event.clip && 'type' in event.clip)
  assert.equal(event.clip.type, 'video/mp4')
  assert.equal(event.clip.bytes, keptVideo.length)
  assert.ok(Math.abs(event.clip.seconds - SECONDS) < 1, `the clip is ${event.clip.seconds} s`)
  assert.equal(event.outcome, 'missed')
  assert.equal(event.snapshot, true)
  await eventually('the doorbell\'s copies handed over and dropped', () => readdirSync(keptClips).length === 0 && readdirSync(keptRings).length === 0, 30_000)
  assert.ok(hub.lines.some((l) => l.includes('kept a ring\'s clip') && l.includes(ringId)), hub.lines.slice(-20).join('\n'))

  // Served as the hub's own clips are: whole, and by ranges.
  const { url } = await home.asOwner.eventClipUrl(event.id)
  const whole = await fetch(url)
  assert.equal(whole.status, 200)
  assert.equal(whole.headers.get('content-type'), 'video/mp4')
  const video = Buffer.from(await whole.arrayBuffer())
  assert.ok(video.equals(keptVideo), 'the clip the doorbell kept, byte for byte')
  const part = await fetch(url, { headers: { range: 'bytes=100-199' } })
  assert.equal(part.status, 206)
  assert.equal(part.headers.get('content-range'), `bytes 100-199/${video.length}`)
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(video.subarray(100, 200)))
  const tail = await fetch(url, { headers: { range: 'bytes=-64' } })
  assert.equal(tail.status, 206)
  assert.ok(Buffer.from(await tail.arrayBuffer()).equals(video.subarray(video.length - 64)))
  assert.equal((await fetch(url, { headers: { range: `bytes=${video.length}-` } })).status, 416)

  // Playable: H.264 of about the configured length, every frame decodes, the test pattern in it.
  const file = join(dir, 'clip.mp4')
  writeFileSync(file, video)
  const probe = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames:format=duration,format_name', '-of', 'json', file])
  assert.equal(probe.status, 0, probe.stderr)
  const info = JSON.parse(probe.stdout.toString()) as { streams: Array<{ codec_name: string, nb_read_frames: string }>, format: { duration: string, format_name: string } }
  assert.equal(info.streams[0]?.codec_name, 'h264')
  assert.match(info.format.format_name, /mp4/)
  assert.ok(Math.abs(Number(info.format.duration) - SECONDS) < 1, `duration ${info.format.duration} s`)
  assert.ok(Number(info.streams[0]?.nb_read_frames) >= SECONDS * 10, `${info.streams[0]?.nb_read_frames} frames`)
  const decode = await run('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-f', 'null', '-'])
  assert.equal(decode.status, 0)
  assert.equal(decode.stderr.trim(), '', 'every frame decodes')
  const frame = await run('ffmpeg', ['-v', 'error', '-nostdin', '-ss', String(SECONDS / 2), '-i', file, '-frames:v', '1', '-vf', 'scale=640:-2', '-f', 'mjpeg', 'pipe:1'])
  assert.equal(frame.status, 0, frame.stderr)
  assertTestPatternBars(frame.stdout)

  // Handed over again (the files put back, as after a lost acknowledgement): nothing changes.
  const before = (await home.asOwner.events({ limit: 50 })).events.filter((e) => e.kind === 'ring')
  await device.stop()
  writeFileSync(join(keptClips, `${ringId}.mp4`), keptVideo)
  writeFileSync(join(keptClips, `${ringId}.json`), keptRecord)
  button = new SimulatedButton()
  device = await start()
  await device.hubConnected(AbortSignal.timeout(30_000))
  await eventually('the repeated clip taken', () => readdirSync(keptClips).length === 0, 30_000)
  await eventually('the hub says it had it', () => hub.lines.some((l) => l.includes('the hub has this clip already') && l.includes(ringId)), 10_000)
  const after = (await home.asOwner.events({ limit: 50 })).events.filter((e) => e.kind === 'ring')
  assert.deepEqual(after, before, 'the same events, the same clip')
})

test('a kept ring handed over with a clip that is not a video, or one over the size bound: the clip is refused with its reason, the ring is recorded with its picture', { timeout: 120_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const asOwner = new HubApi({ base: lan.hub.url, token: owner.token })
  const HOME = lan.hub.config.homeId
  // A second doorbell, as a broken or hostile one would speak: mqtt.js by hand.
  const sideId = 'side-door'
  const side = await pairDevice({ url: await deviceInvite(lan.hub, sideId), deviceId: sideId, deviceName: 'Side door', log: memoryLogger([], 'device') })
  const connect = async (): Promise<mqtt.MqttClient> => {
    const client = mqtt.connect(lan.hub.mqttUrl, { clientId: `device-${sideId}`, username: side.memberId, password: side.token, reconnectPeriod: 0 })
    await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('error', reject) })
    client.on('error', () => {})
    return client
  }
  const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(3000, 9), Buffer.from([0xff, 0xd9])])
  const keptRing = (ringId: string): KeptRing => {
    const at = Date.now() - 60_000
    const ring: RingEvent = { type: 'ring', deviceId: sideId, deviceName: 'Side door', ringId, at, count: 1 }
    const record: CallRecord = { deviceId: sideId, ringId, startedAt: at, endedAt: at + 30_000, outcome: 'missed', answeredBy: [], unlocks: [] }
    return { type: 'kept', deviceId: sideId, ring, snapshot: { type: 'snapshot', deviceId: sideId, ringId, at, seq: 1, jpeg: jpeg.toString('base64') }, record }
  }
  const partsOf = (ringId: string, bytes: Buffer): ClipPart[] => {
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    const parts = Math.ceil(bytes.length / CLIP_PART_BYTES)
    return Array.from({ length: parts }, (_, part) => ({ type: 'clip' as const, deviceId: sideId, ringId, container: 'mp4' as const, seconds: SECONDS, bytes: bytes.length, sha256, part, parts, data: bytes.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64') }))
  }
  const eventOf = async (ringId: string): Promise<HistoryEvent | undefined> => (await asOwner.events({ limit: 50, device: sideId })).events.find((e) => e.ringId === ringId)

  // Not a video (bytes that do not open as an MP4), each part well formed: refused, with the reason on the event.
  const notVideo = newId('r')
  const client = await connect()
  await client.publishAsync(topics.kept(HOME, sideId), encode(KeptRing, keptRing(notVideo)), { qos: 1 })
  for (const p of partsOf(notVideo, Buffer.alloc(CLIP_PART_BYTES + 5000, 0x42))) await client.publishAsync(topics.clip(HOME, sideId), JSON.stringify(p), { qos: 1 })
  const refused = await eventually('the refusal on the event', async () => { const e = await eventOf(notVideo); return e?.clip && 'failed' in e.clip ? e : undefined }, 20_000)
  assert.deepEqual(refused.clip, { failed: 'the doorbell\'s clip was refused: not an MP4 file (no ftyp box first)' })
  assert.equal(refused.outcome, 'missed', 'the ring is recorded')
  assert.equal(refused.snapshot, true, 'with its picture')
  assert.ok(lan.lines.some((l) => l.includes('refused a clip: it is not a video') && l.includes(notVideo)))
  const noClip = await fetch(`${lan.hub.url}api/events/${refused.id}/clip`, { headers: { authorization: `Bearer ${owner.token}` } })
  assert.equal(noClip.status, 404)
  assert.match((await noClip.json() as { error: string }).error, /not an MP4 file/)

  // Over the size bound: the broker's gate refuses the part (logged, the connection closed); the ring, handed over before it, is recorded.
  const oversize = newId('r')
  await client.publishAsync(topics.kept(HOME, sideId), encode(KeptRing, keptRing(oversize)), { qos: 1 })
  const big = { ...partsOf(oversize, Buffer.alloc(1000, 1))[0]!, bytes: MAX_CLIP_BYTES + 1, parts: Math.ceil((MAX_CLIP_BYTES + 1) / CLIP_PART_BYTES) }
  const closed = new Promise<void>((resolve) => client.once('close', () => { resolve() }))
  client.publish(topics.clip(HOME, sideId), JSON.stringify(big), { qos: 1 })
  await closed
  client.end(true)
  await eventually('the refusal logged', () => lan.lines.some((l) => l.includes('refused a publish') && l.includes(`${sideId}/clip`) && /bytes/.test(l)), 10_000)
  const recorded = await eventually('the ring recorded', async () => { const e = await eventOf(oversize); return e?.outcome === 'missed' ? e : undefined }, 20_000)
  assert.equal(recorded.snapshot, true)
  assert.equal(recorded.clip, undefined, 'no clip')
  assert.equal((await asOwner.events({ limit: 50, device: sideId })).events.length, 2, 'both rings, once each')
})
