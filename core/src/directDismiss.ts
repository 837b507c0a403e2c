import { z } from 'zod'
import { Signed } from './trust'
import { Id } from './ids'

/**
 * A dismissal on the direct path (docs/history.md, "Dismissed with the hub down"): a screen that
 * cannot reach the hub dismisses a ring on the doorbell itself, on `/doorbell/dismiss/1.0.0`. One
 * request per stream, signed as a hello is: the member's grant and a ViewClaim whose session is the
 * ring's id (so the proof dismisses that ring only), fresh and used once, checked by the doorbell's
 * `DoorGuard.admit`. The doorbell notes who and when on its kept copy of the ring, which the hub
 * takes when it is back. The rule is the hub's: guests may not (the history is not theirs), an
 * operator only in the doorbell's zone, an answered ring cannot be dismissed, and a ring the
 * doorbell no longer keeps (the hub has it) is refused.
 */
export const DismissDirectRequest = z.strictObject({
  homeId: Id,
  viewerId: Id,
  /** The viewer's grant, signed by the home. */
  credential: Signed,
  /** A ViewClaim for this device, its session the ring's id, signed by the grant's key. */
  proof: Signed,
  ringId: Id
})
export type DismissDirectRequest = z.infer<typeof DismissDirectRequest>

export const DismissDirectAnswer = z.discriminatedUnion('kind', [
  /** Kept: the ring still rings (`ringing`) or ended unanswered (`dismissed`). */
  z.strictObject({ kind: z.literal('dismissed'), outcome: z.enum(['ringing', 'dismissed']) }),
  /** Refused (not a member, a guest, a stale or replayed proof, an unknown or answered ring): why. */
  z.strictObject({ kind: z.literal('refused'), message: z.string().max(200) })
])
export type DismissDirectAnswer = z.infer<typeof DismissDirectAnswer>
