import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { KeptReadFrame, KeptReadRequest, MAX_FRAME_BYTES, MAX_KEPT_FRAME_BYTES, PROTOCOLS, readFrame, writeFrame } from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'
import type { SenderLimiter } from '../senderLimit'
import { refuseKeptRead, takeKeptRead, type KeptReadOptions } from '../keptRead'

export interface KeptReadsOptions extends KeptReadOptions {
  requestTimeoutMs?: number
  /** The doorbell's one per-screen limit on the direct path (../senderLimit.ts), shared with its commands; past it, refused unread. */
  limiter?: SenderLimiter
}

/**
 * The doorbell's own history on the direct path (core/src/directKept.ts): a screen that cannot
 * reach the hub reads the rings this doorbell keeps, with their pictures. Checked by the
 * doorbell's one kept-read check (../keptRead.ts), which the cloud path shares; one frame per ring,
 * then `end`. One request per stream.
 */
export async function serveKeptReads (node: MeshNode, o: KeptReadsOptions): Promise<() => Promise<void>> {
  const serve = async (stream: Stream, peer: string): Promise<void> => {
    // The request is small; the answer's frames carry a picture each.
    const io = lpStream(stream, { maxDataLength: Math.max(MAX_FRAME_BYTES, MAX_KEPT_FRAME_BYTES) })
    try {
      const busy = o.limiter?.admit(peer) === false
      const request = busy ? null : await readFrame(io, KeptReadRequest, 'kept-rings read', o.requestTimeoutMs ?? 5000, MAX_FRAME_BYTES)
      const frames = request === null ? refuseKeptRead(o.log, 'direct', `busy: ${o.limiter!.busyMessage}`) : request.ok ? await takeKeptRead(o, request.value, 'direct') : refuseKeptRead(o.log, 'direct', request.error.message)
      for (const frame of frames) await writeFrame(io, KeptReadFrame, frame)
    } catch (err) {
      o.log.warn('a direct read of the kept rings failed', { error: (err as Error).message })
    } finally {
      await stream.close().catch(() => {})
    }
  }
  await node.handle(PROTOCOLS.kept, (stream, connection) => { void serve(stream, connection.remotePeer.toString()) })
  return async () => { await node.unhandle(PROTOCOLS.kept).catch(() => {}) }
}
