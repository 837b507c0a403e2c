import { OPUS_PAYLOAD_TYPE } from './ffmpegArgs'

/** The one SSRC ffmpeg's decoder ever sees. */
export const SPEAKER_SSRC = 0x0d00_be11
const OPUS_RATE_PER_MS = 48

/**
 * Joins the Opus of several talkers, one after another, into one RTP stream for one decoder:
 * when the talker (or its SSRC) changes, sequence numbers go on from the last one sent and
 * timestamps from the last one plus the time that passed, so ffmpeg sees a single stream with
 * a pause in it instead of a new source it would drop or reorder. Each packet is copied:
 * the caller's buffer is left as it was.
 */
export class RtpSplice {
  private from: string | null = null
  private seqOffset = 0
  private tsOffset = 0
  private lastSeq = 0
  private lastTs = 0
  private lastAt = 0
  private started = false

  constructor (private readonly now: () => number = Date.now) {}

  /** The packet as the decoder should get it; null if it is not RTP. */
  next (source: string, packet: Uint8Array): Buffer | null {
    if (packet.length < 12 || (packet[0]! >> 6) !== 2) return null
    const out = Buffer.from(packet)
    const seq = out.readUInt16BE(2)
    const ts = out.readUInt32BE(4)
    const key = `${source}/${out.readUInt32BE(8)}`
    const t = this.now()
    if (key !== this.from) {
      this.from = key
      // The first packet of a new talker follows the last one sent, with the pause kept (at least one 20 ms frame).
      const nextSeq = this.started ? (this.lastSeq + 1) & 0xffff : seq
      const nextTs = this.started ? (this.lastTs + Math.max(960, Math.round((t - this.lastAt) * OPUS_RATE_PER_MS))) >>> 0 : ts
      this.seqOffset = (nextSeq - seq) & 0xffff
      this.tsOffset = (nextTs - ts) >>> 0
    }
    const outSeq = (seq + this.seqOffset) & 0xffff
    const outTs = (ts + this.tsOffset) >>> 0
    out.writeUInt16BE(outSeq, 2)
    out.writeUInt32BE(outTs, 4)
    out.writeUInt32BE(SPEAKER_SSRC, 8)
    // Keep the marker bit, set the payload type the decoder's SDP names.
    out[1] = (out[1]! & 0x80) | OPUS_PAYLOAD_TYPE
    // Only forward progress moves the splice point (a late packet must not rewind it).
    if (!this.started || ((outSeq - this.lastSeq) & 0xffff) < 0x8000) {
      this.lastSeq = outSeq
      this.lastTs = outTs
      this.lastAt = t
    }
    this.started = true
    return out
  }
}
