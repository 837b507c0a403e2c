import { CloudRepliesResult, decodeCloudRepliesRead, toKvsPayload, type Logger, type RepliesReadAnswer, type RepliesReadRequest } from '@doorbell/core'
import type { SenderLimiter } from '../senderLimit'

/**
 * A read of the doorbell's quick replies on the KVS channel (core/src/repliesRead.ts: `{type:
 * "replies", id, request}`), for a ring banner away from home with the hub down: within the
 * sender's limit (shared with its commands and dismissals), parsed, its viewer id the KVS
 * sender's (KVS authenticates the sender), then checked by the doorbell's one handler
 * (../repliesRead.ts, as on the direct path); answered `replies-result` under its id to that viewer alone.
 */
export function kvsRepliesReads (o: {
  /** The doorbell's handler; absent: refused. */
  replies?: ((request: RepliesReadRequest) => Promise<RepliesReadAnswer>) | undefined
  send: (viewerId: string, payload: string) => boolean
  log: Logger
  limiter: SenderLimiter
  /** The request's id when readable, for a refusal before it is parsed. */
  readId: (payload: unknown) => string | null
}): (senderClientId: unknown, payload: unknown) => void {
  return (senderClientId, payload) => {
    if (typeof senderClientId !== 'string' || senderClientId === '') { o.log.warn('dropped a KVS replies read with no sender id'); return }
    const viewerId = senderClientId
    const answer = (id: string | null, a: RepliesReadAnswer): void => {
      if (!o.send(viewerId, toKvsPayload(CloudRepliesResult.parse({ type: 'replies-result', id, answer: a })))) o.log.warn('could not answer a replies read over KVS', { viewer: viewerId })
    }
    if (!o.limiter.admit(viewerId)) { answer(o.readId(payload), { kind: 'refused', message: `busy: ${o.limiter.busyMessage}` }); return }
    const decoded = decodeCloudRepliesRead(payload)
    const refuse = (id: string | null, message: string): void => {
      o.log.warn('refused a cloud read of the quick replies', { from: viewerId.slice(0, 64), error: message.slice(0, 300) })
      answer(id, { kind: 'refused', message: message.slice(0, 200) })
    }
    if (!decoded.ok) { refuse(o.readId(payload), decoded.error); return }
    const { id, request } = decoded.message
    if (request.viewerId !== viewerId) { refuse(id, `this read is signed for viewer ${request.viewerId}, but KVS names its sender ${viewerId}`); return }
    if (!o.replies) { refuse(id, 'this doorbell plays no quick replies'); return }
    o.replies(request).then(
      (a) => { answer(id, a) },
      (err: Error) => { o.log.error('a replies read over KVS failed', { viewer: viewerId, error: err.message }) }
    )
  }
}
