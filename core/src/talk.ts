import { z } from 'zod'
import { Id } from './ids'
import { ReplyAck } from './replies'
import { Nonce, Signed, newNonce, sign, type SigningKey } from './signing'

/**
 * The talk lease on the call's data channel, beside the door's messages (schemas.ts). The
 * viewer asks with a signed `talk` command and keeps the lease with signed `renew`s while the
 * button is held (TalkCommand, trust.ts); it lets go with `talk-release`, which needs no
 * signature: it can only end the lease of the session it arrives on. The device answers each
 * command, and tells every session in the call who is talking whenever that changes.
 */

/** The viewer lets go of the lease (only its own session's lease ends). */
export const TalkRelease = z.strictObject({ type: z.literal('talk-release'), id: Id })
export type TalkRelease = z.infer<typeof TalkRelease>

/** The `type`s of data-channel commands that the talk lease handles (everything else is the door's); a quick reply holds the lease while it plays. */
export const TALK_COMMAND_TYPES: ReadonlySet<string> = new Set(['talk', 'renew', 'talk-release', 'reply'])

/**
 * busy: someone else holds the lease (`holder` names them); denied: the device's check refused
 * the command (no talk right, a forged, replayed or stale command); no-speaker: this device has
 * no speaker (a browser camera node); not-holder: a renew without the lease; no-reply: the quick
 * reply is not in the doorbell's list (or its replies are off: no espeak-ng).
 */
export const TalkErrorCode = z.enum(['invalid-command', 'denied', 'busy', 'no-speaker', 'not-holder', 'no-reply'])
export type TalkErrorCode = z.infer<typeof TalkErrorCode>

/** Who holds the lease, as every screen in the call is told. */
export const Talker = z.strictObject({
  session: Id,
  viewerId: Id,
  name: z.string().max(64)
})
export type Talker = z.infer<typeof Talker>

/** How the lease ended: what the holder's screen says. */
export const TalkEnd = z.enum(['released', 'left', 'connection-lost', 'silence', 'max'])
export type TalkEnd = z.infer<typeof TalkEnd>

/** Device -> viewer on the data channel, about the talk lease. */
export const TalkReply = z.discriminatedUnion('type', [
  /** The lease is this session's (or was renewed) for `leaseMs` more, unless it is released or silent first. */
  z.strictObject({ type: z.literal('talk-ack'), id: Id, leaseMs: z.number().int().positive() }),
  z.strictObject({
    type: z.literal('talk-nack'),
    id: Id.nullable(),
    error: z.strictObject({ code: TalkErrorCode, message: z.string().max(300) }),
    /** For `busy`: who is talking. */
    holder: z.string().max(64).nullable()
  }),
  /** Who is talking now (null: no one), sent to every session when it changes and when a channel opens. */
  z.strictObject({ type: z.literal('talker'), talker: Talker.nullable(), ended: TalkEnd.nullable() }),
  ReplyAck
])
export type TalkReply = z.infer<typeof TalkReply>

// ---------------------------------------------------------------- the talk command

/** What the viewer signs to take (`talk`) or keep (`renew`) the talk lease in one call, once. */
export const TalkClaim = z.strictObject({
  home: Id,
  device: Id,
  session: Id,
  command: Id,
  action: z.enum(['talk', 'renew']),
  ts: z.number().int().nonnegative(),
  nonce: Nonce
})
export type TalkClaim = z.infer<typeof TalkClaim>

/** A talk or renew command as the data channel carries it; checked like open-door, with the talk right. */
export const TalkCommand = z.strictObject({
  type: z.enum(['talk', 'renew']),
  id: Id,
  credential: Signed,
  /** A {@link TalkClaim}, signed by the viewer's key named in the grant. */
  proof: Signed
})
export type TalkCommand = z.infer<typeof TalkCommand>

export async function signTalkCommand (o: {
  type: TalkCommand['type'], credential: string, key: SigningKey, home: string, device: string, session: string, command: string, now?: number
}): Promise<TalkCommand> {
  const proof = await sign(TalkClaim, { home: o.home, device: o.device, session: o.session, command: o.command, action: o.type, ts: o.now ?? Date.now(), nonce: newNonce() }, o.key)
  return { type: o.type, id: o.command, credential: o.credential, proof }
}
