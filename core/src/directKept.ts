import { z } from 'zod'
import { Signed } from './trust'
import { Id } from './ids'
import { KeptRing, MAX_KEPT_MESSAGE_BYTES } from './history'

/**
 * The doorbell's own history on the direct path (docs/history.md, "The doorbell's copy while the
 * hub is down"): a screen that cannot reach the hub reads the rings the doorbell keeps
 * (`dataDir/kept-rings`: the rings the hub has not taken yet, with their pictures and how they
 * ended) on `/doorbell/kept/1.0.0`. One request, signed as a hello is (the member's grant and a
 * ViewClaim for {@link KEPT_SESSION}, fresh and used once), then one frame per ring, newest first,
 * and `end`. The history is for the owner, residents and operators of the doorbell's zone: a guest
 * is refused, as at the hub.
 */

/** The session a kept-rings read's proof names: no call. */
export const KEPT_SESSION = 'kept-rings'
/** The most rings one read answers (newest first); the doorbell keeps at most 200. */
export const MAX_KEPT_READ = 50

export const KeptReadRequest = z.strictObject({
  homeId: Id,
  viewerId: Id,
  /** The viewer's grant, signed by the home. */
  credential: Signed,
  /** A ViewClaim for this device and KEPT_SESSION signed by the grant's key. */
  proof: Signed
})
export type KeptReadRequest = z.infer<typeof KeptReadRequest>

export const KeptReadFrame = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('ring'), kept: KeptRing }),
  /** The read is over: this many rings were sent (the doorbell may keep more, older). */
  z.strictObject({ kind: z.literal('end'), count: z.number().int().min(0).max(MAX_KEPT_READ), more: z.boolean() }),
  /** Refused (not a member, a guest, a stale or replayed proof): why. */
  z.strictObject({ kind: z.literal('refused'), message: z.string().max(200) })
])
export type KeptReadFrame = z.infer<typeof KeptReadFrame>

/** A kept-rings frame at most: a kept ring and its frame's JSON. */
export const MAX_KEPT_FRAME_BYTES = MAX_KEPT_MESSAGE_BYTES + 64
