import { z } from 'zod'

/**
 * The home's trust, in WebCrypto terms (the same code in Node 24, in browsers and on the Pi):
 *
 * - the hub holds the home's Ed25519 key and signs each viewer's grant (a credential: who, what
 *   role, which zones, which key, until when);
 * - a viewer holds its own Ed25519 key, made in the browser and never extractable, and signs each
 *   open-door request (a proof: this device, this session, this command, now, once), and each
 *   offer and direct-path hello (a proof that it holds the grant's key: this device, this
 *   session, now, once), so a grant seen by someone else is of no use to them;
 * - the device pins the home's public key at pairing and checks both before it shows its camera
 *   or the lock moves ({@link DoorGuard}), whatever path carried them, so no transport needs to be
 *   trusted.
 *
 * Signed things travel as `base64url(JSON).base64url(signature)`: the signature covers the exact
 * bytes sent, so no canonical JSON is needed.
 */

import { importPublicKey, open, webCryptoCheck, type Opened, type SignatureCheck, type SigningKey } from './signing'
import { DoorClaim, DoorCommand, Grant, RevocationList, ViewClaim, mayTalk, type Possession } from './claims'
import { RepliesStamp, ReplyClaim, ReplyCommand, ReplyList, SignedReplies, signatureOf } from './replies'
import { TalkClaim, TalkCommand } from './talk'
import { TraceClaim, TraceReadCommand, TracesListCommand } from './keptTraces'
import { ReissueList } from './grants'
export { fromB64url, toB64url } from './b64url'
export * from './claims'
export {
  Nonce, Signed, PublicKeyText, generateSigningKey, exportPublicKey, importPublicKey, sign, peek, open, newNonce, webCryptoCheck,
  type SigningKey, type SigningKeyPair, type Opened, type SignatureCheck
} from './signing'


// ---------------------------------------------------------------- the device's check

/** How far a command's timestamp may be from the device's clock. */
export const FRESHNESS_MS = 30_000

/** The zone of a device paired without naming one (a home's doorbell). */
export const DEFAULT_ZONE = 'home'

export const DenyReason = z.enum([
  'malformed', 'bad-credential', 'wrong-home', 'revoked', 'expired', 'wrong-viewer', 'no-door-right',
  'bad-signature', 'wrong-device', 'wrong-session', 'stale', 'replay', 'rate-limited', 'wrong-zone',
  'no-talk-right', 'no-owner-right', 'superseded', 'replies-owner-gone'
])
export type DenyReason = z.infer<typeof DenyReason>

export type Admission =
  | { ok: true, grant: Grant }
  | { ok: false, reason: DenyReason, message: string, grant: Grant | null }

export type DoorVerdict =
  | { ok: true, grant: Grant, claim: DoorClaim }
  | { ok: false, reason: DenyReason, message: string, grant: Grant | null }

export type TalkVerdict =
  | { ok: true, grant: Grant, claim: TalkClaim }
  | { ok: false, reason: DenyReason, message: string, grant: Grant | null }

export type ReplyVerdict =
  | { ok: true, grant: Grant, claim: ReplyClaim }
  | { ok: false, reason: DenyReason, message: string, grant: Grant | null }

export interface DoorGuardOptions {
  homeId: string
  deviceId: string
  /** The home's public key, pinned at pairing. */
  homeKey: string
  /**
   * The zone this device is in (from its pairing): an operator's grant must name it, on every
   * path (the broker checks zones on the hub's path; the direct and cloud paths reach the device
   * without it). Absent: a device paired before zones, in the default zone.
   */
  zone?: string
  now?: () => number
  freshnessMs?: number
  /** At most `burst` accepted commands per viewer, refilled one every `refillMs`. */
  rate?: { burst: number, refillMs: number }
  /** At most `burst` admitted offers and hellos per member, refilled one every `refillMs`. */
  viewRate?: { burst: number, refillMs: number }
  /** At most `burst` accepted talk and renew commands per member, refilled one every `refillMs`. */
  talkRate?: { burst: number, refillMs: number }
  /** How signatures are checked (default: WebCrypto's; the doorbell gives Node's synchronous check). */
  checkSignature?: SignatureCheck
}

/**
 * Most nonces remembered at once, in each of two memories (open-door commands; offers and hellos);
 * beyond it a proof is refused rather than a nonce forgotten. Two memories, and a budget per member
 * for each, so that no member's flood of offers can fill the memory the owner's door command needs.
 */
const MAX_NONCES = 20_000
/** A trace is fetched one chunk a command: a whole 4 MiB trace (43 chunks) at once, then two a second. */
const TRACE_RATE = { burst: 64, refillMs: 500 }

/** Who may send a kind of signed command (a refusal's reason and message, or null), and its nonce memory and budget. */
interface Right {
  refuse: (grant: Grant) => [DenyReason, string] | null
  nonces: Map<string, number>
  buckets: Map<string, { tokens: number, at: number }>
  rate: { burst: number, refillMs: number }
  what: string
}
/** Verified credentials and imported keys kept (a home has far fewer screens). */
const MAX_REMEMBERED = 256

function remember<V> (m: Map<string, V>, key: string, value: V): void {
  if (m.size >= MAX_REMEMBERED) m.delete(m.keys().next().value!)
  m.set(key, value)
}

/**
 * The device's check of every offer and direct-path hello ({@link DoorGuard.admit}) and of every
 * open-door command ({@link DoorGuard.check}), before the camera shows or the lock machine moves:
 * the grant's signature (the pinned home key), home, revocation, expiry, viewer, zone; then the
 * proof's signature (the viewer's key from the grant), device, session, freshness, nonce; for a
 * command also the door right and a per-viewer rate. Pure: no I/O, clock injectable; the same on
 * every path.
 */
export class DoorGuard {
  private homeKey: Promise<SigningKey>
  private revoked = new Set<string>()
  private revocationSeq = -1
  /** Per member: grants issued before this are void (the owner changed its rights since). */
  private floors = new Map<string, number>()
  private reissueSeq = -1
  private readonly nonces = new Map<string, number>()
  private readonly viewNonces = new Map<string, number>()
  private readonly talkNonces = new Map<string, number>()
  private readonly talkBuckets = new Map<string, { tokens: number, at: number }>()
  private readonly traceNonces = new Map<string, number>()
  private readonly traceBuckets = new Map<string, { tokens: number, at: number }>()
  private replies: { list: ReplyList, seq: number, credential: string, viewer: string } | null = null
  private readonly talkRate: { burst: number, refillMs: number }
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private readonly viewBuckets = new Map<string, { tokens: number, at: number }>()
  private readonly now: () => number
  private readonly freshnessMs: number
  private readonly rate: { burst: number, refillMs: number }
  private readonly viewRate: { burst: number, refillMs: number }
  /**
   * Credentials already verified against the home's key, by their exact text, and members' keys
   * already imported: every command of a call carries the same grant, and its signature check is
   * a round trip through libuv's thread pool (1.5-3 ms of the open-door path on a busy machine).
   * Only the unchanging part is kept: revocation, expiry, viewer and zone are checked every time.
   */
  private readonly verifiedGrants = new Map<string, Grant>()
  private readonly memberKeys = new Map<string, SigningKey>()
  private readonly checkSignature: SignatureCheck

  private async open<S extends z.ZodType> (schema: S, token: string, key: SigningKey): Promise<Opened<z.infer<S>>> {
    return await open(schema, token, key, this.checkSignature)
  }

  constructor (private readonly o: DoorGuardOptions) {
    this.homeKey = importPublicKey(o.homeKey)
    this.checkSignature = o.checkSignature ?? webCryptoCheck
    this.now = o.now ?? Date.now
    this.freshnessMs = o.freshnessMs ?? FRESHNESS_MS
    this.rate = o.rate ?? { burst: 5, refillMs: 2000 }
    // A screen makes one offer a call and one hello a connection: 60 at once, then one a second,
    // is far beyond any person's use, and caps one member at ~150 of the 20,000 nonces remembered.
    this.viewRate = o.viewRate ?? { burst: 60, refillMs: 1000 }
    // A held Talk button renews every few seconds; ten at once, then one a second, is far beyond it.
    this.talkRate = o.talkRate ?? { burst: 10, refillMs: 1000 }
  }

  /** Takes a signed revocation list if it is the home's and newer than the one held. */
  async takeRevocations (token: string): Promise<{ ok: true, changed: boolean, list: RevocationList } | { ok: false, message: string }> {
    const opened = await this.open(RevocationList, token, await this.homeKey)
    if (!opened.ok) return { ok: false, message: `revocation list: ${opened.message}` }
    if (opened.value.home !== this.o.homeId) return { ok: false, message: `revocation list of another home (${opened.value.home})` }
    if (opened.value.seq <= this.revocationSeq) return { ok: true, changed: false, list: opened.value }
    this.revocationSeq = opened.value.seq
    this.revoked = new Set(opened.value.ids)
    return { ok: true, changed: true, list: opened.value }
  }

  isRevoked (memberId: string): boolean { return this.revoked.has(memberId) }

  /** Takes the home's signed list of replaced grants (grants.ts) if it is the home's and newer than the one held. */
  async takeReissues (token: string): Promise<{ ok: true, changed: boolean, list: ReissueList } | { ok: false, message: string }> {
    const opened = await this.open(ReissueList, token, await this.homeKey)
    if (!opened.ok) return { ok: false, message: `replaced grants: ${opened.message}` }
    if (opened.value.home !== this.o.homeId) return { ok: false, message: `replaced grants of another home (${opened.value.home})` }
    if (opened.value.seq <= this.reissueSeq) return { ok: true, changed: false, list: opened.value }
    this.reissueSeq = opened.value.seq
    this.floors = new Map(opened.value.floors.map((f) => [f.id, f.from]))
    return { ok: true, changed: true, list: opened.value }
  }

  private async memberKey (key: string): Promise<SigningKey> {
    const known = this.memberKeys.get(key)
    if (known !== undefined) return known
    const imported = await importPublicKey(key)
    remember(this.memberKeys, key, imported)
    return imported
  }

  /**
   * May this viewer watch? Asked of every offer (no video for strangers) and every direct-path
   * hello: the grant is a live member of this home for this viewer, and the proof is signed by
   * the grant's key for this device and `possession.session`, now, once (a grant seen in someone
   * else's offer is of no use without the key).
   */
  async admit (credential: string, viewerId: string, possession: Possession): Promise<Admission> {
    const member = await this.member(credential, viewerId)
    if (!member.ok) return member
    const grant = member.grant
    const deny = (reason: DenyReason, message: string): Admission => ({ ok: false, reason, message, grant })
    const proof = await this.open(ViewClaim, possession.proof, await this.memberKey(grant.key))
    if (!proof.ok) return deny('bad-signature', `the proof is not signed by ${grant.name}'s key: ${proof.message}`)
    const claim = proof.value
    if (claim.home !== this.o.homeId || claim.device !== this.o.deviceId) return deny('wrong-device', `the proof is for ${claim.device}`)
    if (claim.session !== possession.session) return deny('wrong-session', 'the proof names another session')
    const now = this.now()
    if (Math.abs(now - claim.ts) > this.freshnessMs) {
      // An offer the hub queued while the doorbell was away arrives late: say so, not only "the clocks".
      const s = Math.round(Math.abs(now - claim.ts) / 1000)
      return deny('stale', now > claim.ts
        ? `the proof is ${s} s old: delivered late, or ${s} s off the doorbell's clock`
        : `the proof is dated ${s} s ahead, ${s} s off the doorbell's clock`)
    }
    this.forgetOldNonces(this.viewNonces, now)
    if (this.viewNonces.has(claim.nonce)) return deny('replay', 'this proof was already used')
    if (this.viewNonces.size >= MAX_NONCES) return deny('rate-limited', 'too many requests; try again in a minute')
    // Only a fresh, correctly signed, unused proof spends the member's budget: a replayed copy cannot shut a member out.
    if (!this.take(this.viewBuckets, this.viewRate, grant.id, now)) return deny('rate-limited', 'too many calls from this screen; wait a moment')
    this.viewNonces.set(claim.nonce, claim.ts + this.freshnessMs)
    return { ok: true, grant }
  }

  /** Is this grant a live member of this home, held by this viewer (and, for an operator, in this device's zone)? */
  private async member (credential: string, viewerId: string): Promise<Admission> {
    const deny = (reason: DenyReason, message: string, grant: Grant | null = null): Admission => ({ ok: false, reason, message, grant })
    let grant = this.verifiedGrants.get(credential)
    if (grant === undefined) {
      const opened = await this.open(Grant, credential, await this.homeKey)
      if (!opened.ok) return deny('bad-credential', `the credential is not from this home: ${opened.message}`)
      grant = opened.value
      remember(this.verifiedGrants, credential, grant)
    }
    if (grant.home !== this.o.homeId) return deny('wrong-home', `the credential is for home ${grant.home}`, grant)
    if (this.revoked.has(grant.id)) return deny('revoked', `${grant.name} has been removed from this home`, grant)
    if (grant.exp !== null && this.now() >= grant.exp) return deny('expired', `${grant.name}'s access ended`, grant)
    // Checked on every use, not cached: the list can grow while the grant is remembered.
    const floor = this.floors.get(grant.id)
    if (floor !== undefined && grant.iat < floor) return deny('superseded', `${grant.name}'s rights were changed by the owner: this screen needs its new credential (it fetches it by itself)`, grant)
    if (grant.sub !== viewerId) return deny('wrong-viewer', 'the credential belongs to another viewer', grant)
    const zone = this.o.zone ?? DEFAULT_ZONE
    if (grant.role === 'operator' && !grant.zones.includes(zone)) return deny('wrong-zone', `${grant.name} watches other zones, not ${zone}`, grant)
    return { ok: true, grant }
  }

  /**
   * An open-door command: the grant (a live member here, with the door right: never an operator),
   * then the proof's signature, device, session and command, freshness, nonce and the member's rate.
   */
  async check (command: unknown, ctx: { sessionId: string, viewerId: string }): Promise<DoorVerdict> {
    const parsed = DoorCommand.safeParse(command)
    if (!parsed.success) return { ok: false, reason: 'malformed', message: `not an open-door command: ${parsed.error.issues[0]?.message ?? 'invalid'}`, grant: null }
    return await this.spoken(parsed.data, DoorClaim, ctx, () => true, {
      refuse: (g) => g.door && g.role !== 'operator' ? null : ['no-door-right', g.role === 'guest' ? 'guests cannot open the door' : `${g.role}s cannot open the door`],
      nonces: this.nonces, buckets: this.buckets, rate: this.rate, what: 'open-door'
    })
  }

  /**
   * A talk or renew command: the open-door checks (grant, signature, device, session, freshness,
   * nonce, per-member rate) with the talk right in place of the door right, and a nonce memory
   * and budget of its own, so talk can never crowd out the door.
   */
  async checkTalk (command: unknown, ctx: { sessionId: string, viewerId: string }): Promise<TalkVerdict> {
    const parsed = TalkCommand.safeParse(command)
    if (!parsed.success) return { ok: false, reason: 'malformed', message: `not a talk command: ${parsed.error.issues[0]?.message ?? 'invalid'}`, grant: null }
    const c = parsed.data
    return await this.spoken(c, TalkClaim, ctx, (claim) => claim.action === c.type)
  }

  /** A quick reply: checked like talk (the talk right, its nonce memory and budget), and the claim names the reply's text. */
  async checkReply (command: unknown, ctx: { sessionId: string, viewerId: string }): Promise<ReplyVerdict> {
    const parsed = ReplyCommand.safeParse(command)
    if (!parsed.success) return { ok: false, reason: 'malformed', message: `not a reply command: ${parsed.error.issues[0]?.message ?? 'invalid'}`, grant: null }
    const c = parsed.data
    const verdict = await this.spoken(c, ReplyClaim, ctx, (claim) => claim.reply === c.reply)
    if (!verdict.ok) return verdict
    const signer = await this.repliesSigner()
    return signer.ok ? verdict : { ok: false, reason: 'replies-owner-gone', message: signer.message, grant: verdict.grant }
  }

  /**
   * The steps every signed command shares (door, talk, reply, traces): a live member, the kind's
   * right, the proof signed by the member's key for this device, session and command, fresh, its
   * nonce unused, and the member's budget for the kind; then the nonce is spent.
   */
  private async spoken<C extends { home: string, device: string, session: string, command: string, ts: number, nonce: string }> (
    c: { id: string, credential: string, proof: string }, schema: z.ZodType<C>, ctx: { sessionId: string, viewerId: string }, same: (claim: C) => boolean,
    right: Right = { refuse: (g) => this.mayTalkNow(g) ? null : ['no-talk-right', `${g.name} may not talk on this doorbell (the owner can allow it)`], nonces: this.talkNonces, buckets: this.talkBuckets, rate: this.talkRate, what: 'talk' }
  ): Promise<{ ok: true, grant: Grant, claim: C } | { ok: false, reason: DenyReason, message: string, grant: Grant | null }> {
    const deny = (reason: DenyReason, message: string, grant: Grant | null = null) => ({ ok: false as const, reason, message, grant })
    const admitted = await this.member(c.credential, ctx.viewerId)
    if (!admitted.ok) return admitted
    const grant = admitted.grant
    const refused = right.refuse(grant)
    if (refused) return deny(refused[0], refused[1], grant)
    const proof = await this.open(schema, c.proof, await this.memberKey(grant.key))
    if (!proof.ok) return deny('bad-signature', `the command is not signed by ${grant.name}'s key: ${proof.message}`, grant)
    const claim = proof.value
    if (claim.home !== this.o.homeId || claim.device !== this.o.deviceId) return deny('wrong-device', `the command is for ${claim.device}`, grant)
    if (claim.session !== ctx.sessionId || claim.command !== c.id || !same(claim)) return deny('wrong-session', 'the command belongs to another call', grant)
    const now = this.now()
    if (Math.abs(now - claim.ts) > this.freshnessMs) return deny('stale', `the command is ${Math.round((now - claim.ts) / 1000)} s off the doorbell's clock`, grant)
    this.forgetOldNonces(right.nonces, now)
    if (right.nonces.has(claim.nonce)) return deny('replay', 'this command was already used', grant)
    if (right.nonces.size >= MAX_NONCES) return deny('rate-limited', 'too many commands; try again in a minute', grant)
    if (!this.take(right.buckets, right.rate, grant.id, now)) return deny('rate-limited', `too many ${right.what} requests; wait a moment`, grant)
    right.nonces.set(claim.nonce, claim.ts + this.freshnessMs)
    return { ok: true, grant, claim }
  }

  /**
   * Listing or reading the kept call traces: the owner only (the role in the verified grant),
   * with the talk checks' signature, device, session, freshness and nonce, and a nonce memory and
   * budget of its own (a trace is fetched a chunk a command), so it crowds out neither door nor talk.
   */
  async checkTraces (command: unknown, ctx: { sessionId: string, viewerId: string }): Promise<{ ok: true, grant: Grant, claim: TraceClaim } | { ok: false, reason: DenyReason, message: string, grant: Grant | null }> {
    const parsed = z.union([TracesListCommand, TraceReadCommand]).safeParse(command)
    if (!parsed.success) return { ok: false, reason: 'malformed', message: `not a trace command: ${parsed.error.issues[0]?.message ?? 'invalid'}`, grant: null }
    const c = parsed.data
    const same = (claim: TraceClaim): boolean => claim.action === c.type && (c.type === 'trace-read' ? claim.trace === c.trace && claim.chunk === c.chunk : claim.trace === null && claim.chunk === null)
    return await this.spoken(c, TraceClaim, ctx, same, {
      refuse: (g) => g.role === 'owner' ? null : ['no-owner-right', `only the owner reads this doorbell's call traces, not ${g.name} (${g.role})`],
      nonces: this.traceNonces, buckets: this.traceBuckets, rate: TRACE_RATE, what: 'trace'
    })
  }

  /** The talk right of a grant here. */
  private mayTalkNow (grant: Grant): boolean {
    return mayTalk(grant, this.o.zone ?? DEFAULT_ZONE)
  }

  /**
   * The owner's quick replies as the hub checks them before it stamps them: signed by the key of
   * a live owner of this home (the grant beside it), for this home. No order: that is the stamp's.
   */
  async checkReplies (signed: unknown): Promise<{ ok: true, list: ReplyList, signed: SignedReplies, owner: Grant } | { ok: false, message: string }> {
    const parsed = SignedReplies.safeParse(signed)
    if (!parsed.success) return { ok: false, message: `quick replies: ${parsed.error.issues[0]?.message ?? 'invalid'}` }
    const owner = await this.open(Grant, parsed.data.credential, await this.homeKey)
    if (!owner.ok) return { ok: false, message: `quick replies: the owner's credential is not from this home: ${owner.message}` }
    const grant = owner.value
    const live = await this.member(parsed.data.credential, grant.sub)
    if (!live.ok) return { ok: false, message: `quick replies: ${live.message}` }
    if (grant.role !== 'owner') return { ok: false, message: `quick replies: only an owner keeps them, not ${grant.name} (${grant.role})` }
    const opened = await this.open(ReplyList, parsed.data.list, await importPublicKey(grant.key))
    if (!opened.ok) return { ok: false, message: `quick replies: not signed by ${grant.name}'s key: ${opened.message}` }
    if (opened.value.home !== this.o.homeId) return { ok: false, message: `quick replies of another home (${opened.value.home})` }
    return { ok: true, list: opened.value, signed: parsed.data, owner: grant }
  }

  /**
   * The owner's quick replies as a device takes them: checked as above, and stamped by the hub
   * (the home key) for this very list with a sequence after the one held: the hub's order, never
   * the owner's browser clock. Resolves the list, or why it was refused.
   */
  async takeReplies (signed: unknown): Promise<{ ok: true, changed: boolean, list: ReplyList } | { ok: false, message: string }> {
    const checked = await this.checkReplies(signed)
    if (!checked.ok) return checked
    if (checked.signed.stamp === undefined) return { ok: false, message: 'quick replies: not stamped by the hub (a hub older than the doorbell: update it)' }
    const stamp = await this.open(RepliesStamp, checked.signed.stamp, await this.homeKey)
    if (!stamp.ok) return { ok: false, message: `quick replies: the hub's stamp: ${stamp.message}` }
    if (stamp.value.home !== this.o.homeId || stamp.value.list !== signatureOf(checked.signed.list)) return { ok: false, message: 'quick replies: the hub\'s stamp belongs to another list' }
    if (this.replies !== null && stamp.value.seq <= this.replies.seq) return { ok: true, changed: false, list: this.replies.list }
    this.replies = { list: checked.list, seq: stamp.value.seq, credential: checked.signed.credential, viewer: checked.owner.sub }
    return { ok: true, changed: true, list: checked.list }
  }

  /**
   * Is the owner who saved the quick replies held still a live owner here (not removed, not
   * expired, grant not replaced)? Asked at every play: a list outlives nobody's membership.
   */
  async repliesSigner (): Promise<{ ok: true } | { ok: false, message: string }> {
    if (this.replies === null) return { ok: true }
    const live = await this.member(this.replies.credential, this.replies.viewer)
    return live.ok ? { ok: true } : { ok: false, message: `the quick replies were saved by an owner no longer in the home (${live.message}): an owner saves them again` }
  }

  private forgetOldNonces (nonces: Map<string, number>, now: number): void {
    // Kept in the order they came, which is nearly the order they expire: stop at the first still needed.
    for (const [nonce, until] of nonces) {
      if (until >= now - this.freshnessMs) break
      nonces.delete(nonce)
    }
  }

  private take (buckets: Map<string, { tokens: number, at: number }>, rate: { burst: number, refillMs: number }, who: string, now: number): boolean {
    const b = buckets.get(who) ?? { tokens: rate.burst, at: now }
    const refill = Math.floor((now - b.at) / rate.refillMs)
    if (refill > 0) { b.tokens = Math.min(rate.burst, b.tokens + refill); b.at += refill * rate.refillMs }
    if (b.tokens <= 0) { buckets.set(who, b); return false }
    b.tokens--
    buckets.set(who, b)
    return true
  }
}
