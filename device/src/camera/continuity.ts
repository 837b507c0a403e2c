/**
 * RTP sequence numbers and timestamps that run on across encoder restarts. Each new ffmpeg starts
 * its stream at a random sequence number and timestamp; sent as they are, a viewer's jitter buffer
 * takes a jump backwards as late packets and drops them, and the video does not resume until the
 * numbers wrap (about half the time, for minutes). So the first packet of a new encoder continues
 * where the last one stopped: the next sequence number, and the timestamp advanced by the time
 * that passed. Rewritten in place, before the datagram is kept or handed to any viewer.
 */
export class RtpContinuity {
  private seqOffset = 0
  private tsOffset = 0
  private last: { seq: number, ts: number, at: number } | null = null
  private fresh = true

  constructor (private readonly clockRate = 90_000, private readonly now: () => number = Date.now) {}

  /** The next packet starts a new encoder's stream. */
  restart (): void { this.fresh = true }

  rewrite (packet: Buffer): void {
    if (packet.length < 12) return
    const seq = packet.readUInt16BE(2)
    const ts = packet.readUInt32BE(4)
    if (this.fresh) {
      this.fresh = false
      if (this.last !== null) {
        const elapsed = Math.max(1, Math.round((this.now() - this.last.at) * this.clockRate / 1000))
        this.seqOffset = (this.last.seq + 1 - seq) & 0xffff
        this.tsOffset = (this.last.ts + elapsed - ts) >>> 0
      }
    }
    const outSeq = (seq + this.seqOffset) & 0xffff
    const outTs = (ts + this.tsOffset) >>> 0
    packet.writeUInt16BE(outSeq, 2)
    packet.writeUInt32BE(outTs, 4)
    this.last = { seq: outSeq, ts: outTs, at: this.now() }
  }
}
