/**
 * The last group of pictures, so a viewer who joins sees the visitor at once instead of
 * waiting up to a whole keyframe interval for the encoder's next keyframe.
 *
 * The camera keeps every RTP datagram since the most recent keyframe. A new viewer gets
 * that group first, then the live packets. The cached frames are already old, so their
 * RTP timestamps are pulled forward to just before the newest frame's: the viewer's jitter
 * buffer then decodes them at once and shows the newest picture, instead of pacing out
 * frames it thinks are late. Sequence numbers stay as they are, so the stream is gapless.
 */

/** RTP payload of a datagram (RFC 3550: CSRCs, header extension and padding skipped). */
export function rtpPayload (packet: Buffer): Buffer | null {
  if (packet.length < 12 || (packet[0]! >> 6) !== 2) return null
  let offset = 12 + 4 * (packet[0]! & 0x0f)
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return null
    offset += 4 + 4 * packet.readUInt16BE(offset + 2)
  }
  const padding = packet[0]! & 0x20 ? packet[packet.length - 1]! : 0
  const end = packet.length - padding
  return offset < end ? packet.subarray(offset, end) : null
}

export const rtpTimestamp = (packet: Buffer): number => packet.readUInt32BE(4)

const H264_IDR = 5
const H264_SPS = 7

/** RFC 6184: does this H.264 RTP payload carry an IDR slice or a sequence parameter set? */
export function isH264Keyframe (payload: Buffer): boolean {
  const type = payload[0]! & 0x1f
  if (type === H264_IDR || type === H264_SPS) return true
  if (type === 24) { // STAP-A: [size:16][NAL]...
    for (let i = 1; i + 2 < payload.length;) {
      const size = payload.readUInt16BE(i)
      const inner = payload[i + 2]! & 0x1f
      if (inner === H264_IDR || inner === H264_SPS) return true
      i += 2 + size
    }
    return false
  }
  if (type === 28) { // FU-A: the start fragment names the NAL type
    const fu = payload[1] ?? 0
    return (fu & 0x80) !== 0 && (fu & 0x1f) === H264_IDR
  }
  return false
}

/** RFC 7741: the first packet of a VP8 key frame (partition 0 start, P bit clear). */
export function isVp8Keyframe (payload: Buffer): boolean {
  const b0 = payload[0]!
  if ((b0 & 0x10) === 0 || (b0 & 0x07) !== 0) return false
  let i = 1
  if (b0 & 0x80) {
    const x = payload[i++] ?? 0
    if (x & 0x80) i += (payload[i]! & 0x80) ? 2 : 1 // PictureID, 7 or 15 bits
    if (x & 0x40) i += 1 // TL0PICIDX
    if (x & 0x30) i += 1 // TID / KEYIDX
  }
  return i < payload.length && (payload[i]! & 0x01) === 0
}

export function isKeyframePacket (codec: 'h264' | 'vp8', packet: Buffer): boolean {
  const payload = rtpPayload(packet)
  if (!payload || payload.length < 2) return false
  return codec === 'h264' ? isH264Keyframe(payload) : isVp8Keyframe(payload)
}

interface Frame { timestamp: number, packets: Buffer[] }

/** No packet missing in between: each RTP sequence number follows the one before (mod 2^16). */
export function consecutive (packets: readonly Buffer[]): boolean {
  for (let i = 1; i < packets.length; i++) {
    if (((packets[i - 1]!.readUInt16BE(2) + 1) & 0xffff) !== packets[i]!.readUInt16BE(2)) return false
  }
  return true
}

export interface GopLimits {
  /** Past this, the group is dropped until the next keyframe (a stuck encoder must not grow memory). */
  maxPackets: number
  maxBytes: number
}

export const DEFAULT_GOP_LIMITS: GopLimits = { maxPackets: 4000, maxBytes: 8 * 1024 * 1024 }

export class GopCache {
  private frames: Frame[] = []
  private packets = 0
  private bytes = 0
  /** True while frames[0] is a keyframe: only then is there anything worth replaying. */
  private keyed = false
  /**
   * The newest keyframe known to be whole: its last packet carried the RTP marker (RFC 6184,
   * RFC 7741) and none is missing in between. While the next one is still arriving (or one of its
   * packets was lost), this is the one before it.
   */
  private wholeKey: Buffer[] | null = null

  constructor (private readonly codec: 'h264' | 'vp8', private readonly limits: GopLimits = DEFAULT_GOP_LIMITS) {}

  push (packet: Buffer): void {
    if (packet.length < 12) return
    const timestamp = rtpTimestamp(packet)
    let frame = this.frames[this.frames.length - 1]
    if (!frame || frame.timestamp !== timestamp) {
      // Until a keyframe is seen only the current frame is kept (it may hold the SPS/PPS).
      if (!this.keyed) this.clear()
      frame = { timestamp, packets: [] }
      this.frames.push(frame)
    }
    frame.packets.push(packet)
    this.packets++
    this.bytes += packet.length
    if (isKeyframePacket(this.codec, packet)) {
      if (this.frames[0] !== frame) {
        // A new group starts with this frame, its earlier packets included.
        this.frames = [frame]
        this.packets = frame.packets.length
        this.bytes = frame.packets.reduce((n, p) => n + p.length, 0)
      }
      this.keyed = true
    }
    if (this.keyed && frame === this.frames[0] && (packet[1]! & 0x80) !== 0 && consecutive(frame.packets)) this.wholeKey = frame.packets.slice()
    if (this.packets > this.limits.maxPackets || this.bytes > this.limits.maxBytes) this.clear()
  }

  clear (): void {
    this.frames = []
    this.packets = 0
    this.bytes = 0
    this.keyed = false
    this.wholeKey = null
  }

  get size (): { frames: number, packets: number, bytes: number, keyed: boolean } {
    return { frames: this.frames.length, packets: this.packets, bytes: this.bytes, keyed: this.keyed }
  }

  /** The group from its keyframe, as fresh copies with the timestamps they were sent with (a clip's timing). */
  group (): Buffer[] {
    return this.keyed ? this.frames.flatMap((f) => f.packets.map((p) => Buffer.from(p))) : []
  }

  /**
   * The newest whole keyframe's packets (SPS/PPS included), as fresh copies: a picture asked for
   * while a keyframe is still arriving is made from the one before, never from half of one.
   * Empty when none is held.
   */
  keyframe (): Buffer[] {
    return this.wholeKey ? this.wholeKey.map((p) => Buffer.from(p)) : []
  }

  /**
   * The group from its keyframe, as fresh copies: every frame but the newest gets a
   * timestamp just below the newest frame's, in order. Empty when no keyframe is held.
   */
  replay (): Buffer[] {
    if (!this.keyed) return []
    const last = this.frames.length - 1
    const newest = this.frames[last]!.timestamp
    const out: Buffer[] = []
    this.frames.forEach((frame, i) => {
      const timestamp = i === last ? frame.timestamp : (newest - (last - i)) >>> 0
      for (const packet of frame.packets) {
        const copy = Buffer.from(packet)
        copy.writeUInt32BE(timestamp, 4)
        out.push(copy)
      }
    })
    return out
  }
}
