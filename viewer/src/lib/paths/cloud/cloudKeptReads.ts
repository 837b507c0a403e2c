import {
  KeptParts, KeptPartsError, MAX_CLOUD_KEPT_READ, decodeCloudKeptPart, isCloudKeptPart,
  type KeptRing
} from '@doorbell/core'
import { KeptReadError, KeptRingsAnswer } from '../keptRings'

/** One read waiting for its parts. */
interface Reading {
  deviceId: string
  parts: KeptParts | null
  resolve: (r: { rings: KeptRing[], more: boolean }) => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

/**
 * The reads of a doorbell's kept rings this screen sent on its KVS channel (core/src/cloudKept.ts),
 * waiting for their parts: each part parsed by its schema and matched by id, the joined answer
 * parsed into the direct path's frames and read by the same check (../keptRings.ts). The doorbell
 * paces its parts (a few a second), so a read waits `gapMs` for each next part, not for the whole.
 */
export class CloudKeptReads {
  private readonly waiting = new Map<string, Reading>()

  constructor (private readonly gapMs = 15_000) {}

  /** The rings of read `id` to doorbell `deviceId`, once every part came; KeptReadError when refused, malformed or silent. */
  expect (id: string, deviceId: string, firstMs: number): Promise<{ rings: KeptRing[], more: boolean }> {
    return new Promise((resolve, reject) => {
      const r: Reading = { deviceId, parts: null, resolve, reject, timer: undefined }
      this.waiting.set(id, r)
      this.arm(id, r, firstMs)
    })
  }

  private arm (id: string, r: Reading, ms: number): void {
    clearTimeout(r.timer)
    r.timer = setTimeout(() => { this.fail(id, new KeptReadError(`no answer from ${r.deviceId} in ${Math.round(ms / 1000)} s`)) }, ms)
  }

  /** Read `id` could not be sent, or its answer is wrong: its caller hears why. */
  fail (id: string, err: Error): void {
    const r = this.waiting.get(id)
    if (!r) return
    clearTimeout(r.timer)
    this.waiting.delete(id)
    r.reject(err)
  }

  /**
   * A payload from doorbell `deviceId`: true when it is a part of a kept-rings answer (taken, or
   * dropped with a log line), false when it is something else.
   */
  take (deviceId: string, payload: unknown, log: (message: string) => void): boolean {
    if (!isCloudKeptPart(payload)) return false
    const d = decodeCloudKeptPart(payload)
    if (!d.ok) { log(`rejected a part of the kept rings: ${d.error}`); return true }
    const p = d.message
    const r = p.id === null ? undefined : this.waiting.get(p.id)
    if (p.id === null || !r || r.deviceId !== deviceId) { log(`dropped a part of the kept rings for read ${p.id ?? '(unreadable)'}: nothing waits for it`); return true }
    try {
      r.parts ??= new KeptParts(p.parts)
      const frames = r.parts.add(p)
      if (frames === null) { this.arm(p.id, r, this.gapMs); return true }
      const answer = new KeptRingsAnswer(deviceId, MAX_CLOUD_KEPT_READ)
      let done: { rings: KeptRing[], more: boolean } | null = null
      for (const f of frames) {
        if (done) throw new KeptReadError('the doorbell sent frames after the end')
        done = answer.take(f)
      }
      if (!done) throw new KeptReadError('the doorbell\'s answer has no end')
      clearTimeout(r.timer)
      this.waiting.delete(p.id)
      r.resolve(done)
    } catch (err) {
      this.fail(p.id, err instanceof KeptPartsError ? new KeptReadError(`the doorbell sent a bad answer: ${err.message}`) : err as Error)
    }
    return true
  }

  /** Reads still waiting (a channel is not closed under them). */
  get waitingCount (): number { return this.waiting.size }

  /** Everything waiting fails (the client closes). */
  clear (why: string): void {
    for (const id of [...this.waiting.keys()]) this.fail(id, new KeptReadError(why))
  }
}
