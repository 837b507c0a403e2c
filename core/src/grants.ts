import { z } from 'zod'
import { Id } from './ids'
import { Signed } from './signing'
import { Grant, SignedList } from './claims'

/**
 * A member's rights changed after pairing (the owner withdrew or gave back the talk or door
 * right in Home settings): the hub signs the member a new grant, and every device must refuse the
 * grants signed before it. The home signs a {@link ReissueList}: per member, "grants issued before
 * `from` are void". It is retained on `doorbell/{home}/grants` (hub only), beside the revocation
 * list and on its own topic, so a device from before it (whose revocation schemas are strict)
 * still takes revocations; such a device keeps honouring a replaced grant until it is updated.
 * A device keeps the list across restarts and checks it on every path ({@link DoorGuard}).
 */

/** Most members one list names: one entry per live member whose rights changed (a revoked member's goes). */
export const MAX_REISSUED = 1000

export const GrantFloor = z.strictObject({
  /** The member id (a grant's `id`). */
  id: Id,
  /** Grants of this member issued (`iat`) before this are void. */
  from: z.number().int().nonnegative()
})
export type GrantFloor = z.infer<typeof GrantFloor>

/** Signed by the home key; a device keeps the highest `seq` it has seen. */
export const ReissueList = z.strictObject({
  home: Id,
  seq: z.number().int().nonnegative(),
  at: z.number().int().nonnegative(),
  floors: z.array(GrantFloor).max(MAX_REISSUED)
})
export type ReissueList = z.infer<typeof ReissueList>

/** The retained message on `doorbell/{home}/grants`. */
export const GrantsMessage = z.strictObject({ list: SignedList })
export type GrantsMessage = z.infer<typeof GrantsMessage>

/**
 * `PUT /api/members/:id/rights` (owners): a person's door and talk rights. A resident or guest
 * takes `door` and `talk`; an operator only `talkZones` (never the door). An owner's rights are
 * all, always.
 */
export const MemberRightsRequest = z.strictObject({
  door: z.boolean().optional(),
  talk: z.boolean().optional(),
  talkZones: z.array(Id).max(64).optional()
}).refine((r) => r.door !== undefined || r.talk !== undefined || r.talkZones !== undefined, 'name a right to change: door, talk or talkZones')
export type MemberRightsRequest = z.infer<typeof MemberRightsRequest>

/** `GET /api/credential`: this screen's grant signed now, and since when its older grants are void (null: never changed). */
export const CredentialResponse = z.strictObject({ credential: Signed, grantsFrom: z.number().int().nonnegative().nullable() })
export type CredentialResponse = z.infer<typeof CredentialResponse>

/** Does a screen holding `grant` need the new one? Yes when its grant was issued before its floor. */
export function isGrantReplaced (grant: Pick<Grant, 'iat'>, grantsFrom: number | null | undefined): boolean {
  return grantsFrom !== null && grantsFrom !== undefined && grant.iat < grantsFrom
}
