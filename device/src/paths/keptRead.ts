import type { Admission, KeptReadFrame, KeptReadRequest, KeptRing, Logger, Possession } from '@doorbell/core'
import { KEPT_SESSION, MAX_KEPT_READ } from '@doorbell/core'

export interface KeptReadOptions {
  homeId: string
  log: Logger
  /** The rings the doorbell keeps (not yet taken by the hub), any order. */
  kept: () => KeptRing[]
  /** The member's credential and proof (`DoorGuard.admit`): a live member of this home, its proof fresh and unused. */
  admit: (credential: string, viewerId: string, possession: Possession) => Promise<Admission>
}

/**
 * The doorbell's one check of a read of its kept rings (core/src/directKept.ts), for every path
 * that carries one: the direct path's stream (direct/keptReads.ts) and the KVS channel away from
 * home (cloud/kvsKeptReads.ts). Checked as a hello is (the grant, a fresh and unused proof for
 * KEPT_SESSION, an operator only in this doorbell's zone) and by role: the history is not for
 * guests. The answer is the frames to send: the newest `max` rings and `end`, or `refused`.
 * Reading changes nothing on the doorbell. `path` only names the path in the log lines.
 */
export async function takeKeptRead (o: KeptReadOptions, r: KeptReadRequest, path: 'direct' | 'cloud', max = MAX_KEPT_READ): Promise<KeptReadFrame[]> {
  const refuse = (message: string): KeptReadFrame[] => {
    o.log.warn(`refused a ${path} read of the kept rings`, { error: message })
    return [{ kind: 'refused', message: message.slice(0, 200) }]
  }
  if (r.homeId !== o.homeId) return refuse(`this doorbell belongs to another home than ${r.homeId}`)
  const admitted = await o.admit(r.credential, r.viewerId, { proof: r.proof, session: KEPT_SESSION })
  if (!admitted.ok) return refuse(admitted.message)
  const grant = admitted.grant
  if (grant.role === 'guest') return refuse('the history is for the home\'s owner, residents and operators; guests see live rings only')
  const all = o.kept().sort((a, b) => b.ring.at - a.ring.at)
  const shown = all.slice(0, Math.min(max, MAX_KEPT_READ))
  o.log.info(path === 'direct' ? 'a screen read the kept rings directly' : 'a screen read the kept rings over the cloud path', { viewer: grant.name, rings: shown.length })
  return [...shown.map((kept): KeptReadFrame => ({ kind: 'ring', kept })), { kind: 'end', count: shown.length, more: all.length > shown.length }]
}

/** A refusal before any check (the request could not be read), logged as the checks' are. */
export function refuseKeptRead (log: Logger, path: 'direct' | 'cloud', message: string): KeptReadFrame[] {
  log.warn(`refused a ${path} read of the kept rings`, { error: message })
  return [{ kind: 'refused', message: message.slice(0, 200) }]
}
