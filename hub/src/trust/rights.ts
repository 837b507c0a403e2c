import { Grant, MAX_REISSUED, MemberRightsRequest, ReissueList, sign, type AuditRecord, type CredentialResponse, type Logger, type Member, type SigningKey } from '@doorbell/core'
import { isLive } from './members'
import { TrustError } from './errors'
import type { StoredMember, TrustBackend } from './store'

/**
 * A person's door and talk rights changed after pairing, without inviting again
 * (core/src/grants.ts): the owner sets them, the member's older grants become void from that
 * moment (its `grants_from`), the home signs the list of such floors for the devices, and the
 * member's screen fetches a grant signed now ({@link credentialFor}).
 */

/** What the trust module lends these functions (as for integrations.ts). */
export interface RightsHost {
  homeId: string
  homeKey: SigningKey
  store: TrustBackend
  log: Logger
  now: () => number
  requireOwner: (by: Member, kind: 'pairing') => StoredMember
  record: (r: Pick<AuditRecord, 'kind' | 'actor' | 'message'>) => void
}

/** Owners only: a live resident's, guest's or operator's rights; the member's older grants are void from now. */
export function setRights (h: RightsHost, by: Member, memberId: string, input: MemberRightsRequest): { member: StoredMember, changed: boolean } {
  const owner = h.requireOwner(by, 'pairing')
  const req = MemberRightsRequest.parse(input)
  const now = h.now()
  const target = h.store.member(memberId)
  if (target === null || target.kind !== 'viewer' || target.role === null || !isLive(target, now)) throw new TrustError('not-found', `no screen ${memberId.slice(0, 64)} in this home (removed, expired or never paired)`)
  if (target.role === 'owner') throw new TrustError('bad-rights', 'an owner always may open the door and talk')
  const operator = target.role === 'operator'
  if (operator && (req.door === true || req.talk !== undefined)) throw new TrustError('bad-rights', 'an operator never opens the door; its talk right is per zone (talkZones)')
  if (!operator && req.talkZones !== undefined) throw new TrustError('bad-rights', `talkZones are an operator's; a ${target.role} takes talk: true or false`)
  if (operator && req.talkZones?.some((z) => !target.zones.includes(z))) throw new TrustError('bad-rights', `an operator talks only in the zones it watches (${target.zones.join(', ') || 'none'})`)
  const next = {
    door: operator ? false : req.door ?? target.door,
    talk: operator ? false : req.talk ?? target.talk === true,
    talkZones: operator ? [...new Set(req.talkZones ?? target.talkZones ?? [])] : []
  }
  const same = next.door === target.door && next.talk === (target.talk === true) && sameSet(next.talkZones, target.talkZones ?? [])
  if (same) return { member: target, changed: false }
  h.store.transaction(() => {
    // A new floor only: a member already listed keeps its one entry.
    if (h.store.grantsFrom(target.id) === null && h.store.grantFloors().length >= MAX_REISSUED) {
      throw new TrustError('bad-rights', `at most ${MAX_REISSUED} members' rights can be changed without pairing again; remove and invite this member instead`)
    }
    // The floor on the grants' clock: PostgreSQL's in a cluster, whichever hub takes the change.
    h.store.setRights(target.id, { ...next, grantsFrom: h.store.clock?.() ?? now })
    h.store.bumpReissueSeq()
    h.record({ kind: 'pairing', actor: owner.name, message: `changed the rights of ${target.name} (${target.role}): ${describe(target, next)}` })
  })
  h.log.info('member rights changed', { member: target.id, by: owner.id, ...next })
  return { member: h.store.member(target.id)!, changed: true }
}

/**
 * A live screen's grant signed now, with its rights as they stand: what the screen fetches when
 * its rights changed (GET /api/credential). Its `iat` is at or after the member's floor.
 */
export async function credentialFor (h: RightsHost, member: Member): Promise<CredentialResponse> {
  const now = h.now()
  // The grants' clock is read before the rights: a change another hub commits after this read
  // gets a floor after it, so a grant signed here with the old rights is void (fail closed); a
  // change before it is in the rights read below, and the grant is dated after its floor.
  const clock = h.store.clock?.() ?? now
  const grantsFrom = h.store.grantsFrom(member.id)
  const m = h.store.member(member.id)
  if (m === null || m.kind !== 'viewer' || m.role === null || m.key === null || !isLive(m, now)) throw new TrustError('not-found', 'only a paired screen has a credential')
  const credential = await sign(Grant, {
    v: 1, id: m.id, home: h.homeId, sub: m.subject, name: m.name, role: m.role, door: m.door, zones: m.zones,
    talk: m.talk === true, talkZones: m.talkZones ?? [], key: m.key, iat: grantIat(h, grantsFrom, clock), exp: m.expiresAt
  }, h.homeKey)
  return { credential, grantsFrom }
}

/**
 * When a member's grant signed now says it was signed: on the floor's clock (the store's, else
 * this hub's), and always after the floor, so a hub whose clock is behind it still issues a grant
 * the devices take (docs/trust.md, "One clock").
 */
export function grantIat (h: Pick<RightsHost, 'now' | 'store'>, grantsFrom: number | null, clock: number = h.store.clock?.() ?? h.now()): number {
  return grantsFrom === null ? clock : Math.max(clock, grantsFrom + 1)
}

/** The signed list of floors, re-signed only when its `seq` moved. */
export function reissueSigner (h: Pick<RightsHost, 'homeId' | 'homeKey' | 'store'>): () => Promise<string> {
  let signed: { seq: number, token: string } | null = null
  return async () => {
    const seq = h.store.reissueSeq()
    if (signed?.seq !== seq) {
      const floors = h.store.grantFloors()
      // `at` is the last change, so the same list signs to the same token after a restart.
      signed = { seq, token: await sign(ReissueList, { home: h.homeId, seq, at: floors.reduce((max, f) => Math.max(max, f.from), 0), floors }, h.homeKey) }
    }
    return signed.token
  }
}

function sameSet (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}

function describe (before: StoredMember, next: { door: boolean, talk: boolean, talkZones: string[] }): string {
  if (before.role === 'operator') return `talk in ${next.talkZones.join(', ') || 'no zone'} (was ${(before.talkZones ?? []).join(', ') || 'none'})`
  const yn = (b: boolean): string => b ? 'yes' : 'no'
  return `door: ${yn(next.door)} (was ${yn(before.door)}), talk: ${yn(next.talk)} (was ${yn(before.talk === true)})`
}
