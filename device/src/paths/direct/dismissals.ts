import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import {
  DismissDirectAnswer, DismissDirectRequest, MAX_FRAME_BYTES, PROTOCOLS,
  readFrame, writeFrame,
  type Admission, type KeptDismissal, type Logger, type Possession
} from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'
import type { KeptDismissResult } from '../../camera/snapshotKeep'

export interface DirectDismissalsOptions {
  homeId: string
  log: Logger
  /** Notes the dismissal on the kept ring (`RingKeep.dismiss`); null: the doorbell keeps no rings. */
  dismiss: (ringId: string, dismissal: KeptDismissal) => KeptDismissResult | null
  /** The member's credential and proof (`DoorGuard.admit`): a live member of this home, its proof fresh and unused. */
  admit: (credential: string, viewerId: string, possession: Possession) => Promise<Admission>
  now?: () => number
  requestTimeoutMs?: number
}

/**
 * Dismissals on the direct path (core/src/directDismiss.ts): a screen that cannot reach the hub
 * dismisses a ring here, and the kept ring carries who and when to the hub. Checked as a hello is
 * (the grant, a fresh and unused proof naming the ring, an operator only in this doorbell's zone)
 * and by the hub's rule: guests may not dismiss. One request per stream.
 */
export async function serveDirectDismissals (node: MeshNode, o: DirectDismissalsOptions): Promise<() => Promise<void>> {
  const serve = async (stream: Stream): Promise<void> => {
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    const refuse = async (message: string): Promise<void> => {
      o.log.warn('refused a direct dismissal', { error: message })
      await writeFrame(io, DismissDirectAnswer, { kind: 'refused', message: message.slice(0, 200) }).catch(() => {})
    }
    try {
      const request = await readFrame(io, DismissDirectRequest, 'dismissal', o.requestTimeoutMs ?? 5000, MAX_FRAME_BYTES)
      if (!request.ok) { await refuse(request.error.message); return }
      const r = request.value
      if (r.homeId !== o.homeId) { await refuse(`this doorbell belongs to another home than ${r.homeId}`); return }
      // The proof names the ring: it cannot dismiss another one, nor serve twice.
      const admitted = await o.admit(r.credential, r.viewerId, { proof: r.proof, session: r.ringId })
      if (!admitted.ok) { await refuse(admitted.message); return }
      const grant = admitted.grant
      if (grant.role === 'guest') { await refuse('dismissals go in the history, which is for the home\'s owner, residents and operators; not for guests'); return }
      const result = o.dismiss(r.ringId, { memberId: grant.id, memberName: grant.name, viewerId: r.viewerId, at: (o.now ?? Date.now)() })
      if (result === null) { await refuse('this doorbell keeps no rings'); return }
      if (!result.ok) { await refuse(result.error); return }
      await writeFrame(io, DismissDirectAnswer, { kind: 'dismissed', outcome: result.outcome })
      o.log.info('a screen dismissed a ring directly', { viewer: grant.name, ringId: r.ringId, outcome: result.outcome })
    } catch (err) {
      o.log.warn('a direct dismissal failed', { error: (err as Error).message })
    } finally {
      await stream.close().catch(() => {})
    }
  }
  await node.handle(PROTOCOLS.dismiss, (stream) => { void serve(stream) })
  return async () => { await node.unhandle(PROTOCOLS.dismiss).catch(() => {}) }
}
