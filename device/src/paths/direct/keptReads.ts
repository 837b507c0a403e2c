import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import {
  KEPT_SESSION, KeptReadFrame, KeptReadRequest, MAX_FRAME_BYTES, MAX_KEPT_FRAME_BYTES, MAX_KEPT_READ, PROTOCOLS,
  readFrame, writeFrame,
  type Admission, type KeptRing, type Logger, type Possession
} from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'

export interface KeptReadsOptions {
  homeId: string
  log: Logger
  /** The rings the doorbell keeps (not yet taken by the hub), any order. */
  kept: () => KeptRing[]
  /** The member's credential and proof (`DoorGuard.admit`): a live member of this home, its proof fresh and unused. */
  admit: (credential: string, viewerId: string, possession: Possession) => Promise<Admission>
  requestTimeoutMs?: number
}

/**
 * The doorbell's own history on the direct path (core/src/directKept.ts): a screen that cannot
 * reach the hub reads the rings this doorbell keeps, with their pictures. The request is checked as
 * a hello is (the grant, a fresh and unused proof for KEPT_SESSION, an operator only in this
 * doorbell's zone) and by role: the history is not for guests. One request per stream.
 */
export async function serveKeptReads (node: MeshNode, o: KeptReadsOptions): Promise<() => Promise<void>> {
  const serve = async (stream: Stream): Promise<void> => {
    // The request is small; the answer's frames carry a picture each.
    const io = lpStream(stream, { maxDataLength: Math.max(MAX_FRAME_BYTES, MAX_KEPT_FRAME_BYTES) })
    const refuse = async (message: string): Promise<void> => {
      o.log.warn('refused a direct read of the kept rings', { error: message })
      await writeFrame(io, KeptReadFrame, { kind: 'refused', message: message.slice(0, 200) }).catch(() => {})
    }
    try {
      const request = await readFrame(io, KeptReadRequest, 'kept-rings read', o.requestTimeoutMs ?? 5000, MAX_FRAME_BYTES)
      if (!request.ok) { await refuse(request.error.message); return }
      const r = request.value
      if (r.homeId !== o.homeId) { await refuse(`this doorbell belongs to another home than ${r.homeId}`); return }
      const admitted = await o.admit(r.credential, r.viewerId, { proof: r.proof, session: KEPT_SESSION })
      if (!admitted.ok) { await refuse(admitted.message); return }
      const grant = admitted.grant
      if (grant.role === 'guest') { await refuse('the history is for the home\'s owner, residents and operators; guests see live rings only'); return }
      const all = o.kept().sort((a, b) => b.ring.at - a.ring.at)
      const shown = all.slice(0, MAX_KEPT_READ)
      for (const kept of shown) await writeFrame(io, KeptReadFrame, { kind: 'ring', kept })
      await writeFrame(io, KeptReadFrame, { kind: 'end', count: shown.length, more: all.length > shown.length })
      o.log.info('a screen read the kept rings directly', { viewer: grant.name, rings: shown.length })
    } catch (err) {
      o.log.warn('a direct read of the kept rings failed', { error: (err as Error).message })
    } finally {
      await stream.close().catch(() => {})
    }
  }
  await node.handle(PROTOCOLS.kept, (stream) => { void serve(stream) })
  return async () => { await node.unhandle(PROTOCOLS.kept).catch(() => {}) }
}
