/**
 * Issue 19, the optional clip: the owner turns clips on for a doorbell (a signed per-doorbell
 * setting), and each ring's first seconds, cut by the doorbell from the H.264 it already sends
 * (remuxed with `-c copy`), are kept by the hub with the event: a valid MP4 of about N seconds
 * whose frames are the test pattern, served with Range requests to the members who may see the
 * event (guests 403), a failed clip saying why with the ring intact, and retention counting and
 * removing it. Real parts: the hub (Aedes, node:sqlite, Fastify), the doorbell (ffmpeg's test
 * pattern), ffmpeg/ffprobe to read the clip back.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HubApi } from '@doorbell/viewer/lib'
import type { HistoryEvent } from '@doorbell/core'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { assertTestPatternBars } from '../src/jpeg'

const SECONDS = 6

/**
 * A program's exit and output, without blocking the event loop: a blocked loop would miss the hub
 * closing an idle keep-alive connection, and the next fetch would be reset on it.
 */
async function run (bin: string, args: string[]): Promise<{ status: number | null, stdout: Buffer, stderr: string }> {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  let stderr = ''
  proc.stdout.on('data', (c: Buffer) => out.push(c))
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const status = await new Promise<number | null>((resolve, reject) => { proc.once('error', reject); proc.once('close', resolve) })
  return { status, stdout: Buffer.concat(out), stderr }
}

async function get (url: string, headers: Record<string, string> = {}): Promise<Response> {
  return await fetch(url, { headers })
}

test('the ring\'s clip: off by default; on, an MP4 of about N s of the test pattern, served with ranges to members only, a failure says why, retention removes it', { timeout: 180_000 }, async (t) => {
  // The cap (1 MB, the least the config allows) holds one clip and the pictures, not two clips.
  const lan = await startLan({ ringTimeoutSeconds: 2, camera: { clipSeconds: SECONDS, bitrateKbps: 4000 } }, { history: { retentionDays: 30, maxMegabytes: 1 } })
  t.after(() => lan.stop())
  t.after(() => { if (process.env.CLIP_DEBUG) console.log(lan.lines.slice(-40).join('\n')) })
  const hub = lan.hub
  const owner = await pairViewer(hub, { name: 'Owner', role: 'owner' })
  const guest = await pairViewer(hub, { name: 'Visitor', role: 'guest' })
  const resident = await pairViewer(hub, { name: 'Kitchen tablet', role: 'resident' })
  const asOwner = new HubApi({ base: hub.url, token: owner.token })
  const ring = async (): Promise<string> => {
    const before = lan.device.state().call.ringId
    lan.button.press()
    return await eventually('the ring', () => { const id = lan.device.state().call.ringId; return id !== before ? id : undefined })
  }
  const eventOf = async (ringId: string): Promise<HistoryEvent | undefined> => (await asOwner.events({ limit: 50 })).events.find((e) => e.ringId === ringId)

  // Off by default: a ring has no clip.
  const plain = await ring()
  await eventually('the first ring over, with its picture', async () => { const e = await eventOf(plain); return e?.outcome === 'missed' && e.snapshot })
  await new Promise((resolve) => setTimeout(resolve, (SECONDS + 1) * 1000))
  assert.equal((await eventOf(plain))?.clip, undefined)
  assert.ok(!lan.lines.some((l) => l.includes('clip recorded')))

  // Bad input changes nothing: a guest may not set it, a malformed body is refused.
  const put = async (token: string, body: string): Promise<Response> => await fetch(`${hub.url}api/devices/front-door/clip`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body })
  assert.equal((await put(guest.token, '{"clip":true}')).status, 403)
  assert.equal((await put(owner.token, '{"clip":"yes"}')).status, 400)
  assert.equal((await put(owner.token, '{"clip":true,"seconds":99}')).status, 400)
  assert.equal((await asOwner.stockSettings()).find((s) => s.deviceId === 'front-door')?.clip, undefined)

  // The owner turns it on: signed by the hub, taken by the doorbell.
  assert.equal((await asOwner.setClip('front-door', true)).clip, true)
  await eventually('the doorbell took the setting', () => lan.lines.some((l) => l.includes('turned on the ring clip')), 10_000)

  const first = await ring()
  const withClip = await eventually('the ring\'s clip at the hub', async () => { const e = await eventOf(first); return e?.clip && 'type' in e.clip ? e : undefined }, 30_000)
  assert.ok(withClip.clip && 'type' in withClip.clip)
  assert.equal(withClip.clip.type, 'video/mp4')
  assert.ok(Math.abs(withClip.clip.seconds - SECONDS) < 1, `the clip is ${withClip.clip.seconds} s`)
  assert.equal(withClip.outcome, 'missed')
  assert.equal(withClip.snapshot, true, 'the ring keeps its picture')

  // The video itself, through the member's short-lived address.
  const { url } = await asOwner.eventClipUrl(withClip.id)
  const whole = await get(url)
  assert.equal(whole.status, 200)
  assert.equal(whole.headers.get('content-type'), 'video/mp4')
  assert.equal(whole.headers.get('accept-ranges'), 'bytes')
  const video = Buffer.from(await whole.arrayBuffer())
  assert.equal(video.length, withClip.clip.bytes)
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-clip-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'clip.mp4')
  writeFileSync(file, video)
  const probe = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=codec_name,nb_read_frames:format=duration,format_name', '-of', 'json', file])
  assert.equal(probe.status, 0, probe.stderr)
  const info = JSON.parse(probe.stdout.toString()) as { streams: Array<{ codec_name: string, nb_read_frames: string }>, format: { duration: string, format_name: string } }
  assert.equal(info.streams[0]?.codec_name, 'h264')
  assert.match(info.format.format_name, /mp4/)
  assert.ok(Math.abs(Number(info.format.duration) - SECONDS) < 1, `duration ${info.format.duration} s`)
  // 30 frames a second from the test pattern, less the part of a keyframe interval before the press.
  assert.ok(Number(info.streams[0]?.nb_read_frames) >= (SECONDS - 1) * 30, `${info.streams[0]?.nb_read_frames} frames`)
  const decode = await run('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-f', 'null', '-'])
  assert.equal(decode.status, 0)
  assert.equal(decode.stderr.trim(), '', 'every frame decodes')
  for (const at of ['0', String(SECONDS / 2), String(SECONDS - 0.5)]) {
    const frame = await run('ffmpeg', ['-v', 'error', '-nostdin', '-ss', at, '-i', file, '-frames:v', '1', '-vf', 'scale=640:-2', '-f', 'mjpeg', 'pipe:1'])
    assert.equal(frame.status, 0, frame.stderr)
    assertTestPatternBars(frame.stdout)
  }

  // Range requests, so a <video> can seek.
  const part = await get(url, { range: 'bytes=100-199' })
  assert.equal(part.status, 206)
  assert.equal(part.headers.get('content-range'), `bytes 100-199/${video.length}`)
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), video.subarray(100, 200))
  const tail = await get(url, { range: 'bytes=-50' })
  assert.equal(tail.status, 206)
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), video.subarray(video.length - 50))
  const open = await get(url, { range: `bytes=${video.length - 10}-` })
  assert.equal(open.status, 206)
  assert.equal(Buffer.from(await open.arrayBuffer()).length, 10)
  assert.equal((await get(url, { range: `bytes=${video.length}-` })).status, 416)

  // Who may have it: the owner and residents (Bearer too); guests and strangers not.
  assert.equal((await get(`${hub.url}api/events/${withClip.id}/clip`, { authorization: `Bearer ${resident.token}`, range: 'bytes=0-9' })).status, 206)
  assert.equal((await get(`${hub.url}api/events/${withClip.id}/clip`, { authorization: `Bearer ${guest.token}` })).status, 403)
  assert.equal((await get(`${hub.url}api/events/${withClip.id}/clip-url`, { authorization: `Bearer ${guest.token}` })).status, 403)
  assert.equal((await get(`${hub.url}api/events/${withClip.id}/clip`)).status, 401)
  const ticket = new URL(url).searchParams.get('t')!
  assert.equal((await get(`${hub.url}api/events/${withClip.id}/clip?t=${ticket.slice(0, -2)}AA`)).status, 403, 'a forged ticket')
  assert.equal((await get(`${hub.url}api/events/${withClip.id + 1}/clip?t=${ticket}`)).status, 403, 'another event\'s ticket')
  assert.equal((await get(`${hub.url}api/events/${(await eventOf(plain))!.id}/clip`, { authorization: `Bearer ${owner.token}` })).status, 404, 'a ring with no clip')
  assert.equal((await get(`${hub.url}api/events/abc/clip`, { authorization: `Bearer ${owner.token}` })).status, 404)

  // A second clip: the pictures and two clips are over the 1 MB cap, so retention removes the oldest
  // event with its clip (the pictures alone are far under it).
  const second = await ring()
  const secondEvent = await eventually('the second clip', async () => { const e = await eventOf(second); return e?.clip && 'type' in e.clip ? e : undefined }, 30_000)
  const clipsDir = join(hub.config.dataDir, 'history', 'clips')
  assert.ok(existsSync(join(clipsDir, `${withClip.id}.mp4`)))
  await hub.history.prune()
  assert.equal(await eventOf(first), undefined, 'the oldest event went')
  assert.equal(existsSync(join(clipsDir, `${withClip.id}.mp4`)), false, 'its clip went with it')
  assert.equal((await get(url)).status, 404)
  assert.ok(lan.lines.some((l) => l.includes('history retention') && l.includes('deletedClips=1')), lan.lines.filter((l) => l.includes('retention')).join('\n'))

  // The owner deletes the event: its clip goes too.
  await asOwner.deleteEvent(secondEvent.id)
  assert.deepEqual(readdirSync(clipsDir).filter((n) => n.startsWith(`${secondEvent.id}.`)), [])

  // The camera down: the ring is kept, with the reason there is no clip.
  await lan.device.camera.stop()
  const dark = await ring()
  const failed = await eventually('the clip\'s failure at the hub', async () => { const e = await eventOf(dark); return e?.clip && 'failed' in e.clip ? e : undefined }, 30_000)
  assert.ok(failed.clip && 'failed' in failed.clip)
  assert.match(failed.clip.failed, /no picture to record/)
  assert.equal(failed.kind, 'ring')
  const refused = await get(`${hub.url}api/events/${failed.id}/clip`, { authorization: `Bearer ${owner.token}` })
  assert.equal(refused.status, 404)
  assert.match((await refused.json() as { error: string }).error, /no picture to record/)
})
