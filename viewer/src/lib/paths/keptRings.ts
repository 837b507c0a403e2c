import type { KeptReadFrame, KeptRing } from '@doorbell/core'

export class KeptReadError extends Error {
  override readonly name = 'KeptReadError'
}

/**
 * The screen's one reading of a doorbell's answer to a read of its kept rings (core/src/directKept.ts),
 * whichever path carried it (the direct path's stream, direct/keptRead.ts; the KVS channel,
 * cloud/cloudKeptReads.ts): frames already parsed by their schema, in order; each ring must be that
 * doorbell's own, at most `max` of them; a refusal says why. `take` answers the rings once `end` came.
 */
export class KeptRingsAnswer {
  private readonly rings: KeptRing[] = []

  constructor (private readonly deviceId: string, private readonly max: number) {}

  take (f: KeptReadFrame): { rings: KeptRing[], more: boolean } | null {
    if (f.kind === 'refused') throw new KeptReadError(`the doorbell refused: ${f.message}`)
    if (f.kind === 'end') return { rings: this.rings, more: f.more }
    if (f.kept.deviceId !== this.deviceId) throw new KeptReadError(`${this.deviceId} sent another doorbell's ring`)
    if (this.rings.length >= this.max) throw new KeptReadError('the doorbell sent more rings than asked')
    this.rings.push(f.kept)
    return null
  }
}
