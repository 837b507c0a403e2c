import { randomBytes, timingSafeEqual } from 'node:crypto'
import { renderSVG } from 'uqr'
import {
  AuditRecord, Grant, Id, InviteRequest, Member, MemberToken, PairRequest, RepliesStamp, RevocationList, newId, sign, signatureOf, toB64url,
  type CredentialResponse, type DoorAttempt, type InviteResponse, type MemberRightsRequest, type Logger, type PairResponse, type SigningKey
} from '@doorbell/core'
import { fileIntegrationKeys, type IntegrationKeys } from './integrationKey'
import { createIntegration, integrationSigner, setIntegrationDoor, type IntegrationHost, type IntegrationSigner } from './integrations'
import { isLive, publicMember, sha256 } from './members'
import { credentialFor, reissueSigner, setRights, type RightsHost } from './rights'
import { TrustError } from './errors'
import { display, issueSetupCode, newCode, SETUP_CODE_TTL_MS } from './codes'
import { loadOrCreateHomeKey, type HomeKey } from './homeKey'
import { TrustStore, type NewAudit, type StoredInvite, type StoredMember, type TrustBackend } from './store'

const AUDIT_PAGE = 200
const AUDIT_PAGE_MAX = 1000
const HOUR_MS = 60 * 60 * 1000

export { TrustError, type TrustErrorCode } from './errors'

export interface TrustOptions {
  /** Where `home.key` and `trust.db` live (made 0700). */
  dir: string
  homeId: string
  hubName: string
  now?: () => number
  log: Logger
  /** How long the owner's setup code is valid; 24 h unless given. */
  codeTtlMs?: number
  /** Another store than `dir/trust.db` (a cluster's PostgreSQL); the home key stays in `dir`. */
  store?: () => TrustBackend
  /** Where integration keys are held, if not `dir/integrations/` (a cluster's PostgreSQL, sealed). */
  integrationKeys?: () => IntegrationKeys
}

export interface AuditLog {
  /** Null when a record with that `sourceId` is already stored: a redelivered report is stored once. */
  append: (r: NewAudit) => AuditRecord | null
  /** Oldest first, after `afterSeq`; `limit` 200 unless given, at most 1000. */
  list: (o?: { afterSeq?: number, limit?: number }) => AuditRecord[]
  all: () => AuditRecord[]
}

/** The home's members, one-time codes, revocations and audit log (see README.md). */
export interface Trust {
  /** The home's public key, raw, base64url: devices pin it. */
  readonly homeKey: string
  /** The owner's one-time code while the home has no owner (print it), else null. */
  setupCode: () => { code: string, expiresAt: number } | null
  /** A one-time code for a viewer or a device; owners only. */
  /**
   * `by` is an owner, or 'console': the hub's own process (its terminal, like the setup code it
   * prints), which the demo uses to pair its doorbell. `hashExtra` is appended to the URL's
   * fragment (the CA fingerprint a device checks).
   */
  invite: (by: Member | 'console', req: InviteRequest, baseUrl: string, hashExtra?: string) => Promise<InviteResponse>
  /** Spends a one-time code: a new member, its token and (for a viewer) its signed grant. */
  pair: (req: PairRequest) => Promise<PairResponse>
  /**
   * A credential for Home Assistant's MQTT integration (owners only): a member of kind
   * `integration`, without the door right, revocable like any member. The token is returned once.
   */
  createIntegration: (by: Member, name: string) => Promise<{ member: Member, token: string }>
  /** Owners only: gives or withdraws an integration's door right (off when it is made). */
  setIntegrationDoor: (by: Member, memberId: string, door: boolean) => Promise<Member>
  /**
   * What the hub signs Home Assistant's door commands with: a fresh grant for this live
   * integration member (its door right as it stands) and the member's own key, which only the hub
   * holds. Throws `TrustError` `not-found` for a removed or unknown integration.
   */
  integrationSigner: (memberId: string) => Promise<IntegrationSigner>
  /** Called after each new pairing (a device: the Home Assistant bridge publishes its discovery). */
  onPaired: (listener: (member: Member) => void) => () => void
  /** MQTT login: user name = member id, password = token. Null unless a live member. */
  authenticate: (username: string, password: string) => Member | null
  /** `Authorization: Bearer <token>`. */
  memberByToken: (token: string) => Member | null
  /** Owners only; returns the new signed revocation list, to publish. */
  revoke: (by: Member, memberId: string) => Promise<{ member: Member, list: string }>
  /**
   * Owners only: a person's door and talk rights, without inviting again (rights.ts); the member's
   * older grants are void from now. Audited.
   */
  setRights: (by: Member, memberId: string, rights: MemberRightsRequest) => Promise<Member>
  /** Called after each change of a member's rights (the hub publishes the new signed list). */
  onRightsChanged: (listener: (member: Member) => void) => () => void
  /** The home's signed list of replaced grants ({@link ReissueList}) as it stands. */
  reissueList: () => Promise<string>
  /** A live screen's grant signed now, with its rights as they stand (`GET /api/credential`). */
  credentialFor: (member: Member) => Promise<CredentialResponse>
  /** The hub's order of the quick replies it keeps: a {@link RepliesStamp} for this list token and `seq`, signed by the home key. */
  stampReplies: (listToken: string, seq: number) => Promise<string>
  /** Called after each revocation (also of a member replaced by a new pairing), e.g. to drop its MQTT connection. */
  onRevoked: (listener: (member: Member) => void) => () => void
  /** The signed {@link RevocationList} as it stands. */
  revocationList: () => Promise<string>
  /** Every member, oldest first; frozen (one hub: the same array until a member changes). */
  members: () => readonly Member[]
  audit: AuditLog
  /** A device's report of an open-door attempt; stored once per attempt id. */
  recordDoorAttempt: (a: DoorAttempt) => AuditRecord | null
  recordAnswered: (o: { deviceId: string, viewerName: string, at: number, ringId: string, sourceId: string }) => AuditRecord | null
  stop: () => void
}

export type { IntegrationSigner } from './integrations'

export async function startTrust (o: TrustOptions): Promise<Trust> {
  Id.parse(o.homeId)
  const key = await loadOrCreateHomeKey(o.dir)
  const trust = new HomeTrust(o, key, o.store ? o.store() : new TrustStore(o.dir))
  trust.issueSetupCode()
  return trust
}

const NewAuditRecord = AuditRecord.omit({ seq: true })

class HomeTrust implements Trust {
  readonly homeKey: string
  readonly audit: AuditLog
  private readonly now: () => number
  private readonly listeners = new Set<(member: Member) => void>()
  private readonly pairedListeners = new Set<(member: Member) => void>()
  /** The setup code in clear: only in memory, for printing. */
  private setup: { code: string, expiresAt: number } | null = null
  private signedList: { seq: number, token: string } | null = null
  /** What `members()` last gave, and the store's array it was mapped from. */
  private publicMembers: { from: readonly StoredMember[], members: readonly Member[] } | null = null
  private readonly integrations: IntegrationHost
  private readonly rights: RightsHost
  private readonly rightsListeners = new Set<(member: Member) => void>()
  readonly reissueList: () => Promise<string>

  constructor (private readonly o: TrustOptions, private readonly key: HomeKey, private readonly store: TrustBackend) {
    this.homeKey = key.publicText
    this.now = o.now ?? Date.now
    this.integrations = {
      dir: o.dir, keys: o.integrationKeys?.() ?? fileIntegrationKeys(o.dir), homeId: o.homeId, homeKey: key.privateKey, store, log: o.log, now: this.now,
      requireOwner: (by, kind) => this.requireOwner(by, kind),
      record: (r) => { this.record(r) }
    }
    this.rights = {
      homeId: o.homeId, homeKey: key.privateKey, store, log: o.log, now: this.now,
      requireOwner: (by, kind) => this.requireOwner(by, kind),
      record: (r) => { this.record(r) }
    }
    this.reissueList = reissueSigner(this.rights)
    this.audit = {
      append: ({ sourceId, ...r }) => this.store.appendAudit({ ...NewAuditRecord.parse(r), sourceId: checkSourceId(sourceId) }),
      list: ({ afterSeq = 0, limit = AUDIT_PAGE } = {}) => this.store.auditAfter(afterSeq, Math.min(Math.max(1, Math.floor(limit)), AUDIT_PAGE_MAX)),
      all: () => this.store.auditAll()
    }
  }

  /**
   * A fresh owner code on every start while the home has no owner; older ones stop working. In a
   * cluster, a live code another hub issued stays the one (codes.ts).
   */
  issueSetupCode (): void {
    const issued = issueSetupCode({ store: this.store, now: this.now(), ttlMs: this.o.codeTtlMs ?? SETUP_CODE_TTL_MS, log: this.o.log, record: (r) => { this.record(r) } })
    if (issued !== null) this.setup = issued
  }

  setupCode (): { code: string, expiresAt: number } | null {
    const now = this.now()
    if (this.setup === null || this.setup.expiresAt <= now || this.store.liveOwnerCount(now) > 0) return null
    return { ...this.setup }
  }

  async invite (by: Member | 'console', input: InviteRequest, baseUrl: string, hashExtra = ''): Promise<InviteResponse> {
    const owner = by === 'console' ? { id: 'console', name: 'hub console' } : this.requireOwner(by, 'invite')
    const req = InviteRequest.parse(input)
    const now = this.now()
    const code = newCode()
    const expiresAt = now + req.codeMinutes * 60_000
    const terms: Omit<StoredInvite, 'usedAt'> = req.kind === 'viewer'
      ? {
          codeHash: sha256(code), kind: 'viewer', role: req.role, door: mayOpenDoor(req.role, req.door), zones: req.zones,
          talk: req.role === 'operator' ? false : req.talk ?? req.role === 'resident', talkZones: req.role === 'operator' ? req.talkZones ?? [] : [],
          deviceId: null, accessHours: req.accessHours, expiresAt, createdBy: owner.id
        }
      : { codeHash: sha256(code), kind: 'device', role: null, door: false, zones: req.zones, talk: false, talkZones: [], deviceId: req.deviceId, accessHours: null, expiresAt, createdBy: owner.id }
    this.store.transaction(() => {
      this.store.insertInvite(terms)
      this.record({
        kind: 'invite',
        actor: owner.name,
        deviceId: terms.deviceId,
        message: req.kind === 'viewer'
          ? `invited a ${req.role} (door: ${terms.door ? 'yes' : 'no'}, talk: ${talkText(terms)}${req.accessHours === null ? '' : `, for ${req.accessHours} h`})`
          : `invited device ${req.deviceId}`
      })
    })
    const url = `${baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`}pair#code=${code}${hashExtra}`
    return { code: display(code), url, expiresAt, qrSvg: renderSVG(url) }
  }

  async pair (input: PairRequest): Promise<PairResponse> {
    const req = PairRequest.parse(input)
    const codeHash = sha256(req.code)
    const now = this.now()
    const invite = this.store.invite(codeHash)
    // One message for unknown, used, expired and mismatched codes: a caller learns nothing by probing.
    const badCode = new TrustError('bad-code', 'this code is not valid: it may be mistyped, used or expired; ask for a new one')
    if (invite === null || invite.usedAt !== null || invite.expiresAt <= now || invite.kind !== req.kind) throw badCode
    if (invite.kind === 'device' && invite.deviceId !== req.id) throw badCode

    // The token carries the secret as text; its hash is what is stored and compared.
    const secret = toB64url(randomBytes(32))
    const exp = invite.accessHours === null ? null : now + Math.round(invite.accessHours * HOUR_MS)
    const member: StoredMember = {
      id: newId('m'),
      kind: invite.kind,
      subject: req.id,
      name: req.name,
      role: invite.role,
      door: invite.door,
      zones: invite.zones,
      talk: invite.talk,
      talkZones: invite.talkZones,
      createdAt: now,
      expiresAt: exp,
      revokedAt: null,
      key: req.kind === 'viewer' ? req.key : null,
      secretHash: sha256(secret)
    }
    // Signed first: the transaction below must stay synchronous, so that no other call interleaves with it.
    const credential = req.kind === 'viewer' && member.role !== null
      ? await sign(Grant, {
        v: 1, id: member.id, home: this.o.homeId, sub: req.id, name: member.name, role: member.role,
        // `iat` on the clock replaced grants are judged by (rights.ts, grantIat): PostgreSQL's in a cluster.
        door: member.door, zones: member.zones, talk: member.talk === true, talkZones: member.talkZones ?? [], key: req.key, iat: this.store.clock?.() ?? now, exp
      }, this.key.privateKey)
      : null

    const replaced = this.store.transaction(() => {
      // Checked again inside: the same code may have been spent while the grant was being signed.
      if (!this.store.useInvite(codeHash, now)) throw badCode
      const old = this.store.liveMembersOf(member.kind, member.subject, now)
      // Re-pairing the owner's own viewer with a lesser code would leave the home without an owner.
      if (member.role !== 'owner' && old.some((m) => m.role === 'owner') && this.store.liveOwnerCount(now) <= 1) {
        throw new TrustError('last-owner', 'this viewer is the home\'s last owner; pair it under another viewer id')
      }
      // A viewer id is public (participants, call records): a code does not let anyone take over a
      // member's id unless they hold its key (the same browser pairing again). A doorbell's invite
      // names its device, so the owner meant to replace it.
      if (member.kind === 'viewer' && old.some((m) => m.key !== member.key)) throw badCode
      for (const m of old) this.revokeInTx(m, now, member.name, `${m.name} replaced by a new pairing of the same ${m.kind}`)
      this.store.insertMember(member)
      this.record({
        kind: 'pairing',
        actor: member.name,
        deviceId: member.kind === 'device' ? member.subject : null,
        message: member.kind === 'device' ? `paired device ${member.subject}` : `paired as ${member.role ?? 'viewer'}${exp === null ? '' : ' until ' + new Date(exp).toISOString()}`
      })
      return old
    })
    this.o.log.info('paired', { member: member.id, kind: member.kind, subject: member.subject, role: member.role })
    this.announceRevoked(replaced)
    this.announce(this.pairedListeners, member, 'pairing')
    return {
      homeId: this.o.homeId,
      hubName: this.o.hubName,
      member: publicMember(member),
      token: `${member.id}.${secret}`,
      credential,
      homeKey: this.homeKey
    }
  }

  async createIntegration (by: Member, name: string): Promise<{ member: Member, token: string }> {
    return await createIntegration(this.integrations, by, name)
  }

  async setIntegrationDoor (by: Member, memberId: string, door: boolean): Promise<Member> {
    return await setIntegrationDoor(this.integrations, by, memberId, door)
  }

  async integrationSigner (memberId: string): Promise<IntegrationSigner> {
    return await integrationSigner(this.integrations, memberId)
  }

  async setRights (by: Member, memberId: string, rights: MemberRightsRequest): Promise<Member> {
    const { member, changed } = setRights(this.rights, by, memberId, rights)
    if (changed) this.announce(this.rightsListeners, member, 'rights')
    return publicMember(member)
  }

  onRightsChanged (listener: (member: Member) => void): () => void {
    this.rightsListeners.add(listener)
    return () => { this.rightsListeners.delete(listener) }
  }

  async credentialFor (member: Member): Promise<CredentialResponse> {
    return await credentialFor(this.rights, member)
  }

  async stampReplies (listToken: string, seq: number): Promise<string> {
    return await sign(RepliesStamp, { home: this.o.homeId, seq, list: signatureOf(listToken) }, this.key.privateKey)
  }

  onPaired (listener: (member: Member) => void): () => void {
    this.pairedListeners.add(listener)
    return () => { this.pairedListeners.delete(listener) }
  }

  authenticate (username: string, password: string): Member | null {
    if (!MemberToken.safeParse(password).success) return null
    const dot = password.indexOf('.')
    if (password.slice(0, dot) !== username) return null
    const member = this.store.member(username)
    if (member === null || !isLive(member, this.now())) return null
    // Compared as hashes of equal length, in constant time.
    return timingSafeEqual(sha256(password.slice(dot + 1)), member.secretHash) ? publicMember(member) : null
  }

  memberByToken (token: string): Member | null {
    return this.authenticate(token.slice(0, Math.max(0, token.indexOf('.'))), token)
  }

  async revoke (by: Member, memberId: string): Promise<{ member: Member, list: string }> {
    const owner = this.requireOwner(by, 'revocation')
    const now = this.now()
    const target = this.store.member(memberId)
    if (target === null) throw new TrustError('not-found', `no member ${memberId}`)
    if (target.revokedAt === null) {
      // Someone must always be able to invite and revoke: a home never loses its last owner.
      if (target.role === 'owner' && this.store.liveOwnerCount(now) <= 1) {
        throw new TrustError('last-owner', 'the last owner cannot be removed')
      }
      this.store.transaction(() => this.revokeInTx(target, now, owner.name, `removed ${target.name} (${target.role ?? target.kind})`))
      this.o.log.info('revoked', { member: target.id, by: owner.id })
      if (target.kind === 'integration') {
        await this.integrations.keys.remove(target.id).catch((err: Error) => { this.o.log.error('could not delete a removed integration\'s key', { member: target.id, error: err.message }) })
      }
      this.announceRevoked([target])
    }
    return { member: publicMember(this.store.member(memberId)!), list: await this.revocationList() }
  }

  onRevoked (listener: (member: Member) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  async revocationList (): Promise<string> {
    const seq = this.store.revocationSeq()
    if (this.signedList?.seq !== seq) {
      const { ids, lastAt } = this.store.revoked()
      // `at` is the last change, not the signing time: the same list signs to the same token after a restart.
      this.signedList = { seq, token: await sign(RevocationList, { home: this.o.homeId, seq, at: lastAt, ids }, this.key.privateKey) }
    }
    return this.signedList.token
  }

  members (): readonly Member[] {
    // One hub's store gives the same array until a member changes: mapped once per change, not per
    // call (two calls per ring). A cluster's store reads afresh each time (another hub may change it).
    const stored = this.store.members()
    if (this.publicMembers?.from !== stored) this.publicMembers = { from: stored, members: Object.freeze(stored.map((m) => Object.freeze(publicMember(m)))) }
    return this.publicMembers.members
  }

  recordDoorAttempt (a: DoorAttempt): AuditRecord | null {
    return this.audit.append({
      at: a.at, kind: a.kind ?? 'open-door', outcome: a.outcome, reason: a.reason, actor: a.viewerName || '(unknown)',
      deviceId: a.deviceId, message: a.message, sourceId: a.id, path: a.path
    })
  }

  recordAnswered (o: { deviceId: string, viewerName: string, at: number, ringId: string, sourceId: string }): AuditRecord | null {
    return this.audit.append({
      at: o.at, kind: 'call-answered', outcome: 'allowed', reason: 'ok', actor: o.viewerName || '(unknown)',
      deviceId: o.deviceId, message: `answered ring ${o.ringId}`, sourceId: o.sourceId
    })
  }

  stop (): void {
    this.listeners.clear()
    this.pairedListeners.clear()
    this.rightsListeners.clear()
    this.store.close()
  }

  // ------------------------------------------------------------ internals

  /** The acting member as stored now (a Member object held by a caller may be stale), if a live owner. */
  private requireOwner (by: Member, kind: 'invite' | 'revocation' | 'pairing'): StoredMember {
    const now = this.now()
    const current = this.store.member(by.id)
    if (current !== null && current.role === 'owner' && isLive(current, now)) return current
    this.record({ kind, outcome: 'denied', reason: 'forbidden', actor: by.name, message: `${by.name} is not an owner of this home` })
    throw new TrustError('forbidden', `only an owner may do this (${kind})`)
  }

  /** Inside a transaction: revoke, bump the list's seq, record why. */
  private revokeInTx (m: StoredMember, now: number, actor: string, message: string): void {
    if (!this.store.revokeMember(m.id, now)) return
    this.store.bumpRevocationSeq()
    this.record({ kind: 'revocation', actor, deviceId: m.kind === 'device' ? m.subject : null, message })
  }

  private announceRevoked (members: StoredMember[]): void {
    for (const m of members) {
      const revoked = this.store.member(m.id)
      if (revoked !== null) this.announce(this.listeners, revoked, 'revocation')
    }
  }

  private announce (listeners: Set<(member: Member) => void>, m: StoredMember, what: string): void {
    for (const listener of listeners) {
      try {
        listener(publicMember(m))
      } catch (err) {
        this.o.log.error(`a ${what} listener failed`, { member: m.id, error: (err as Error).message })
      }
    }
  }

  /** The hub's own audit lines: allowed, reason 'ok', now, unless told otherwise. */
  private record (r: Pick<AuditRecord, 'kind' | 'actor' | 'message'> & Partial<Pick<AuditRecord, 'outcome' | 'reason' | 'deviceId'>>): void {
    this.audit.append({ at: this.now(), outcome: 'allowed', reason: 'ok', deviceId: null, ...r })
  }
}

// ---------------------------------------------------------------- helpers

/** Residents open the door unless told not to, guests only if told to, operators never. */
function mayOpenDoor (role: 'resident' | 'guest' | 'operator', door: boolean | undefined): boolean {
  if (role === 'operator') return false
  return door ?? role === 'resident'
}

function talkText (t: { role: string | null, talk: boolean, talkZones: string[] }): string {
  if (t.role === 'operator') return t.talkZones.length > 0 ? t.talkZones.join(', ') : 'no'
  return t.talk ? 'yes' : 'no'
}

/** What makes a reported record unique (an attempt id; a ring and a viewer): a redelivered copy is stored once. */
function checkSourceId (id: string | undefined): string | undefined {
  if (id !== undefined && (id.length === 0 || id.length > 200)) throw new TypeError('an audit sourceId is 1-200 characters')
  return id
}
