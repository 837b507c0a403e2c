import { z } from 'zod'
import { Signed } from './trust'
import { Id } from './ids'
import { fromKvs, type KvsDecoded } from './cloud'
import { hasType } from './cloudCommand'
import { QuickReplies } from './replies'

/**
 * The doorbell's own quick replies, read by a screen while the hub is down (docs/audio.md, "Quick
 * replies with the hub down"): the replies the doorbell holds rendered now, so a list the owner
 * changed since the screen last saw the hub is right, and a screen that never read it still has
 * one. One request, signed as a hello is (the member's grant and a ViewClaim for
 * {@link REPLIES_SESSION}, fresh and used once), answered with the list or why not. Only a member
 * who may play one (the talk right, as `DoorGuard.checkReply`) reads it. On the direct path:
 * {@link REPLIES_PROTOCOL}, one request per stream; away from home: the doorbell's KVS channel,
 * `{type: "replies", id, request}` on SDP_OFFER, answered `{type: "replies-result", id, answer}`
 * on SDP_ANSWER to that viewer alone, whose client id must be the request's `viewerId`.
 */
export const REPLIES_PROTOCOL = '/doorbell/replies/1.0.0'
/** The session a replies read's proof names: no call. */
export const REPLIES_SESSION = 'quick-replies'

export const RepliesReadRequest = z.strictObject({
  homeId: Id,
  viewerId: Id,
  /** The viewer's grant, signed by the home. */
  credential: Signed,
  /** A ViewClaim for this device and REPLIES_SESSION, signed by the grant's key. */
  proof: Signed
})
export type RepliesReadRequest = z.infer<typeof RepliesReadRequest>

export const RepliesReadAnswer = z.discriminatedUnion('kind', [
  /** The replies the doorbell can play now, in the owner's order: a `reply` command names one by its text. */
  z.strictObject({ kind: z.literal('replies'), replies: QuickReplies }),
  /** Refused (not a member, no talk right, a stale or replayed proof, busy): why. */
  z.strictObject({ kind: z.literal('refused'), message: z.string().max(200) })
])
export type RepliesReadAnswer = z.infer<typeof RepliesReadAnswer>

/** A replies frame at most (8 replies of 120 characters, escaped). */
export const MAX_REPLIES_FRAME_BYTES = 8192

export const CloudRepliesRead = z.strictObject({ type: z.literal('replies'), id: Id, request: RepliesReadRequest })
export type CloudRepliesRead = z.infer<typeof CloudRepliesRead>
/** Device -> viewer (`id` null: the request could not be read). */
export const CloudRepliesResult = z.strictObject({ type: z.literal('replies-result'), id: Id.nullable(), answer: RepliesReadAnswer })
export type CloudRepliesResult = z.infer<typeof CloudRepliesResult>

/** Whether a KVS payload is a replies read; anything else is signaling or another kind. */
export const isCloudRepliesRead = (payload: unknown): boolean => hasType(payload, 'replies')
/** Whether a KVS payload from the doorbell is a replies read's answer. */
export const isCloudRepliesResult = (payload: unknown): boolean => hasType(payload, 'replies-result')
export const decodeCloudRepliesRead = (payload: unknown): KvsDecoded<CloudRepliesRead> => fromKvs(CloudRepliesRead, payload)
export const decodeCloudRepliesResult = (payload: unknown): KvsDecoded<CloudRepliesResult> => fromKvs(CloudRepliesResult, payload)
