import { z } from 'zod'
import { Id } from './ids'
import { Nonce, SIGNED, Signed, newNonce, sign, type SigningKey } from './signing'

/**
 * Quick replies: a short list the owner keeps ("Leave it at the door"), which the doorbell
 * plays on its speaker on a signed `reply` command, during a call or from the ring banner.
 *
 * The list travels signed by the owner's own key with the owner's grant beside it
 * ({@link SignedReplies}): the hub keeps it and retains it for the devices, and each device
 * checks it (a live owner of its home, the owner's signature, newer than the one it has)
 * before it renders anything. A `reply` command is checked like `talk` (the talk right).
 */

/** Most replies in the list. */
export const MAX_REPLIES = 8
/** Most characters in one reply (what espeak-ng says in a few seconds). */
export const REPLY_MAX_CHARS = 120

/** One reply: printable text, no control characters (it is spoken and shown). */
export const ReplyText = z.string().trim()
  .min(1, 'a reply is not empty')
  .max(REPLY_MAX_CHARS, `a reply has at most ${REPLY_MAX_CHARS} characters`)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'a reply is one line of text, without control characters')

/** The owner's list: at most {@link MAX_REPLIES}, no two alike. */
export const QuickReplies = z.array(ReplyText).max(MAX_REPLIES, `at most ${MAX_REPLIES} quick replies`)
  .refine((list) => new Set(list.map((r) => r.toLowerCase())).size === list.length, 'two quick replies are the same')

/** What the owner signs: the whole list, dated (a device keeps the newest it has seen). */
export const ReplyList = z.strictObject({
  home: Id,
  /** The owner's clock when the list was saved; a device takes only a list newer than its own. */
  at: z.number().int().nonnegative(),
  replies: QuickReplies
})
export type ReplyList = z.infer<typeof ReplyList>

/**
 * The hub's order of the lists it kept: a sequence it stamps (never the owner's browser clock,
 * which may be wrong), signed by the home key over the list's own signature. A device takes only
 * a list stamped after the one it holds.
 */
export const RepliesStamp = z.strictObject({
  home: Id,
  seq: z.number().int().positive(),
  /** The signature part of the {@link SignedReplies} `list` token it orders. */
  list: z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'the list token\'s signature')
})
export type RepliesStamp = z.infer<typeof RepliesStamp>

/** The signed list as the hub stores, retains and serves it. */
export const SignedReplies = z.strictObject({
  /** The owner's grant, signed by the home. */
  credential: Signed,
  /** A {@link ReplyList}, signed by the key the owner's grant names. */
  list: z.string().max(8192).regex(SIGNED, 'not a signed token (payload.signature)'),
  /** The hub's {@link RepliesStamp}, signed by the home; absent in what the owner sends (the hub stamps it). */
  stamp: Signed.optional()
})
export type SignedReplies = z.infer<typeof SignedReplies>

/** The signature part of a signed token: what a {@link RepliesStamp} names. */
export function signatureOf (token: string): string {
  return token.slice(token.lastIndexOf('.') + 1)
}

/** The owner signs the list it saves (in Home settings). */
export async function signReplyList (o: { credential: string, key: SigningKey, home: string, replies: string[], now?: number }): Promise<SignedReplies> {
  const list = await sign(ReplyList, { home: o.home, at: o.now ?? Date.now(), replies: o.replies }, o.key)
  return { credential: o.credential, list }
}

/** What a member signs to play one reply on one doorbell, once. `session`: the call's, or the command channel's. */
export const ReplyClaim = z.strictObject({
  home: Id,
  device: Id,
  session: Id,
  command: Id,
  /** The reply's text, so a list changed since the press cannot make it say something else. */
  reply: ReplyText,
  ts: z.number().int().nonnegative(),
  nonce: Nonce
})
export type ReplyClaim = z.infer<typeof ReplyClaim>

/** The `reply` command (data channel, or the signed command channel outside a call). */
export const ReplyCommand = z.strictObject({
  type: z.literal('reply'),
  id: Id,
  reply: ReplyText,
  credential: Signed,
  /** A {@link ReplyClaim}, signed by the viewer's key named in the grant. */
  proof: Signed
})
export type ReplyCommand = z.infer<typeof ReplyCommand>

export async function signReplyCommand (o: {
  credential: string, key: SigningKey, home: string, device: string, session: string, command: string, reply: string, now?: number
}): Promise<ReplyCommand> {
  const proof = await sign(ReplyClaim, { home: o.home, device: o.device, session: o.session, command: o.command, reply: o.reply, ts: o.now ?? Date.now(), nonce: newNonce() }, o.key)
  return { type: 'reply', id: o.command, reply: o.reply, credential: o.credential, proof }
}

/** Device -> viewer: the reply is playing (for `durationMs`); refusals are `talk-nack`s. */
export const ReplyAck = z.strictObject({ type: z.literal('reply-ack'), id: Id, durationMs: z.number().int().nonnegative() })
export type ReplyAck = z.infer<typeof ReplyAck>

/** The owner saves the list (`PUT /api/replies`). */
export const RepliesRequest = SignedReplies
/** `GET /api/replies`: the list as it stands (empty, never signed, before the owner saves one). */
export const RepliesResponse = z.strictObject({ replies: QuickReplies, at: z.number().int().nonnegative().nullable(), signed: SignedReplies.nullable() })
export type RepliesResponse = z.infer<typeof RepliesResponse>
