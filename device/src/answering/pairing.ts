import { z } from 'zod'
import { Id, MemberToken, PublicKeyText, type PairResponse } from '@doorbell/core'

/**
 * The pairing record: what a paired device keeps to sign in to its home's hub and to check its
 * viewers' grants. One record for every device; the doorbell adds its hub's name and CA, a
 * browser camera node its own id and name. Browser-safe: schemas only (the doorbell keeps it in
 * `dataDir/pairing.json`, a camera node in localStorage).
 */
const PairedMember = {
  homeId: Id,
  /** The member id: the MQTT user name. */
  memberId: Id,
  /** The MQTT password (and the API's bearer token). */
  token: MemberToken,
  /** The home's public key: every grant and revocation list is checked against it. */
  homeKey: PublicKeyText
}

/** What a paired doorbell keeps. */
export const DevicePairing = z.strictObject({
  ...PairedMember,
  hubName: z.string().min(1).max(64),
  /** The home CA (PEM) the hub's TLS certificate chains to; null for a development hub on plain HTTP. */
  ca: z.string().max(16_384).nullable(),
  /** The zone the owner put this doorbell in (absent in pairings made before zones: the default zone). */
  zone: Id.optional()
})
export type DevicePairing = z.infer<typeof DevicePairing>

/** What a browser camera node keeps (it has no private key to protect, and its hub is the page's origin). */
export const CameraNodePairing = z.strictObject({
  ...PairedMember,
  deviceId: Id,
  name: z.string().max(64).refine((name) => name.trim().length > 0, 'a camera has a name'),
  /** The zone the owner put this camera in (the invite's one zone). */
  zone: Id
})
export type CameraNodePairing = z.infer<typeof CameraNodePairing>

/** The member part of the hub's pairing answer: the one place these fields are picked. */
export function pairedMemberOf (r: PairResponse): { homeId: string, memberId: string, token: string, homeKey: string, zone: string | undefined } {
  return { homeId: r.homeId, memberId: r.member.id, token: r.token, homeKey: r.homeKey, zone: r.member.zones[0] }
}
