import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import type { AddressInfo } from 'node:net'
import { FFMPEG_PAYLOAD_TYPE, H264_FMTP, ffmpegArgs, parseSourceVideo, passthrough, probeArgs, type EncodeOptions } from '../src/camera/ffmpegArgs'
import { FfmpegMissingError, findFfmpeg } from '../src/camera/camera'

const PORT = 5004

const testPattern = { kind: 'test-pattern', width: 640, height: 480, fps: 30 } as const
const base: EncodeOptions = { source: testPattern, codec: 'h264', keyframeInterval: 15, bitrateKbps: 1500, rtpPort: PORT }

/** The value that follows `flag`; fails if the flag is absent or appears more than once. */
function valueOf (args: string[], flag: string): string {
  const at = args.flatMap((a, i) => a === flag ? [i] : [])
  assert.equal(at.length, 1, `${flag} appears once in: ${args.join(' ')}`)
  const v = args[at[0]! + 1]
  assert.ok(v !== undefined, `${flag} has a value`)
  return v
}

/** The input options, up to and including the last input. */
function inputPart (args: string[]): string[] {
  return args.slice(0, args.lastIndexOf('-i') + 2)
}

/** Options after the last input belong to the output; the output URL comes last. */
function outputPart (args: string[]): string[] {
  return args.slice(args.lastIndexOf('-i') + 2)
}

function assertRtpOutput (args: string[]): void {
  const out = outputPart(args)
  assert.equal(out.at(-1), `rtp://127.0.0.1:${PORT}`, 'RTP to the device\'s loopback socket, last')
  assert.equal(valueOf(out, '-f'), 'rtp')
  assert.equal(valueOf(out, '-pkt_size'), '1200', 'room for SRTP in a 1280-byte path')
  assert.equal(valueOf(out, '-payload_type'), String(FFMPEG_PAYLOAD_TYPE))
  assert.equal(FFMPEG_PAYLOAD_TYPE, 96)
  assert.ok(out.includes('-an'), 'no audio')
  assert.ok(!args.includes('-flags'), 'no +global_header: parameter sets must stay in-band')
  assert.ok(args.includes('-nostdin') || args.includes('pipe:0'), 'ffmpeg never waits on the terminal')
}

describe('ffmpegArgs', () => {
  test('H.264 from the test pattern: Baseline, repeated headers, no B-frames, fixed keyframe interval', () => {
    const args = ffmpegArgs(base)
    assert.ok(args.includes('-re'), 'real-time pacing for a synthetic source')
    assert.equal(valueOf(inputPart(args), '-f'), 'lavfi')
    assert.equal(valueOf(args, '-i'), 'testsrc=size=640x480:rate=30')
    const out = outputPart(args)
    assert.equal(valueOf(out, '-c:v'), 'libx264')
    assert.equal(valueOf(out, '-profile:v'), 'baseline')
    assert.equal(valueOf(out, '-pix_fmt'), 'yuv420p')
    assert.equal(valueOf(out, '-tune'), 'zerolatency')
    assert.equal(valueOf(out, '-bf'), '0')
    assert.equal(valueOf(out, '-x264-params'), 'repeat-headers=1')
    assert.equal(valueOf(out, '-g'), '15')
    assert.equal(valueOf(out, '-keyint_min'), '15')
    assert.equal(valueOf(out, '-sc_threshold'), '0', 'no extra keyframes on scene cuts')
    assert.equal(valueOf(out, '-b:v'), '1500k')
    assertRtpOutput(args)
    // The SDP the device offers describes what this encode produces: Constrained Baseline, mode 1.
    assert.match(H264_FMTP, /profile-level-id=42e01f/)
    assert.match(H264_FMTP, /packetization-mode=1/)
  })

  test('the keyframe interval, bitrate, size and port follow the options', () => {
    const args = ffmpegArgs({ ...base, source: { kind: 'test-pattern', width: 320, height: 240, fps: 15 }, keyframeInterval: 30, bitrateKbps: 400, rtpPort: 40000 })
    assert.equal(valueOf(args, '-i'), 'testsrc=size=320x240:rate=15')
    assert.equal(valueOf(args, '-g'), '30')
    assert.equal(valueOf(args, '-keyint_min'), '30')
    assert.equal(valueOf(args, '-b:v'), '400k')
    assert.equal(args.at(-1), 'rtp://127.0.0.1:40000')
  })

  test('VP8: libvpx in real time, fixed keyframe interval, no alt-ref frames', () => {
    const args = ffmpegArgs({ ...base, codec: 'vp8', keyframeInterval: 10 })
    const out = outputPart(args)
    assert.equal(valueOf(out, '-c:v'), 'libvpx')
    assert.equal(valueOf(out, '-deadline'), 'realtime')
    assert.equal(valueOf(out, '-g'), '10')
    assert.equal(valueOf(out, '-keyint_min'), '10')
    assert.equal(valueOf(out, '-auto-alt-ref'), '0')
    assert.ok(!args.includes('libx264') && !args.includes('-x264-params') && !args.includes('-profile:v'))
    assertRtpOutput(args)
  })

  test('RTSP passthrough: the camera\'s H.264 copied as it is, SPS/PPS dumped before every keyframe, nothing re-encoded', () => {
    const url = 'rtsp://192.168.1.20:554/stream1'
    const args = ffmpegArgs({ ...base, source: { kind: 'rtsp', url }, copyRtsp: true })
    assert.deepEqual(inputPart(args).slice(-4), ['-rtsp_transport', 'tcp', '-i', url])
    const out = outputPart(args)
    assert.equal(valueOf(out, '-c:v'), 'copy')
    assert.equal(valueOf(out, '-bsf:v'), 'dump_extra=freq=keyframe')
    for (const encoderOption of ['-profile:v', '-b:v', '-g', '-x264-params', '-preset']) assert.ok(!args.includes(encoderOption), `no ${encoderOption} when copying`)
    assertRtpOutput(args)
  })

  test('RTSP probe: ffmpeg asked to describe the camera over TCP', () => {
    assert.deepEqual(probeArgs('rtsp://cam/1'), ['-hide_banner', '-nostdin', '-rtsp_transport', 'tcp', '-i', 'rtsp://cam/1'])
  })

  test('RTSP: pulled over TCP and re-encoded to Baseline H.264', () => {
    const url = 'rtsp://192.168.1.20:554/stream1'
    const args = ffmpegArgs({ ...base, source: { kind: 'rtsp', url } })
    assert.equal(valueOf(args, '-rtsp_transport'), 'tcp')
    assert.equal(valueOf(args, '-i'), url)
    assert.ok(!args.includes('-re'), 'a live source paces itself')
    const out = outputPart(args)
    assert.equal(valueOf(out, '-c:v'), 'libx264')
    assert.equal(valueOf(out, '-profile:v'), 'baseline')
    assert.equal(valueOf(out, '-x264-params'), 'repeat-headers=1')
    assertRtpOutput(args)
  })

  test('Pi camera: H.264 from rpicam-vid on stdin is copied, with SPS/PPS dumped before every keyframe', () => {
    const args = ffmpegArgs({ ...base, source: { kind: 'picam', width: 1280, height: 720, fps: 30 } })
    assert.equal(valueOf(inputPart(args), '-f'), 'h264', 'raw H.264 in')
    assert.equal(valueOf(inputPart(args), '-framerate'), '30')
    assert.equal(valueOf(args, '-i'), 'pipe:0')
    const out = outputPart(args)
    assert.equal(valueOf(out, '-c:v'), 'copy')
    assert.equal(valueOf(out, '-bsf:v'), 'dump_extra=freq=keyframe')
    assert.ok(!args.includes('libx264') && !args.includes('-b:v') && !args.includes('-x264-params'), 'no re-encode')
    assertRtpOutput(args)
  })

  test('V4L2: the device, size and frame rate are passed to the capture', () => {
    const args = ffmpegArgs({ ...base, source: { kind: 'v4l2', device: '/dev/video2', width: 1280, height: 720, fps: 25 } })
    assert.equal(valueOf(inputPart(args), '-f'), 'v4l2')
    assert.equal(valueOf(inputPart(args), '-framerate'), '25')
    assert.equal(valueOf(inputPart(args), '-video_size'), '1280x720')
    assert.equal(valueOf(args, '-i'), '/dev/video2')
    assertRtpOutput(args)
  })
})

// ---------------------------------------------------------------- a real encode

/** H.264 NAL unit types carried by one RTP payload (RFC 6184: single NAL, STAP-A, FU-A start). */
function nalTypes (payload: Buffer): number[] {
  const type = payload[0]! & 0x1f
  if (type >= 1 && type <= 23) return [type]
  if (type === 24) {
    const types: number[] = []
    for (let i = 1; i + 2 < payload.length;) {
      const size = payload.readUInt16BE(i)
      types.push(payload[i + 2]! & 0x1f)
      i += 2 + size
    }
    return types
  }
  if (type === 28) return (payload[1]! & 0x80) !== 0 ? [payload[1]! & 0x1f] : []
  return []
}

interface Rtp { pt: number, marker: boolean, ts: number, ssrc: number, size: number, nals: number[] }

/**
 * Runs one ffmpeg into a fresh loopback socket and returns the RTP it sent. `argsFor` gets
 * the socket's port; `stdin` is written to ffmpeg's standard input. Killed after 5 s.
 */
async function encode (t: { after: (fn: () => unknown) => void }, argsFor: (port: number) => string[], stdin?: Buffer): Promise<Rtp[]> {
  const socket = createSocket('udp4')
  t.after(() => new Promise<void>((resolve) => { socket.close(() => resolve()) }))
  const packets: Rtp[] = []
  socket.on('message', (p, from) => {
    assert.equal(from.address, '127.0.0.1')
    packets.push({ pt: p[1]! & 0x7f, marker: (p[1]! & 0x80) !== 0, ts: p.readUInt32BE(4), ssrc: p.readUInt32BE(8), size: p.length, nals: p[0]! >> 6 === 2 ? nalTypes(p.subarray(12)) : [] })
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const args = argsFor((socket.address() as AddressInfo).port)
  const bin = findFfmpeg()
  const proc = spawn(bin, args, { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] })
  let stderr = ''
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const killer = setTimeout(() => { proc.kill('SIGKILL') }, 5000)
  t.after(() => { clearTimeout(killer); if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  if (stdin) proc.stdin!.end(stdin)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('exit', (c, s) => { resolve([c, s]) })
  })
  clearTimeout(killer)
  assert.equal(signal, null, `ffmpeg (${bin}) finished within 5 s`)
  assert.equal(code, 0, `ffmpeg (${bin}) exited cleanly: ${stderr}`)
  // The last datagrams may still be on their way through loopback.
  await new Promise((resolve) => setTimeout(resolve, 100))
  return packets
}

/** Ten frames, then ffmpeg ends by itself: the frame limit is an output option, before the URL. */
const tenFrames = (args: string[]): string[] => [...args.slice(0, -1), '-frames:v', '10', args.at(-1)!]

function assertTenFramesOfH264 (packets: Rtp[]): void {
  assert.ok(packets.length >= 10, `RTP arrived (${packets.length} packets)`)
  for (const p of packets) {
    assert.equal(p.pt, 96, 'payload type 96')
    assert.equal(p.ssrc, 1, 'ssrc 1')
    assert.ok(p.size > 12 && p.size <= 1200, `a packet of ${p.size} bytes fits pkt_size 1200`)
  }
  assert.equal(new Set(packets.map((p) => p.ts)).size, 10, 'ten frames, each with its own timestamp')
  assert.equal(packets.filter((p) => p.marker).length, 10, 'one marker bit per frame')
  // Every keyframe (frames 0 and 5 with an interval of 5) carries SPS and PPS in-band.
  const keyframes = [...new Set(packets.filter((p) => p.nals.includes(5)).map((p) => p.ts))]
  assert.equal(keyframes.length, 2, 'a keyframe every 5 frames')
  for (const ts of keyframes) {
    const nals = packets.filter((p) => p.ts === ts).flatMap((p) => p.nals)
    assert.ok(nals.includes(7) && nals.includes(8), `SPS and PPS with the keyframe at ${ts} (NAL types: ${nals.join(',')})`)
  }
}

test('a real ffmpeg sends the 10-frame H.264 test pattern as RTP with payload type 96 to 127.0.0.1', { timeout: 15_000 }, async (t) => {
  const packets = await encode(t, (port) => tenFrames(ffmpegArgs({
    ...base, source: { kind: 'test-pattern', width: 320, height: 240, fps: 30 }, keyframeInterval: 5, rtpPort: port
  })))
  assertTenFramesOfH264(packets)
})

/** Drops SPS (7) and PPS (8) NAL units after the first keyframe of an Annex B stream. */
function stripRepeatedParameterSets (annexB: Buffer): Buffer {
  const starts: number[] = []
  for (let i = 0; i + 3 <= annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1) { starts.push(i + 3); i += 2 }
  }
  assert.ok(starts.length > 0, 'an Annex B stream')
  const kept: Buffer[] = []
  let seenKeyframe = false
  let dropped = 0
  starts.forEach((start, n) => {
    let end = n + 1 < starts.length ? starts[n + 1]! - 3 : annexB.length
    while (end > start && annexB[end - 1] === 0) end-- // the zero of a 4-byte start code
    const type = annexB[start]! & 0x1f
    if (seenKeyframe && (type === 7 || type === 8)) { dropped++; return }
    if (type === 5) seenKeyframe = true
    kept.push(Buffer.from([0, 0, 0, 1]), annexB.subarray(start, end))
  })
  assert.ok(dropped >= 2, 'the encoder had repeated the parameter sets; now it has not')
  return Buffer.concat(kept)
}

test('a real ffmpeg packetizes Pi-camera-style H.264 from stdin and repeats SPS/PPS at each keyframe', { timeout: 15_000 }, async (t) => {
  // Raw Baseline H.264 as a camera may write it: parameter sets only at the start, so only
  // dump_extra can put them before the second keyframe.
  const raw = stripRepeatedParameterSets(await new Promise<Buffer>((resolve, reject) => {
    const proc = spawn(findFfmpeg(), ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30',
      '-frames:v', '10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-profile:v', 'baseline', '-g', '5', '-keyint_min', '5', '-sc_threshold', '0', '-f', 'h264', 'pipe:1'],
    { stdio: ['ignore', 'pipe', 'inherit'] })
    const chunks: Buffer[] = []
    const killer = setTimeout(() => { proc.kill('SIGKILL') }, 5000)
    proc.stdout.on('data', (c: Buffer) => { chunks.push(c) })
    proc.once('error', reject)
    proc.once('close', (code) => { clearTimeout(killer); code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`ffmpeg exited with ${code}`)) })
  }))
  const packets = await encode(t, (port) => ffmpegArgs({ ...base, source: { kind: 'picam', width: 320, height: 240, fps: 30 }, rtpPort: port }), raw)
  assertTenFramesOfH264(packets)
})

describe('RTSP passthrough: what the camera sends decides', () => {
  // Stream lines as Debian's ffmpeg 5.1 printed them for GStreamer's RTSP server and for an H.265 camera.
  const BASELINE = '  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(tv, smpte170m, progressive), 640x360 [SAR 1:1 DAR 16:9], 30 fps, 30 tbr, 90k tbn'
  const MAIN = '  Stream #0:0: Video: h264 (Main), yuv420p(tv, smpte170m, progressive), 640x360 [SAR 1:1 DAR 16:9], 30 fps, 30 tbr, 90k tbn'
  const HEVC = '  Stream #0:0: Video: hevc (Main), yuvj420p(pc, bt709), 1920x1080, 25 fps, 25 tbr, 90k tbn'
  const MJPEG = '  Stream #0:1: Video: mjpeg (Baseline), yuvj422p(pc, bt470bg/unknown/unknown), 1280x720, 90k tbr, 90k tbn'

  test('the codec and profile are read from ffmpeg\'s stream line', () => {
    assert.deepEqual(parseSourceVideo(`Input #0, rtsp, from 'rtsp://x':\n${BASELINE}\nAt least one output file must be specified`), { codec: 'h264', profile: 'Constrained Baseline' })
    assert.deepEqual(parseSourceVideo(MAIN), { codec: 'h264', profile: 'Main' })
    assert.deepEqual(parseSourceVideo(HEVC), { codec: 'hevc', profile: 'Main' })
    assert.deepEqual(parseSourceVideo('  Stream #0:0[0x100]: Video: h264 (avc1 / 0x31637661), yuv420p, 640x480'), { codec: 'h264', profile: null }, 'a codec tag is not a profile')
    assert.equal(parseSourceVideo('rtsp://x: Connection refused'), null)
  })

  test('(Constrained) Baseline H.264 passes through; another profile or codec, or VP8 configured, is re-encoded, saying why', () => {
    assert.deepEqual(passthrough('h264', parseSourceVideo(BASELINE)), { copy: true, why: 'the camera sends H.264 Constrained Baseline' })
    assert.equal(passthrough('h264', { codec: 'h264', profile: 'Baseline' }).copy, true)
    assert.deepEqual(passthrough('h264', parseSourceVideo(MAIN)), { copy: false, why: 'the camera sends H.264 Main, not (Constrained) Baseline' })
    assert.deepEqual(passthrough('h264', { codec: 'h264', profile: 'High' }).copy, false)
    assert.deepEqual(passthrough('h264', parseSourceVideo(HEVC)), { copy: false, why: 'the camera sends hevc, not H.264' })
    assert.deepEqual(passthrough('h264', parseSourceVideo(MJPEG)), { copy: false, why: 'the camera sends mjpeg, not H.264' })
    assert.deepEqual(passthrough('h264', { codec: 'h264', profile: null }), { copy: false, why: 'the camera sends H.264 (profile unknown), not (Constrained) Baseline' })
    assert.deepEqual(passthrough('vp8', parseSourceVideo(BASELINE)), { copy: false, why: 'the camera codec is set to vp8' })
    assert.deepEqual(passthrough('h264', null), { copy: false, why: 'the camera\'s stream could not be probed' })
  })
})

test('no ffmpeg on PATH and none bundled (a production install without Debian\'s ffmpeg): a clear, named error', () => {
  const missing = (): string => { throw Object.assign(new Error("Cannot find module '@ffmpeg-installer/ffmpeg'\nRequire stack: …"), { code: 'MODULE_NOT_FOUND' }) }
  assert.throws(() => findFfmpeg(undefined, '/nonexistent', missing), (err: unknown) => {
    assert.ok(err instanceof FfmpegMissingError)
    assert.equal(err.name, 'FfmpegMissingError')
    assert.match(err.message, /no ffmpeg on PATH and no @ffmpeg-installer\/ffmpeg \(Cannot find module '@ffmpeg-installer\/ffmpeg'\): install Debian's \(sudo apt install ffmpeg\)/)
    return true
  })
  assert.equal(findFfmpeg('/opt/ffmpeg', '/nonexistent', missing), '/opt/ffmpeg')
  assert.equal(findFfmpeg(undefined, '/nonexistent', () => '/bundled/ffmpeg'), '/bundled/ffmpeg')
})
