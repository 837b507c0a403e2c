import { spawn } from 'node:child_process'
import { SNAPSHOT_TARGET_BYTES } from '@doorbell/core'
import { consecutive, rtpPayload } from './gop'

/**
 * The visitor's picture at the press (docs/history.md): the camera's cached group of pictures
 * (gop.ts: RTP from the latest keyframe) is unpacked into a stream ffmpeg reads (H.264 Annex B, or
 * VP8 in IVF), and its keyframe decoded in one short run and written as a JPEG 640 px wide. The
 * keyframe alone decodes without the frames after it, so the run is short (the second snapshot, 3 s
 * later, is of a newer keyframe). No second camera, no second encoder: what viewers are sent is
 * what is pictured.
 */

export class SnapshotError extends Error {
  override readonly name = 'SnapshotError'
}

const START_CODE = Buffer.from([0, 0, 0, 1])

/** RFC 6184: the NAL units of one H.264 RTP payload (single NAL, STAP-A, FU-A), as Annex B. */
export function h264AnnexB (packets: Buffer[]): Buffer {
  const out: Buffer[] = []
  for (const packet of packets) {
    const p = rtpPayload(packet)
    if (!p || p.length < 2) continue
    const type = p[0]! & 0x1f
    if (type >= 1 && type <= 23) {
      out.push(START_CODE, p)
    } else if (type === 24) {
      for (let i = 1; i + 2 <= p.length;) {
        const size = p.readUInt16BE(i)
        if (i + 2 + size > p.length) break
        out.push(START_CODE, p.subarray(i + 2, i + 2 + size))
        i += 2 + size
      }
    } else if (type === 28) {
      const fu = p[1]!
      // The start fragment rebuilds the NAL header (F and NRI from the indicator, type from the FU header).
      if (fu & 0x80) out.push(START_CODE, Buffer.from([(p[0]! & 0xe0) | (fu & 0x1f)]))
      out.push(p.subarray(2))
    }
  }
  return Buffer.concat(out)
}

/** RFC 7741: the payload descriptor's length, so what follows it is VP8 bitstream. */
function vp8DescriptorLength (p: Buffer): number {
  let i = 1
  if (p[0]! & 0x80) {
    const x = p[i++] ?? 0
    if (x & 0x80) i += (p[i]! & 0x80) ? 2 : 1
    if (x & 0x40) i += 1
    if (x & 0x30) i += 1
  }
  return i
}

/**
 * VP8 RTP as an IVF file (frames by RTP timestamp), which ffmpeg reads from a pipe. `rtpClock`: each
 * frame's time is its RTP timestamp (90 kHz) from the first, so a clip keeps its real pacing; else
 * frame n is at n/30 s (a snapshot decodes one frame and needs no timing).
 */
export function vp8Ivf (packets: Buffer[], width = 640, height = 480, rtpClock = false): Buffer {
  const frames: Buffer[][] = []
  const times: number[] = []
  let last = -1
  let first = -1
  for (const packet of packets) {
    const p = rtpPayload(packet)
    if (!p || p.length < 2) continue
    const ts = packet.readUInt32BE(4)
    if (first === -1) first = ts
    if (ts !== last || frames.length === 0) { frames.push([]); times.push((ts - first) >>> 0); last = ts }
    frames[frames.length - 1]!.push(p.subarray(vp8DescriptorLength(p)))
  }
  const header = Buffer.alloc(32)
  header.write('DKIF', 0, 'ascii')
  header.writeUInt16LE(0, 4)
  header.writeUInt16LE(32, 6)
  header.write('VP80', 8, 'ascii')
  header.writeUInt16LE(width, 12)
  header.writeUInt16LE(height, 14)
  header.writeUInt32LE(rtpClock ? 90_000 : 30, 16)
  header.writeUInt32LE(1, 20)
  header.writeUInt32LE(frames.length, 24)
  const out: Buffer[] = [header]
  frames.forEach((parts, n) => {
    const frame = Buffer.concat(parts)
    const fh = Buffer.alloc(12)
    fh.writeUInt32LE(frame.length, 0)
    fh.writeBigUInt64LE(BigInt(rtpClock ? times[n]! : n), 4)
    out.push(fh, frame)
  })
  return Buffer.concat(out)
}

export interface SnapshotOptions {
  ffmpeg: string
  codec: 'h264' | 'vp8'
  /** JPEG quality scale (ffmpeg -q:v, 2 best .. 31 worst). */
  quality?: number
  signal?: AbortSignal
}

/**
 * The keyframe's packets as handed over, if they are one whole frame: one RTP timestamp, no
 * sequence number missing, and the last packet carries the marker that ends a frame (RFC 6184, RFC 7741). Half a keyframe would
 * decode to a picture with blocks missing or smeared, so it is refused instead.
 */
export function wholeKeyframe (packets: Buffer[]): Buffer[] {
  if (packets.length === 0) throw new SnapshotError('the camera holds no keyframe (is it running?)')
  if (packets.some((p) => p.length < 12)) throw new SnapshotError('the keyframe holds a packet too short for RTP')
  const ts = packets[0]!.readUInt32BE(4)
  if (packets.some((p) => p.readUInt32BE(4) !== ts)) throw new SnapshotError('the keyframe\'s packets are of more than one frame')
  if ((packets[packets.length - 1]![1]! & 0x80) === 0) throw new SnapshotError('the keyframe is not whole (its last packet has no RTP marker)')
  if (!consecutive(packets)) throw new SnapshotError('the keyframe is not whole (a packet is missing in its sequence numbers)')
  return packets
}

/**
 * A whole keyframe (the camera's `keyframe()`) as a JPEG 640 px wide. A picture over the target
 * size is made again at a lower quality, once.
 */
export async function snapshotJpeg (keyframe: Buffer[], o: SnapshotOptions): Promise<Buffer> {
  const key = wholeKeyframe(keyframe)
  const input = o.codec === 'h264' ? h264AnnexB(key) : vp8Ivf(key)
  const first = await decodeLast(input, o, o.quality ?? 5)
  if (first.length <= SNAPSHOT_TARGET_BYTES) return first
  const second = await decodeLast(input, o, 14)
  if (second.length <= SNAPSHOT_TARGET_BYTES) return second
  throw new SnapshotError(`the picture is ${second.length} bytes even at low quality (at most ${SNAPSHOT_TARGET_BYTES})`)
}

async function decodeLast (input: Buffer, o: SnapshotOptions, quality: number): Promise<Buffer> {
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-f', o.codec === 'h264' ? 'h264' : 'ivf', '-i', 'pipe:0',
    '-vf', 'scale=640:-2', '-frames:v', '1', '-q:v', String(quality), '-f', 'mjpeg', 'pipe:1'
  ]
  const proc = spawn(o.ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(o.signal ? { signal: o.signal } : {}) })
  const out: Buffer[] = []
  let said = ''
  proc.stdout.on('data', (c: Buffer) => out.push(c))
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { said = (said + d).slice(-2000) })
  proc.stdin.on('error', () => {}) // ffmpeg gone early: its exit says why
  proc.stdin.end(input)
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', resolve)
  }).catch((err: Error) => { throw new SnapshotError(`ffmpeg could not run: ${err.message}`) })
  const jpeg = Buffer.concat(out)
  if (code !== 0 || jpeg.length < 4) throw new SnapshotError(`ffmpeg made no picture (exit ${code}): ${said.trim().split('\n').at(-1) ?? ''}`)
  return jpeg
}
