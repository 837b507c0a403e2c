import { SnapshotEvent, describeError, type Logger } from '@doorbell/core'
import { SnapshotDecoder } from './snapshotDecoder'

/** The second picture: the visitor has usually stepped closer by then. */
export const SECOND_SNAPSHOT_MS = 3000

export interface RingSnapshotsOptions {
  deviceId: string
  camera: { keyframe: () => Buffer[], codec: 'h264' | 'vp8', ffmpeg: string }
  /** Hands the picture to every path that carries snapshots (after the ring itself has gone). */
  publish: (snapshot: SnapshotEvent) => void
  log: Logger
  now?: () => number
  secondAfterMs?: number
  /** `one-shot`: an ffmpeg start per picture (the camera's `snapshotDecoder` setting). */
  decoder?: 'running' | 'one-shot'
}

/**
 * A ring's pictures: one at the press, one a few seconds later that replaces it. A picture that
 * cannot be made (the camera is down) goes out as `jpeg: null` with the reason, so the banner says
 * "no picture" instead of waiting; the ring itself never waits for any of this.
 */
export class RingSnapshots {
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly abort = new AbortController()
  private readonly now: () => number
  /** One long-running decoder for all of this doorbell's pictures (snapshotDecoder.ts). */
  readonly decoder: SnapshotDecoder

  constructor (private readonly o: RingSnapshotsOptions) {
    this.now = o.now ?? Date.now
    this.decoder = new SnapshotDecoder({ ffmpeg: o.camera.ffmpeg, codec: o.camera.codec, log: o.log, oneShot: o.decoder === 'one-shot' })
  }

  afterRing (ringId: string): void {
    void this.take(ringId, 1)
    const timer = setTimeout(() => { this.timers.delete(timer); void this.take(ringId, 2) }, this.o.secondAfterMs ?? SECOND_SNAPSHOT_MS)
    this.timers.add(timer)
  }

  /** Makes one picture and publishes it (or its absence); never throws. */
  async take (ringId: string, seq: number): Promise<SnapshotEvent | null> {
    const at = this.now()
    const started = performance.now()
    let event: SnapshotEvent
    try {
      const jpeg = await this.decoder.jpeg(this.o.camera.keyframe())
      if (this.abort.signal.aborted) return null
      event = { type: 'snapshot', deviceId: this.o.deviceId, ringId, at, seq, jpeg: jpeg.toString('base64') }
      this.o.log.info('snapshot', { ringId, seq, bytes: jpeg.length, ms: Math.round(performance.now() - started), by: this.decoder.lastPath ?? '' })
    } catch (err) {
      if (this.abort.signal.aborted) return null
      const reason = describeError(err).slice(0, 200)
      this.o.log.warn('no snapshot for this ring', { ringId, seq, reason })
      event = { type: 'snapshot', deviceId: this.o.deviceId, ringId, at, seq, jpeg: null, reason }
    }
    // Checked as the hub and the viewers will check it: a picture they would refuse is not sent.
    const checked = SnapshotEvent.safeParse(event)
    if (!checked.success) {
      this.o.log.error('a snapshot failed its own schema', { ringId, error: checked.error.issues[0]?.message ?? '' })
      return null
    }
    this.o.publish(checked.data)
    return checked.data
  }

  stop (): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.abort.abort()
    this.decoder.stop()
  }
}
