import type { Admission, DismissDirectAnswer, DismissDirectRequest, KeptDismissal, Logger, Possession } from '@doorbell/core'
import type { KeptDismissResult } from '../camera/snapshotKeep'

export interface DismissalOptions {
  homeId: string
  log: Logger
  /** Notes the dismissal on the kept ring (`RingKeep.dismiss`); null: the doorbell keeps no rings. */
  dismiss: (ringId: string, dismissal: KeptDismissal) => KeptDismissResult | null
  /** The member's credential and proof (`DoorGuard.admit`): a live member of this home, its proof fresh and unused. */
  admit: (credential: string, viewerId: string, possession: Possession) => Promise<Admission>
  now?: () => number
}

/**
 * The doorbell's one dismissal handler (core/src/directDismiss.ts), for every path that carries
 * one: the direct path's stream (direct/dismissals.ts) and the KVS channel away from home
 * (cloud/kvsCommands.ts). Checked as a hello is (the grant, a fresh and unused proof naming the
 * ring, an operator only in this doorbell's zone) and by the hub's rule: guests may not dismiss;
 * an unknown or answered ring is refused. The kept ring carries who and when to the hub. `path`
 * only names the path in the log lines.
 */
export async function takeDismissal (o: DismissalOptions, r: DismissDirectRequest, path: 'direct' | 'cloud'): Promise<DismissDirectAnswer> {
  const refuse = (message: string): DismissDirectAnswer => {
    o.log.warn(`refused a ${path} dismissal`, { error: message })
    return { kind: 'refused', message: message.slice(0, 200) }
  }
  if (r.homeId !== o.homeId) return refuse(`this doorbell belongs to another home than ${r.homeId}`)
  // The proof names the ring: it cannot dismiss another one, nor serve twice.
  const admitted = await o.admit(r.credential, r.viewerId, { proof: r.proof, session: r.ringId })
  if (!admitted.ok) return refuse(admitted.message)
  const grant = admitted.grant
  if (grant.role === 'guest') return refuse('dismissals go in the history, which is for the home\'s owner, residents and operators; not for guests')
  const result = o.dismiss(r.ringId, { memberId: grant.id, memberName: grant.name, viewerId: r.viewerId, at: (o.now ?? Date.now)() })
  if (result === null) return refuse('this doorbell keeps no rings')
  if (!result.ok) return refuse(result.error)
  o.log.info(path === 'direct' ? 'a screen dismissed a ring directly' : 'a screen dismissed a ring over the cloud path', { viewer: grant.name, ringId: r.ringId, outcome: result.outcome })
  return { kind: 'dismissed', outcome: result.outcome }
}
