import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { MAX_FRAME_BYTES, MAX_REPLIES_FRAME_BYTES, REPLIES_PROTOCOL, RepliesReadAnswer, RepliesReadRequest, readFrame, writeFrame } from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'
import type { SenderLimiter } from '../senderLimit'
import { takeRepliesRead, type RepliesReadOptions } from '../repliesRead'

export interface DirectRepliesReadsOptions extends RepliesReadOptions {
  requestTimeoutMs?: number
  /** The doorbell's one per-screen limit on the direct path (../senderLimit.ts), shared with its commands; past it, refused unread. */
  limiter?: SenderLimiter
}

/**
 * The doorbell's quick replies on the direct path (core/src/repliesRead.ts): a screen that cannot
 * reach the hub reads the list this doorbell plays, checked by the one handler (../repliesRead.ts)
 * the cloud path shares. One request per stream.
 */
export async function serveRepliesReads (node: MeshNode, o: DirectRepliesReadsOptions): Promise<() => Promise<void>> {
  const serve = async (stream: Stream, peer: string): Promise<void> => {
    const io = lpStream(stream, { maxDataLength: Math.max(MAX_FRAME_BYTES, MAX_REPLIES_FRAME_BYTES) })
    try {
      if (o.limiter?.admit(peer) === false) { await writeFrame(io, RepliesReadAnswer, { kind: 'refused', message: `busy: ${o.limiter.busyMessage}` }); return }
      const request = await readFrame(io, RepliesReadRequest, 'quick replies read', o.requestTimeoutMs ?? 5000, MAX_FRAME_BYTES)
      if (!request.ok) {
        o.log.warn('refused a direct read of the quick replies', { error: request.error.message })
        await writeFrame(io, RepliesReadAnswer, { kind: 'refused', message: request.error.message.slice(0, 200) }).catch(() => {})
        return
      }
      await writeFrame(io, RepliesReadAnswer, await takeRepliesRead(o, request.value, 'direct'))
    } catch (err) {
      o.log.warn('a direct read of the quick replies failed', { error: (err as Error).message })
    } finally {
      await stream.close().catch(() => {})
    }
  }
  await node.handle(REPLIES_PROTOCOL, (stream, connection) => { void serve(stream, connection.remotePeer.toString()) })
  return async () => { await node.unhandle(REPLIES_PROTOCOL).catch(() => {}) }
}
