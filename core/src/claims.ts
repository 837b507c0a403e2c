import { z } from 'zod'
import { Id } from './ids'
import { SIGNED, Nonce, PublicKeyText, Signed, newNonce, sign, type SigningKey } from './signing'

/**
 * What the home signs (a member's grant, the revocation list) and what a viewer signs (an
 * open-door command, the proof that it holds its grant's key): the schemas and the signers.
 * The device's check of them is {@link DoorGuard} in ./trust.
 */

// ---------------------------------------------------------------- schemas

const Millis = z.number().int().nonnegative()
const Name = z.string().trim().min(1).max(64)

/** 16 random bytes, base64url. */
/** A signed revocation list: larger, still far below one MQTT message ({@link MAX_REVOKED} ids fit). */
export const SignedList = z.string().max(60_000).regex(SIGNED, 'not a signed list (payload.signature)')
/** Most ids a revocation list carries (about 30 bytes each once signed and encoded). */
export const MAX_REVOKED = 1500

/**
 * Owner: everything, including pairing and revoking. Resident: rings, calls, the door.
 * Guest: rings and calls, the door only if granted, often for a limited time. Operator: the
 * camera feeds of the zones granted, never the door.
 */
export const Role = z.enum(['owner', 'resident', 'guest', 'operator'])
export type Role = z.infer<typeof Role>

/** What the hub grants one viewer, signed with the home's key. */
export const Grant = z.strictObject({
  v: z.literal(1),
  /** The member id: what revocation names. */
  id: Id,
  home: Id,
  /** The viewer id this browser uses on every path. */
  sub: Id,
  name: Name,
  role: Role,
  /** May open the door (never for operators). */
  door: z.boolean(),
  /** Operators see only these zones. */
  zones: z.array(Id).max(64),
  /**
   * May talk on the doorbell's speaker and play quick replies (not for operators: see
   * `talkZones`). Absent in grants signed before the talk right: derived from the role ({@link mayTalk}).
   */
  talk: z.boolean().optional(),
  /** The zones where an operator may talk; absent: none. */
  talkZones: z.array(Id).max(64).optional(),
  /** The viewer's own public key: its open-door requests must be signed by it. */
  key: PublicKeyText,
  iat: Millis,
  /** The grant ends by itself then (a guest's visit); null: until revoked. */
  exp: Millis.nullable()
})
export type Grant = z.infer<typeof Grant>

/**
 * The talk right of a grant on a device in `zone`: an owner always; a resident unless the owner
 * turned it off; a guest only if the owner turned it on; an operator only in its `talkZones`.
 * A grant from before the right (no field) gets its role's default, so nothing paired breaks.
 */
export function mayTalk (grant: Pick<Grant, 'role' | 'talk' | 'talkZones'>, zone: string): boolean {
  switch (grant.role) {
    case 'owner': return true
    case 'resident': return grant.talk ?? true
    case 'guest': return grant.talk ?? false
    case 'operator': return (grant.talkZones ?? []).includes(zone)
  }
}

/** What a viewer signs to open one door, once. */
export const DoorClaim = z.strictObject({
  home: Id,
  device: Id,
  session: Id,
  /** The command id the device's reply echoes. */
  command: Id,
  /** The viewer's clock; the device accepts it within {@link FRESHNESS_MS} of its own. */
  ts: Millis,
  nonce: Nonce
})
export type DoorClaim = z.infer<typeof DoorClaim>

/**
 * What a viewer signs to be shown a device: in every offer (its session) and every direct-path
 * hello ({@link HELLO_SESSION}). Proves the sender holds the key its grant names.
 */
export const ViewClaim = z.strictObject({
  home: Id,
  device: Id,
  session: Id,
  /** The viewer's clock; the device accepts it within {@link FRESHNESS_MS} of its own. */
  ts: Millis,
  nonce: Nonce
})
export type ViewClaim = z.infer<typeof ViewClaim>

/**
 * The session a direct-path hello's proof names: the events stream belongs to no call. Its nonce
 * is spent by the hello, so the proof cannot serve again, as an offer or as another hello.
 */
export const HELLO_SESSION = 'events'

/** The home's list of revoked members, signed by the home, so any path may carry it to a device. */
export const RevocationList = z.strictObject({
  home: Id,
  /** Grows with every change; a device keeps the highest it has seen. */
  seq: z.number().int().nonnegative(),
  at: Millis,
  ids: z.array(Id).max(MAX_REVOKED)
})
export type RevocationList = z.infer<typeof RevocationList>

// ---------------------------------------------------------------- the open-door command

/** The open-door command as the data channel carries it. */
export const DoorCommand = z.strictObject({
  type: z.literal('unlock'),
  id: Id,
  /** The grant, signed by the home. */
  credential: Signed,
  /** A {@link DoorClaim}, signed by the viewer's key named in the grant. */
  proof: Signed
})
export type DoorCommand = z.infer<typeof DoorCommand>

/** Signs an open-door request: what the viewer does when the resident holds "Open door". */
export async function signDoorCommand (o: {
  credential: string
  key: SigningKey
  home: string
  device: string
  session: string
  command: string
  now?: number
}): Promise<DoorCommand> {
  const proof = await sign(DoorClaim, { home: o.home, device: o.device, session: o.session, command: o.command, ts: o.now ?? Date.now(), nonce: newNonce() }, o.key)
  return { type: 'unlock', id: o.command, credential: o.credential, proof }
}

// ---------------------------------------------------------------- proof of possession (offers, hellos)

/** Signs a {@link ViewClaim}: what the viewer puts in each offer and each direct-path hello. */
export async function signViewClaim (o: { key: SigningKey, home: string, device: string, session: string, now?: number }): Promise<string> {
  return await sign(ViewClaim, { home: o.home, device: o.device, session: o.session, ts: o.now ?? Date.now(), nonce: newNonce() }, o.key)
}

/** What an offer or a hello carries beside the grant: the signed {@link ViewClaim}, and the session it must name. */
export interface Possession {
  proof: string
  session: string
}
