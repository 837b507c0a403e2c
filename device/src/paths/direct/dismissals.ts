import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { DismissDirectAnswer, DismissDirectRequest, MAX_FRAME_BYTES, PROTOCOLS, readFrame, writeFrame } from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'
import type { SenderLimiter } from '../senderLimit'
import { takeDismissal, type DismissalOptions } from '../dismissal'

export interface DirectDismissalsOptions extends DismissalOptions {
  requestTimeoutMs?: number
  /** The doorbell's one per-screen limit on the direct path (../senderLimit.ts), shared with its commands; past it, refused unread. */
  limiter?: SenderLimiter
}

/**
 * Dismissals on the direct path (core/src/directDismiss.ts): a screen that cannot reach the hub
 * dismisses a ring here, and the kept ring carries who and when to the hub. Checked by the
 * doorbell's one dismissal handler (../dismissal.ts), which the cloud path shares. One request per stream.
 */
export async function serveDirectDismissals (node: MeshNode, o: DirectDismissalsOptions): Promise<() => Promise<void>> {
  const serve = async (stream: Stream, peer: string): Promise<void> => {
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    try {
      if (o.limiter?.admit(peer) === false) { await writeFrame(io, DismissDirectAnswer, { kind: 'refused', message: `busy: ${o.limiter.busyMessage}` }); return }
      const request = await readFrame(io, DismissDirectRequest, 'dismissal', o.requestTimeoutMs ?? 5000, MAX_FRAME_BYTES)
      if (!request.ok) {
        o.log.warn('refused a direct dismissal', { error: request.error.message })
        await writeFrame(io, DismissDirectAnswer, { kind: 'refused', message: request.error.message.slice(0, 200) }).catch(() => {})
        return
      }
      const answer = await takeDismissal(o, request.value, 'direct')
      await writeFrame(io, DismissDirectAnswer, answer)
    } catch (err) {
      o.log.warn('a direct dismissal failed', { error: (err as Error).message })
    } finally {
      await stream.close().catch(() => {})
    }
  }
  await node.handle(PROTOCOLS.dismiss, (stream, connection) => { void serve(stream, connection.remotePeer.toString()) })
  return async () => { await node.unhandle(PROTOCOLS.dismiss).catch(() => {}) }
}
