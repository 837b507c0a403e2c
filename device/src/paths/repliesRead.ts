import { DEFAULT_ZONE, REPLIES_SESSION, mayTalk, type Admission, type DoorGuard, type Logger, type Possession, type RepliesReadAnswer, type RepliesReadRequest } from '@doorbell/core'
import type { QuickRepliesModule } from '../audio/repliesModule'

export interface RepliesReadOptions {
  homeId: string
  /** This doorbell's zone (its pairing's): an operator reads the replies only with talk in it. */
  zone?: string | undefined
  log: Logger
  /** The member's credential and proof (`DoorGuard.admit`): a live member of this home, its proof fresh and unused. */
  admit: (credential: string, viewerId: string, possession: Possession) => Promise<Admission>
  /** The replies the doorbell can play now, in the owner's order (`QuickReplies.texts`); none without a speaker. */
  replies: () => string[]
  /** Whether the owner who saved the list is still one (`DoorGuard.repliesSigner`): if not, no reply plays, so none is offered. */
  signer: () => Promise<{ ok: true } | { ok: false, message: string }>
}

/**
 * The doorbell's one handler of a replies read (core/src/repliesRead.ts), for every path that
 * carries one: the direct path's stream (direct/repliesReads.ts) and the KVS channel
 * (cloud/kvsCommands.ts). Checked as a hello is (the grant, a fresh and unused proof for
 * REPLIES_SESSION, an operator only in this doorbell's zone), then by the right a reply needs:
 * talk (`mayTalk`), so a screen is offered only what it may play. `path` only names the path in the log.
 */
export async function takeRepliesRead (o: RepliesReadOptions, r: RepliesReadRequest, path: 'direct' | 'cloud'): Promise<RepliesReadAnswer> {
  const refuse = (message: string): RepliesReadAnswer => {
    o.log.warn(`refused a ${path} read of the quick replies`, { error: message })
    return { kind: 'refused', message: message.slice(0, 200) }
  }
  if (r.homeId !== o.homeId) return refuse(`this doorbell belongs to another home than ${r.homeId}`)
  const admitted = await o.admit(r.credential, r.viewerId, { proof: r.proof, session: REPLIES_SESSION })
  if (!admitted.ok) return refuse(admitted.message)
  const grant = admitted.grant
  if (!mayTalk(grant, o.zone ?? DEFAULT_ZONE)) return refuse(`${grant.name} may not talk on this doorbell, so plays no quick reply (the owner can allow it)`)
  const signer = await o.signer()
  if (!signer.ok) return refuse(signer.message)
  const replies = o.replies()
  o.log.info(`a screen read the quick replies (${path})`, { viewer: grant.name, count: replies.length })
  return { kind: 'replies', replies }
}

/** The doorbell's options for it: its pairing's home and zone, its guard, the replies its speaker plays. */
export function repliesReadOptions (o: { pairing: { homeId: string, zone?: string | undefined }, guard: Pick<DoorGuard, 'admit' | 'repliesSigner'>, replies: Pick<QuickRepliesModule, 'replies'>, log: Logger }): RepliesReadOptions {
  return {
    homeId: o.pairing.homeId,
    zone: o.pairing.zone,
    log: o.log,
    admit: async (credential, viewerId, possession) => await o.guard.admit(credential, viewerId, possession),
    replies: () => o.replies.replies?.texts() ?? [],
    signer: async () => await o.guard.repliesSigner()
  }
}
