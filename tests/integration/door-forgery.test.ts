import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import mqtt, { type MqttClient } from 'mqtt'
import { RTCPeerConnection, type RTCDataChannel } from 'werift'
import { FsDatastore } from 'datastore-fs'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import {
  CONTROL_CHANNEL, DoorClaim, DoorCommand, DoorGuard, EventFrame, Grant, HELLO_SESSION, MAX_FRAME_BYTES, PROTOCOLS, Reply,
  RevocationList, SignalToDevice, SignalToViewer, ViewClaim, ViewerHello, decode, encode, exportPublicKey, fromB64url,
  generateSigningKey, importPublicKey, memoryLogger, newId, newNonce, peek, readFrame, sign, signDoorCommand, signViewClaim,
  TalkClaim, toB64url, topics, writeFrame, type DenyReason, type Offer, type SigningKey, type TalkReply,
  CommandResult, NO_CALL_SESSION, ReplyClaim, signOutOfCallDoorCommand
} from '@doorbell/core'
import { HubClient } from '@doorbell/viewer/lib'
import { talkLease } from '@doorbell/device/answering'
import { createMeshPeer } from '@doorbell/mesh'
import { LockControl, QuickReplies, SimulatedLock, findFfmpeg, videoCodec, withoutDefaultStun } from '@doorbell/device'
import { eventually, startLan, type Lan } from '../src/harness'
import { offerFrom, pairViewer, type PairedViewer } from '../src/trust'

/**
 * Forged, replayed, expired, misdirected and malformed open-door commands never open the door;
 * offers and hellos whose grant comes without its key (replayed, borrowed) show no picture (at the end).
 *
 * 10,000 generated commands go through the device's own decision, wired as `answering/door.ts`
 * wires it (decode the DoorCommand, `DoorGuard.check`, and only on ok `LockControl.unlock`), with
 * a real home key, a real lock machine and a simulated relay; each verdict's reason must be the
 * one expected for the kind of forgery (EXPECTED below). Valid commands are interleaved as
 * controls: they must open the door, so a guard that refused everything fails the test.
 * Then a stratified sample of 200 goes over a real call's data channel to a real doorbell
 * (hub, MQTT sign-in, werift), and every attempt must come back as a nack and be in the hub's
 * audit log with the same reason.
 */

const SEED = Number(process.env.FORGERY_SEED ?? (Date.now() % 2_147_483_647))
const RUNS = 10_000
const CHANNEL_SAMPLE = 200
/** One valid command every this many generated ones. */
const CONTROL_EVERY = 250

// ---------------------------------------------------------------- what is generated, and what the device must answer

type Part = 'payload' | 'signature'
type Attack =
  | { kind: 'proof-by-foreign-key' }
  | { kind: 'grant-by-foreign-home-key', role: 'owner' | 'resident' }
  | { kind: 'grant-rewritten', change: 'door' | 'role' | 'exp' | 'key' | 'sub' | 'id' }
  | { kind: 'grant-bytes-flipped', part: Part, index: number, bit: number }
  | { kind: 'claim-rewritten', change: 'session' | 'ts' | 'nonce' | 'device' | 'command' }
  | { kind: 'claim-bytes-flipped', part: Part, index: number, bit: number }
  | { kind: 'random-credential', token: string }
  | { kind: 'random-proof', token: string }
  | { kind: 'replay', reencode: number | null }
  | { kind: 'expired', ago: number }
  | { kind: 'guest-without-door' }
  | { kind: 'operator', withDoor: boolean }
  | { kind: 'wrong-device', level: 'device' | 'home', value: string }
  | { kind: 'wrong-session', level: 'session' | 'command', value: string }
  | { kind: 'wrong-viewer' }
  | { kind: 'wrong-home' }
  | { kind: 'stale', offset: number }
  | { kind: 'revoked' }
  | { kind: 'malformed', raw: Raw }

type Kind = Attack['kind']
/** What goes on the wire: text, or binary (a data channel carries both). */
type Raw = string | { bytes: Uint8Array }

/** The reason the device must give for each kind: the spec of this test. */
const EXPECTED: Record<Kind, DenyReason> = {
  'proof-by-foreign-key': 'bad-signature',
  'grant-by-foreign-home-key': 'bad-credential',
  'grant-rewritten': 'bad-credential',
  'grant-bytes-flipped': 'bad-credential',
  'claim-rewritten': 'bad-signature',
  'claim-bytes-flipped': 'bad-signature',
  'random-credential': 'bad-credential',
  'random-proof': 'bad-signature',
  replay: 'replay',
  expired: 'expired',
  'guest-without-door': 'no-door-right',
  operator: 'no-door-right',
  'wrong-device': 'wrong-device',
  'wrong-session': 'wrong-session',
  'wrong-viewer': 'wrong-viewer',
  'wrong-home': 'wrong-home',
  stale: 'stale',
  revoked: 'revoked',
  malformed: 'malformed'
}

/** Everything a forger may hold: real grants signed by the home, keys in no grant, another home's key. */
interface Scene {
  homeId: string
  deviceId: string
  /** The call the commands arrive on. */
  viewerId: string
  sessionId: string
  now: () => number
  /**
   * How late a command may reach the check after it was signed: a command 30.001 s ahead of the
   * clock that takes 5 ms to arrive is 29.996 s ahead, and rightly accepted. 0 on a simulated clock.
   */
  latencyMs: number
  /** The home's private key (the hub's): signs grants that are real but wrong for this door. */
  homeKey: SigningKey
  /** The viewer of this call: its real grant and key. */
  viewer: { credential: string, key: SigningKey }
  /** Another member's screen: its own real grant and key. */
  otherViewer: { credential: string, key: SigningKey }
  /** A member the home has removed (in the device's revocation list). */
  revoked: { credential: string, key: SigningKey }
  /** In no grant. */
  mallory: SigningKey
  malloryPublic: string
  /** Another home's key. */
  foreignHome: SigningKey
  /** Grants for this viewer id, signed by the home, that do not carry the door. */
  guest: string
  operator: string
  operatorWithDoor: string
  /** Signed by this home's key, for another home. */
  wrongHome: string
  /** A well-formed command, never sent: what malformed ones are made from. */
  template: Record<string, unknown>
  /** The last command the door accepted (a control), if any: what replays copy. */
  lastAccepted: string | null
}

const ID = /^[A-Za-z0-9_-]{1,64}$/
const anId = fc.stringMatching(ID)
const otherId = (not: string): fc.Arbitrary<string> => anId.filter((s) => s !== not)
const b64url = (min: number, max: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: min, maxLength: max })
const SIGNED = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/
const flip = { index: fc.nat({ max: 4096 }), bit: fc.nat({ max: 7 }) }

/** A command shaped wrong in one way (or in every way). */
function malformed (template: Record<string, unknown>): fc.Arbitrary<Raw> {
  const keys = Object.keys(template)
  const wrongType = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.nat(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.nat(), { maxKeys: 3 }))
  const with_ = (k: string, v: unknown): string => JSON.stringify({ ...template, [k]: v })
  return fc.oneof(
    fc.json({ maxDepth: 3 }),
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.uint8Array({ maxLength: 600 }).map((bytes) => ({ bytes })),
    fc.constantFrom(...keys).map((k) => JSON.stringify(Object.fromEntries(Object.entries(template).filter(([key]) => key !== k)))),
    fc.tuple(fc.constantFrom(...keys), wrongType).map(([k, v]) => with_(k, v)),
    fc.string({ maxLength: 12 }).filter((s) => s !== 'unlock').map((t) => with_('type', t)),
    fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !keys.includes(k) && k !== '__proto__').map((k) => with_(k, true)),
    // Ids longer than 64, tokens longer than the 4096 a signed token may have.
    fc.integer({ min: 65, max: 5000 }).map((n) => with_('id', 'c'.repeat(n))),
    fc.tuple(fc.constantFrom('credential', 'proof'), fc.integer({ min: 4097 - 87, max: 40_000 }))
      .map(([k, n]) => with_(k, `${'A'.repeat(n)}.${'B'.repeat(86)}`)),
    // Base64url that is not `payload.signature` (no dot, a signature of the wrong length, two dots).
    fc.tuple(fc.constantFrom('credential', 'proof'), fc.oneof(b64url(1, 200), fc.tuple(b64url(1, 100), b64url(0, 120)).map(([p, s]) => `${p}.${s}`), fc.string({ maxLength: 200 })))
      .filter(([, v]) => !SIGNED.test(v))
      .map(([k, v]) => with_(k, v)),
    fc.constantFrom(JSON.stringify([template]), 'null', '42', '"unlock"', '{}', ''),
    // Over the 64 KiB any message may have, before JSON.parse sees it.
    fc.integer({ min: 64 * 1024 + 1, max: 200_000 }).map((n) => with_('pad', 'x'.repeat(n)))
  )
}

/** One arbitrary per kind, for this scene. */
function attacks (s: Scene): Record<Kind, fc.Arbitrary<Attack>> {
  const k = <K extends Kind>(kind: K) => <A extends Omit<Extract<Attack, { kind: K }>, 'kind'>>(rest: fc.Arbitrary<A>) =>
    rest.map((r) => ({ kind, ...r }) as unknown as Attack)
  return {
    'proof-by-foreign-key': fc.constant({ kind: 'proof-by-foreign-key' }),
    'grant-by-foreign-home-key': k('grant-by-foreign-home-key')(fc.record({ role: fc.constantFrom('owner' as const, 'resident' as const) })),
    'grant-rewritten': k('grant-rewritten')(fc.record({ change: fc.constantFrom('door' as const, 'role' as const, 'exp' as const, 'key' as const, 'sub' as const, 'id' as const) })),
    'grant-bytes-flipped': k('grant-bytes-flipped')(fc.record({ part: fc.constantFrom<Part>('payload', 'signature'), ...flip })),
    'claim-rewritten': k('claim-rewritten')(fc.record({ change: fc.constantFrom('session' as const, 'ts' as const, 'nonce' as const, 'device' as const, 'command' as const) })),
    'claim-bytes-flipped': k('claim-bytes-flipped')(fc.record({ part: fc.constantFrom<Part>('payload', 'signature'), ...flip })),
    'random-credential': k('random-credential')(fc.record({ token: fc.tuple(b64url(1, 600), b64url(86, 86)).map(([p, sg]) => `${p}.${sg}`) })),
    'random-proof': k('random-proof')(fc.record({ token: fc.tuple(b64url(1, 600), b64url(86, 86)).map(([p, sg]) => `${p}.${sg}`) })),
    replay: k('replay')(fc.record({ reencode: fc.option(fc.nat({ max: 14 }), { nil: null }) })),
    expired: k('expired')(fc.record({ ago: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_000_000_000 })) })),
    'guest-without-door': fc.constant({ kind: 'guest-without-door' }),
    operator: k('operator')(fc.record({ withDoor: fc.boolean() })),
    'wrong-device': k('wrong-device')(fc.oneof(
      fc.record({ level: fc.constant('device' as const), value: otherId(s.deviceId) }),
      fc.record({ level: fc.constant('home' as const), value: otherId(s.homeId) })
    )),
    'wrong-session': k('wrong-session')(fc.oneof(
      fc.record({ level: fc.constant('session' as const), value: otherId(s.sessionId) }),
      fc.record({ level: fc.constant('command' as const), value: anId })
    )),
    'wrong-viewer': fc.constant({ kind: 'wrong-viewer' }),
    'wrong-home': fc.constant({ kind: 'wrong-home' }),
    stale: k('stale')(fc.record({ offset: fc.oneof(fc.integer({ min: 30_001 + s.latencyMs, max: 100_000_000_000 }), fc.integer({ min: -100_000_000_000, max: -30_001 })) })),
    revoked: fc.constant({ kind: 'revoked' }),
    malformed: k('malformed')(fc.record({ raw: malformed(s.template) }))
  }
}

// ---------------------------------------------------------------- making the forgeries

function split (token: string): { payload: Uint8Array, signature: Uint8Array } {
  const dot = token.indexOf('.')
  return { payload: fromB64url(token.slice(0, dot)), signature: fromB64url(token.slice(dot + 1)) }
}
const join2 = (payload: Uint8Array, signature: Uint8Array): string => `${toB64url(payload)}.${toB64url(signature)}`

/** The same token with one bit of its payload or signature flipped. */
function flipped (token: string, part: Part, index: number, bit: number): string {
  const t = split(token)
  const bytes = Uint8Array.from(t[part])
  bytes[index % bytes.length]! ^= 1 << bit
  return part === 'payload' ? join2(bytes, t.signature) : join2(t.payload, bytes)
}

/** The payload re-written, the signature kept: what someone without the key can do. */
function rewritten (token: string, change: (json: Record<string, unknown>) => Record<string, unknown>): string {
  const t = split(token)
  const json = JSON.parse(new TextDecoder().decode(t.payload)) as Record<string, unknown>
  return join2(new TextEncoder().encode(JSON.stringify(change(json))), t.signature)
}

/**
 * The last character of an 86-character signature carries 2 bits; the other 4 are ignored by
 * base64 decoders. Changing them gives different text for the same bytes.
 */
function reencoded (token: string, k: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const v = alphabet.indexOf(token.at(-1)!)
  const alt = alphabet[(v & 0x30) | (((v & 0x0f) + 1 + k) & 0x0f)]!
  const out = token.slice(0, -1) + alt
  assert.notEqual(out, token)
  assert.deepEqual(fromB64url(out.slice(out.indexOf('.') + 1)), fromB64url(token.slice(token.indexOf('.') + 1)), 'the same signature bytes')
  return out
}

async function grant (s: Pick<Scene, 'homeId' | 'viewerId' | 'now'>, by: SigningKey, viewerKey: SigningKey, o: Partial<Grant>): Promise<string> {
  return await sign(Grant, {
    v: 1, id: newId('m'), home: s.homeId, sub: s.viewerId, name: 'Someone', role: 'resident', door: true, zones: [],
    key: await exportPublicKey(viewerKey), iat: s.now(), exp: null, ...o
  }, by)
}

async function claim (s: Scene, key: SigningKey, command: string, o: Partial<DoorClaim> = {}): Promise<string> {
  return await sign(DoorClaim, { home: s.homeId, device: s.deviceId, session: s.sessionId, command, ts: s.now(), nonce: newNonce(), ...o }, key)
}

/** The bytes that go on the data channel for one attack. */
async function forge (a: Attack, s: Scene, viewerPublic: { key: SigningKey }): Promise<Raw> {
  const id = newId('c')
  const cmd = (credential: string, proof: string, cid = id): string => JSON.stringify({ type: 'unlock', id: cid, credential, proof })
  const own = async (o: Partial<DoorClaim> = {}): Promise<string> => await claim(s, s.viewer.key, id, o)
  switch (a.kind) {
    case 'proof-by-foreign-key': return cmd(s.viewer.credential, await claim(s, s.mallory, id))
    case 'grant-by-foreign-home-key': return cmd(await grant(s, s.foreignHome, viewerPublic.key, { role: a.role }), await own())
    case 'grant-rewritten': {
      // Start from the guest's real grant (no door, ends tomorrow) and give it more.
      const forged = rewritten(s.guest, (g) => {
        switch (a.change) {
          case 'door': return { ...g, door: true }
          case 'role': return { ...g, role: 'owner', door: true }
          case 'exp': return { ...g, exp: null, door: true }
          case 'key': return { ...g, key: s.malloryPublic, door: true }
          case 'sub': return { ...g, sub: 'v-mallory', door: true }
          case 'id': return { ...g, id: 'm-owner', door: true }
        }
      })
      return cmd(forged, a.change === 'key' ? await claim(s, s.mallory, id) : await own())
    }
    case 'grant-bytes-flipped': return cmd(flipped(s.viewer.credential, a.part, a.index, a.bit), await own())
    case 'claim-rewritten': {
      // A command signed for another call a minute ago, adapted to this one.
      const old = await claim(s, s.viewer.key, 'c-old', { session: 's-old', ts: s.now() - 60_000, device: a.change === 'device' ? 'back-door' : s.deviceId })
      const forged = rewritten(old, (c) => {
        const base = { ...c, session: s.sessionId, command: id, ts: s.now(), device: s.deviceId }
        switch (a.change) {
          case 'session': return { ...c, session: s.sessionId, command: id }
          case 'ts': return { ...base }
          case 'nonce': return { ...base, nonce: newNonce() }
          case 'device': return { ...base }
          case 'command': return { ...base, command: id }
        }
      })
      return cmd(s.viewer.credential, forged)
    }
    case 'claim-bytes-flipped': return cmd(s.viewer.credential, flipped(await own(), a.part, a.index, a.bit))
    case 'random-credential': return cmd(a.token, await own())
    case 'random-proof': return cmd(s.viewer.credential, a.token)
    case 'replay': {
      assert.ok(s.lastAccepted, 'a replay needs an accepted command')
      if (a.reencode === null) return s.lastAccepted
      const c = JSON.parse(s.lastAccepted) as { proof: string }
      return JSON.stringify({ ...c, proof: reencoded(c.proof, a.reencode) })
    }
    case 'expired': return cmd(await grant(s, s.homeKey, viewerPublic.key, { role: 'guest', door: true, iat: 0, exp: Math.max(0, s.now() - a.ago) }), await own())
    case 'guest-without-door': return cmd(s.guest, await own())
    case 'operator': return cmd(a.withDoor ? s.operatorWithDoor : s.operator, await own())
    case 'wrong-device': return cmd(s.viewer.credential, await own(a.level === 'device' ? { device: a.value } : { home: a.value }))
    case 'wrong-session': return a.level === 'session'
      ? cmd(s.viewer.credential, await own({ session: a.value }))
      : cmd(s.viewer.credential, await claim(s, s.viewer.key, a.value === id ? `${id}x`.slice(-64) : a.value))
    case 'wrong-viewer': return cmd(s.otherViewer.credential, await claim(s, s.otherViewer.key, id))
    case 'wrong-home': return cmd(s.wrongHome, await own())
    case 'stale': return cmd(s.viewer.credential, await own({ ts: Math.max(0, s.now() + a.offset) }))
    case 'revoked': return cmd(s.revoked.credential, await claim(s, s.revoked.key, id))
    case 'malformed': return a.raw
  }
}

const wire = (raw: Raw): string | Buffer => typeof raw === 'string' ? raw : Buffer.from(raw.bytes)
const show = (raw: Raw): string => typeof raw === 'string' ? (raw.length > 160 ? `${raw.slice(0, 160)}… (${raw.length} chars)` : raw) : `<${raw.bytes.length} bytes>`

/** The parties of a scene whose grants this test signs itself (the home's key in hand). */
async function signedParties (s: Omit<Scene, 'otherViewer' | 'mallory' | 'malloryPublic' | 'foreignHome' | 'guest' | 'operator' | 'operatorWithDoor' | 'wrongHome' | 'template' | 'lastAccepted'>, viewerPublic: SigningKey) {
  const other = await generateSigningKey(false)
  const mallory = await generateSigningKey(false)
  const foreignHome = await generateSigningKey(true)
  const tomorrow = s.now() + 24 * 3600_000
  const template = JSON.parse(encode(DoorCommand, await signDoorCommand({ credential: s.viewer.credential, key: s.viewer.key, home: s.homeId, device: s.deviceId, session: s.sessionId, command: 'c-template', now: s.now() }))) as Record<string, unknown>
  return {
    otherViewer: { credential: await grant({ ...s, viewerId: 'v-other' }, s.homeKey, other.publicKey, { name: 'Other screen' }), key: other.privateKey },
    mallory: mallory.privateKey,
    malloryPublic: await exportPublicKey(mallory.publicKey),
    foreignHome: foreignHome.privateKey,
    guest: await grant(s, s.homeKey, viewerPublic, { role: 'guest', door: false, name: 'Guest', exp: tomorrow }),
    operator: await grant(s, s.homeKey, viewerPublic, { role: 'operator', door: false, zones: ['home'], name: 'Operator' }),
    operatorWithDoor: await grant(s, s.homeKey, viewerPublic, { role: 'operator', door: true, zones: ['home'], name: 'Operator' }),
    wrongHome: await grant({ ...s, homeId: 'another-home' }, s.homeKey, viewerPublic, { name: 'Elsewhere' }),
    template,
    lastAccepted: null
  }
}

function tally (counts: Map<string, number>, key: string): void { counts.set(key, (counts.get(key) ?? 0) + 1) }
function table (counts: Map<string, number>): string {
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `  ${k.padEnd(28)} ${n}`).join('\n')
}

// ---------------------------------------------------------------- 10,000 against the device's decision

test(`${RUNS} generated open-door commands that must not open the door, against DoorGuard and the lock machine`, { timeout: 120_000 }, async (t) => {
  const started = performance.now()
  t.diagnostic(`seed ${SEED} (FORGERY_SEED=${SEED} runs the same commands again)`)
  let clock = Date.now()
  const now = (): number => clock
  const home = await generateSigningKey(true)
  const viewer = await generateSigningKey(false)
  const revokedKey = await generateSigningKey(false)
  const base = { homeId: 'home', deviceId: 'front-door', viewerId: 'v-kitchen', sessionId: 's-forgery', now, latencyMs: 0, homeKey: home.privateKey }
  const viewerCredential = await grant(base, home.privateKey, viewer.publicKey, { name: 'Kitchen', id: 'm-kitchen' })
  const revokedCredential = await grant({ ...base, viewerId: 'v-gone' }, home.privateKey, revokedKey.publicKey, { name: 'Gone', id: 'm-gone' })
  const partial = { ...base, viewer: { credential: viewerCredential, key: viewer.privateKey }, revoked: { credential: revokedCredential, key: revokedKey.privateKey } }
  const scene: Scene = { ...partial, ...await signedParties(partial, viewer.publicKey) }

  // The device's parts: the guard with the home's public key pinned, the lock machine on a relay.
  const guard = new DoorGuard({ homeId: scene.homeId, deviceId: scene.deviceId, homeKey: await exportPublicKey(home.publicKey), now })
  const revocations = await guard.takeRevocations(await sign(RevocationList, { home: scene.homeId, seq: 1, at: now(), ids: ['m-gone'] }, home.privateKey))
  assert.ok(revocations.ok && revocations.changed)
  const printed: string[] = []
  const relay = new SimulatedLock((line) => { printed.push(line) })
  const lock = new LockControl(relay, 20, memoryLogger([], 'lock'))
  lock.start()
  t.after(() => { lock.stop() })
  await eventually('the lock to start locked', () => lock.state().status === 'locked', 3000)

  /** The decision of `answering/door.ts` (`lockDoor`), step for step: parse, check, and only then the lock. */
  const decide = async (raw: string | Buffer): Promise<{ code: 'invalid-command' | 'denied' | 'ack' | 'lock-fault' | 'busy', reason: string }> => {
    const parsed = decode(DoorCommand, raw, 'data channel of Kitchen')
    if (!parsed.ok) return { code: 'invalid-command', reason: 'malformed' }
    const verdict = await guard.check(parsed.value, { sessionId: scene.sessionId, viewerId: scene.viewerId })
    if (!verdict.ok) return { code: 'denied', reason: verdict.reason }
    const result = await lock.unlock(verdict.grant.name)
    return result.ok ? { code: 'ack', reason: 'ok' } : { code: result.code, reason: result.code }
  }

  const unlocks = (): number => printed.filter((l) => l === 'DOOR UNLOCKED').length
  // The simulated relay says DOOR UNLOCKED a turn after it moves (device/src/drivers/simulated.ts).
  const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
  let controls = 0
  /** A valid command from the call's own viewer: it must open the door (the boundary of freshness included). */
  const control = async (skew: number): Promise<void> => {
    clock += 2_500 // the viewer's rate budget refills (5 at once, one per 2 s)
    const raw = encode(DoorCommand, await signDoorCommand({ home: scene.homeId, device: scene.deviceId, session: scene.sessionId, command: newId('c'), credential: scene.viewer.credential, key: scene.viewer.key, now: now() + skew }))
    const out = await decide(raw)
    assert.deepEqual(out, { code: 'ack', reason: 'ok' }, `a valid command (skew ${skew} ms) opens the door`)
    controls++
    await turn()
    assert.equal(unlocks(), controls)
    if (skew >= 0) scene.lastAccepted = raw
    await eventually('the door to relock', () => lock.state().status === 'locked' && !relay.open, 3000)
  }
  await control(0)

  const arbs = attacks(scene)
  const kinds = Object.keys(arbs) as Kind[]
  const any = fc.oneof(...kinds.map((kind) => ({ arbitrary: arbs[kind], weight: kind === 'malformed' ? 3 : 1 })))
  const byKind = new Map<string, number>()
  const byReason = new Map<string, number>()
  let runs = 0
  await fc.assert(fc.asyncProperty(any, async (attack) => {
    runs++
    if (runs % CONTROL_EVERY === 0) await control([0, 30_000, -30_000][(runs / CONTROL_EVERY) % 3]!)
    clock += 1
    const raw = await forge(attack, scene, { key: viewer.publicKey })
    const before = unlocks()
    const out = await decide(wire(raw))
    const expected = EXPECTED[attack.kind]
    assert.equal(out.reason, expected, `${attack.kind}: ${show(raw)}`)
    assert.equal(out.code, expected === 'malformed' ? 'invalid-command' : 'denied')
    await turn()
    assert.equal(unlocks(), before, 'the relay did not move')
    assert.equal(relay.open, false)
    assert.equal(lock.state().status, 'locked')
    tally(byKind, attack.kind)
    tally(byReason, out.reason)
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true })

  // The guard did not just refuse everything: the controls opened the door, and still do.
  await control(0)
  assert.equal(unlocks(), controls)
  assert.ok(controls >= RUNS / CONTROL_EVERY, `${controls} controls opened the door`)
  assert.equal(lock.state().status, 'locked')
  assert.equal(relay.open, false)
  for (const kind of kinds) assert.ok((byKind.get(kind) ?? 0) > 0, `${kind} was generated`)
  const refused = [...byReason.values()].reduce((a, b) => a + b, 0)
  assert.equal(refused, RUNS)
  const ms = Math.round(performance.now() - started)
  t.diagnostic(`seed ${SEED}: ${refused} refused, ${controls} valid controls opened the door, ${ms} ms`)
  console.log(`door-forgery: ${RUNS} commands (seed ${SEED}) in ${ms} ms; ${controls} controls opened the door\nby reason:\n${table(byReason)}\nby kind:\n${table(byKind)}`)
})

// ---------------------------------------------------------------- a sample over a real call's data channel

interface RawCall {
  sessionId: string
  channel: RTCDataChannel
  replies: Reply[]
  /** The n-th reply (0-based) that matches, once it has come. */
  nth: (what: string, n: number, check: (r: Reply) => boolean) => Promise<Reply>
  close: () => Promise<void>
}

async function withTimeout<T> (what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A call made by hand, as the viewer app makes it but with its data channel in the test's
 * hands: the paired viewer signs in to the hub, offers with its grant, and opens 'control'.
 */
async function rawCall (lan: Lan, paired: PairedViewer): Promise<RawCall> {
  const client: MqttClient = mqtt.connect(lan.hub.mqttUrl, {
    clientId: `viewer-${paired.viewerId}-${newId().slice(0, 6)}`,
    username: paired.memberId,
    password: paired.token,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000
  })
  client.on('error', () => {})
  await withTimeout('the viewer to sign in', 5000, new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject) }))
  const sessionId = newId('s')
  const device = lan.device.config.deviceId
  const toDevice = topics.session(paired.homeId, device, paired.viewerId, sessionId, 'to-device')
  const granted = await withTimeout('the subscription', 5000, client.subscribeAsync(topics.session(paired.homeId, device, paired.viewerId, sessionId, 'to-viewer'), { qos: 1 }))
  assert.deepEqual(granted.map((g) => g.qos), [1])

  const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle', codecs: { video: [videoCodec('h264')], audio: [] } })
  const channel = pc.createDataChannel(CONTROL_CHANNEL, { ordered: true })
  pc.addTransceiver('video', { direction: 'recvonly' })
  const replies: Reply[] = []
  const waiters = new Set<() => void>()
  channel.onMessage.subscribe((data) => {
    const r = decode(Reply, typeof data === 'string' ? data : data.toString('utf8'), 'raw viewer data channel')
    if (!r.ok) throw r.error
    replies.push(r.value)
    for (const w of [...waiters]) w()
  })
  const nth = async (what: string, n: number, check: (r: Reply) => boolean): Promise<Reply> => {
    const find = (): Reply | undefined => replies.filter(check)[n]
    return await withTimeout(what, 5000, new Promise<Reply>((resolve) => {
      const w = (): void => { const f = find(); if (f) { waiters.delete(w); resolve(f) } }
      waiters.add(w)
      w()
    }))
  }
  client.on('message', (_topic, payload) => {
    const m = decode(SignalToViewer, payload, 'to-viewer')
    if (m.ok && m.value.type === 'answer') void pc.setRemoteDescription({ type: 'answer', sdp: m.value.sdp })
  })
  const offer = await pc.createOffer()
  withoutDefaultStun(pc, [])
  await pc.setLocalDescription(offer)
  await withTimeout('ICE gathering', 5000, new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return }
    const sub = pc.iceGatheringStateChange.subscribe((state) => { if (state === 'complete') { sub.unSubscribe(); resolve() } })
  }))
  const sdp = pc.localDescription?.sdp
  assert.ok(sdp)
  client.publish(toDevice, encode(SignalToDevice, await offerFrom(paired, { device, sessionId, sdp })), { qos: 1 })
  await withTimeout('the data channel to open', 15_000, new Promise<void>((resolve) => {
    if (channel.readyState === 'open') { resolve(); return }
    channel.stateChanged.subscribe((state) => { if (state === 'open') resolve() })
  }))
  return {
    sessionId,
    channel,
    replies,
    nth,
    async close () {
      // Bounded: the hub may already be gone (cleanup order), and then no PUBACK comes.
      if (client.connected) await withTimeout('the bye to be sent', 2000, client.publishAsync(toDevice, encode(SignalToDevice, { type: 'bye', sessionId, reason: 'hang-up' }), { qos: 1 })).catch(() => {})
      await withTimeout('the peer to close', 2000, pc.close()).catch(() => {})
      await withTimeout('the MQTT client to end', 2000, new Promise<void>((resolve) => { client.end(true, {}, () => resolve()) })).catch(() => {})
    }
  }
}

/** The hub's private home key, read from its data folder as the hub itself reads it. */
async function hubHomeKey (lan: Lan): Promise<SigningKey> {
  const pem = await readFile(join(lan.hub.config.dataDir, 'trust', 'home.key'), 'utf8')
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  return await globalThis.crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']) as SigningKey
}

test(`${CHANNEL_SAMPLE} of them over a real call's data channel: each a nack, the door locked, each in the hub's audit log`, { timeout: 120_000 }, async (t) => {
  const started = performance.now()
  t.diagnostic(`seed ${SEED} (FORGERY_SEED=${SEED} runs the same commands again)`)
  const lan = await startLan()
  t.after(() => lan.stop())
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen', role: 'resident' })
  const gone = await pairViewer(lan.hub, { name: 'Former lodger', role: 'resident' })
  const ownerMember = lan.hub.trust.members().find((m) => m.id === owner.memberId)!
  await lan.hub.trust.revoke(ownerMember, gone.memberId)
  await eventually('the device to hold the revocation', () => lan.device.guard.isRevoked(gone.memberId))

  const call = await rawCall(lan, resident)
  t.after(() => call.close())
  const hello = await call.nth('the lock report on open', 0, (r) => r.type === 'lock')
  assert.equal(hello.type === 'lock' && hello.lock.status, 'locked')

  const homeKey = await hubHomeKey(lan)
  const residentGrant = peek(Grant, resident.credential)
  assert.ok(residentGrant.ok)
  const residentPublic = await importPublicKey(residentGrant.value.key)
  const base = { homeId: resident.homeId, deviceId: lan.device.config.deviceId, viewerId: resident.viewerId, sessionId: call.sessionId, now: Date.now, latencyMs: 5000, homeKey }
  const partial = { ...base, viewer: { credential: resident.credential, key: resident.key }, revoked: { credential: gone.credential, key: gone.key } }
  const scene: Scene = { ...partial, ...await signedParties(partial, residentPublic) }

  // Stratified: every kind but replay (which needs an accepted command first: see the end), in turn.
  const arbs = attacks(scene)
  const kinds = (Object.keys(arbs) as Kind[]).filter((k) => k !== 'replay')
  const per = Math.ceil(CHANNEL_SAMPLE / kinds.length)
  const samples = kinds.map((kind) => fc.sample(kind === 'malformed'
    // A data channel message is at most 64 KiB (werift's default), the same bound the device parses
    // with; and werift sends an empty message as a DATA chunk without user data, which SCTP drops
    // (browsers send PPID 56 instead). Both are covered by the 10,000 above.
    ? arbs.malformed.filter((a) => {
      if (a.kind !== 'malformed') return true
      const size = typeof a.raw === 'string' ? Buffer.byteLength(a.raw) : a.raw.bytes.length
      return size > 0 && size <= 60_000
    })
    : arbs[kind], { numRuns: per, seed: SEED }))
  const plan: Attack[] = []
  for (let i = 0; plan.length < CHANNEL_SAMPLE; i++) {
    for (const s of samples) if (plan.length < CHANNEL_SAMPLE && s[i]) plan.push(s[i]!)
  }

  const linesFrom = lan.lines.length
  const byReason = new Map<string, number>()
  for (const [i, attack] of plan.entries()) {
    const raw = await forge(attack, scene, { key: residentPublic })
    call.channel.send(wire(raw))
    const nack = await call.nth(`the nack for #${i} (${attack.kind}: ${show(raw)})`, i, (r) => r.type !== 'lock')
    const expected = EXPECTED[attack.kind]
    assert.ok(nack.type === 'nack', `#${i} ${attack.kind} was refused (${JSON.stringify(nack)})`)
    assert.equal(nack.error.code, expected === 'malformed' ? 'invalid-command' : 'denied', `#${i} ${attack.kind}: ${nack.error.message}`)
    tally(byReason, expected)
  }
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'), `the relay never opened (${lan.printed.join(', ')})`)
  assert.equal(lan.lock.open, false)
  assert.equal(lan.device.lock.state().status, 'locked')

  // Each attempt is in the hub's audit log, in order, with the reason the device gave.
  const expectedReasons = plan.map((a) => EXPECTED[a.kind])
  const doors = await eventually('every attempt in the hub\'s audit log', () => {
    const r = lan.hub.trust.audit.all().filter((a) => a.kind === 'open-door')
    return r.length >= plan.length ? r : null
  }, 15_000)
  assert.deepEqual(doors.map((r) => r.outcome), plan.map(() => 'denied'))
  assert.deepEqual(doors.map((r) => r.reason), expectedReasons)
  assert.ok(doors.every((r) => r.deviceId === lan.device.config.deviceId))
  await eventually('the device\'s audit outbox to be delivered', () => lan.device.audit.size === 0, 5000)
  // And in the device's log, with the reason.
  const logged = lan.lines.slice(linesFrom)
  assert.equal(logged.filter((l) => l.includes('open-door refused')).length, expectedReasons.filter((r) => r !== 'malformed').length)
  assert.equal(logged.filter((l) => l.includes('rejected a command')).length, expectedReasons.filter((r) => r === 'malformed').length)

  // The control: the same channel opens the door for a valid command, and refuses its replay.
  const valid = encode(DoorCommand, await signDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device: lan.device.config.deviceId, session: call.sessionId, command: newId('c') }))
  const n = plan.length
  call.channel.send(valid)
  const ack = await call.nth('the ack of the valid command', n, (r) => r.type !== 'lock')
  assert.equal(ack.type, 'ack', JSON.stringify(ack))
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)
  call.channel.send(valid)
  const replay = await call.nth('the nack of the replay', n + 1, (r) => r.type !== 'lock')
  assert.ok(replay.type === 'nack' && replay.error.code === 'denied', JSON.stringify(replay))
  const last = await eventually('the control and its replay in the audit log', () => {
    const r = lan.hub.trust.audit.all().filter((a) => a.kind === 'open-door')
    return r.length >= n + 2 ? r.slice(n) : null
  }, 5000)
  assert.deepEqual(last.map((r) => [r.outcome, r.reason]), [['allowed', 'ok'], ['denied', 'replay']])
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1, 'the replay did not open the door again')

  const ms = Math.round(performance.now() - started)
  console.log(`door-forgery over a data channel: ${plan.length} refused + 1 control + 1 replay in ${ms} ms\nby reason:\n${table(byReason)}`)
})

// ---------------------------------------------------------------- regression: refusals whose reason is long

test('a refused command whose reason is longer than a nack carries still gets a nack, and the doorbell goes on', { timeout: 60_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  // The longest display name a member may have: the device's messages name the viewer.
  const resident = await pairViewer(lan.hub, { name: 'R'.repeat(64), role: 'resident' })
  const call = await rawCall(lan, resident)
  t.after(() => call.close())
  await call.nth('the lock report on open', 0, (r) => r.type === 'lock')
  const grant = peek(Grant, resident.credential)
  assert.ok(grant.ok)
  const longKey = 'k'.repeat(400)
  const cases: Array<{ what: string, send: string, code: 'invalid-command' | 'denied' }> = [
    // decode's message lists the schema's issues, and an unknown key is quoted in full.
    { what: 'an unknown 400-character key in the command', send: JSON.stringify({ type: 'unlock', id: 'c-long-1', credential: 'x', proof: 'x', [longKey]: 1 }), code: 'invalid-command' },
    // The grant's payload is parsed (to say why) before its signature is checked, and the reason quotes it.
    {
      what: 'a grant with an unknown 400-character key (payload re-written, signature kept)',
      send: JSON.stringify({ type: 'unlock', id: 'c-long-2', credential: rewritten(resident.credential, (g) => ({ ...g, [longKey]: 1 })), proof: (await signDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device: lan.device.config.deviceId, session: call.sessionId, command: 'c-long-2' })).proof }),
      code: 'denied'
    }
  ]
  for (const [i, c] of cases.entries()) {
    call.channel.send(c.send)
    const nack = await call.nth(`a nack for ${c.what}`, i, (r) => r.type !== 'lock')
    assert.ok(nack.type === 'nack', `${c.what}: ${JSON.stringify(nack)}`)
    assert.equal(nack.error.code, c.code, c.what)
    assert.ok(nack.error.message.length <= 300)
  }
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'))
  // Still answering on the same channel: a valid command opens the door.
  call.channel.send(encode(DoorCommand, await signDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device: lan.device.config.deviceId, session: call.sessionId, command: 'c-valid' })))
  const ack = await call.nth('the ack of a valid command', cases.length, (r) => r.type !== 'lock')
  assert.equal(ack.type, 'ack', JSON.stringify(ack))
})

// ---------------------------------------------------------------- outside a call: the hub's MQTT command topic

const MQTT_SAMPLE = 120
const MQTT_MALFORMED = 12

/** A screen's own MQTT sign-in, as the viewer app makes it, to put raw bytes on the command topic. */
async function rawClient (lan: Lan, paired: PairedViewer): Promise<{ client: MqttClient, closed: Promise<void> }> {
  const client: MqttClient = mqtt.connect(lan.hub.mqttUrl, {
    clientId: `viewer-${paired.viewerId}-${newId().slice(0, 6)}`, username: paired.memberId, password: paired.token, clean: true, reconnectPeriod: 0, connectTimeout: 5000
  })
  client.on('error', () => {})
  const closed = new Promise<void>((resolve) => { client.once('close', () => resolve()) })
  await withTimeout('the screen to sign in', 5000, new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject) }))
  return { client, closed }
}

test(`${MQTT_SAMPLE} of them outside a call, over the hub's MQTT: each refused by id with its reason, audited; malformed ones stop at the broker`, { timeout: 120_000 }, async (t) => {
  t.diagnostic(`seed ${SEED}`)
  const lan = await startLan()
  t.after(() => lan.stop())
  const device = lan.device.config.deviceId
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen', role: 'resident' })
  const gone = await pairViewer(lan.hub, { name: 'Former lodger', role: 'resident' })
  await lan.hub.trust.revoke(lan.hub.trust.members().find((m) => m.id === owner.memberId)!, gone.memberId)
  await eventually('the device to hold the revocation', () => lan.device.guard.isRevoked(gone.memberId))

  // The resident's screen as the viewer app has it: results matched by command id.
  const screen = new HubClient({ url: lan.hub.mqttUrl, homeId: resident.homeId, viewerId: resident.viewerId, viewerName: resident.name, auth: { memberId: resident.memberId, token: resident.token }, log: () => {} })
  t.after(() => screen.close())
  await eventually('the screen to sign in', () => screen.connected)

  const residentGrant = peek(Grant, resident.credential)
  assert.ok(residentGrant.ok)
  const residentPublic = await importPublicKey(residentGrant.value.key)
  const base = { homeId: resident.homeId, deviceId: device, viewerId: resident.viewerId, sessionId: NO_CALL_SESSION, now: Date.now, latencyMs: 5000, homeKey: await hubHomeKey(lan) }
  const partial = { ...base, viewer: { credential: resident.credential, key: resident.key }, revoked: { credential: gone.credential, key: gone.key } }
  const scene: Scene = { ...partial, ...await signedParties(partial, residentPublic) }
  const arbs = attacks(scene)
  const kinds = (Object.keys(arbs) as Kind[]).filter((k) => k !== 'replay' && k !== 'malformed')
  const samples = kinds.map((kind) => fc.sample(arbs[kind], { numRuns: Math.ceil(MQTT_SAMPLE / kinds.length), seed: SEED }))
  const plan: Attack[] = []
  for (let i = 0; plan.length < MQTT_SAMPLE; i++) for (const s of samples) if (plan.length < MQTT_SAMPLE && s[i]) plan.push(s[i]!)

  for (const [i, attack] of plan.entries()) {
    const raw = await forge(attack, scene, { key: residentPublic })
    assert.equal(typeof raw, 'string')
    const command = DoorCommand.parse(JSON.parse(raw as string))
    const result = await screen.sendCommand(device, command)
    assert.ok(!result.ok, `#${i} ${attack.kind} was refused (${JSON.stringify(result)})`)
    assert.equal(result.id, command.id)
    assert.equal(result.error.code, 'denied', `#${i} ${attack.kind}: ${result.error.message}`)
    assert.equal(result.reason, EXPECTED[attack.kind], `#${i} ${attack.kind}: ${result.error.message}`)
  }
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'), 'the relay never opened')
  assert.equal(lan.device.lock.state().status, 'locked')

  // The control opens the door once; its replay, over MQTT or in a call, does not.
  const valid = await signOutOfCallDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device, command: newId('c') })
  const opened = await screen.sendCommand(device, valid)
  assert.ok(opened.ok && opened.id === valid.id && opened.lock?.status === 'unlocked', JSON.stringify(opened))
  const again = await screen.sendCommand(device, valid)
  assert.ok(!again.ok && again.reason === 'replay', JSON.stringify(again))
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)

  const doors = await eventually('every attempt in the hub\'s audit log', () => {
    const r = lan.hub.trust.audit.all().filter((a) => a.kind === 'open-door')
    return r.length >= plan.length + 2 ? r : null
  }, 15_000)
  assert.deepEqual(doors.map((r) => r.reason), [...plan.map((a) => EXPECTED[a.kind]), 'ok', 'replay'])
  assert.deepEqual(doors.map((r) => r.outcome), [...plan.map(() => 'denied'), 'allowed', 'denied'])
  assert.ok(doors.every((r) => r.path === 'lan' && r.deviceId === device))
  assert.equal(doors.at(-2)?.actor, 'Kitchen')

  // Malformed, too large, as another screen, for another home, retained: the broker refuses each
  // (closing that connection, MQTT-3.3.5-2), so nothing reaches the doorbell and nothing is audited.
  const malformedRaw = fc.sample(arbs.malformed, { numRuns: MQTT_MALFORMED, seed: SEED }).map((a) => a.kind === 'malformed' ? a.raw : '')
  const signedForMe = encode(DoorCommand, await signOutOfCallDoorCommand({ credential: resident.credential, key: resident.key, home: resident.homeId, device, command: newId('c') }))
  const cases: Array<{ what: string, topic: string, payload: string | Buffer, retain?: boolean }> = [
    ...malformedRaw.map((raw, i) => ({ what: `malformed #${i} (${show(raw)})`, topic: topics.command(resident.homeId, device, resident.viewerId), payload: wire(raw) })),
    { what: 'a command of 17 KiB', topic: topics.command(resident.homeId, device, resident.viewerId), payload: JSON.stringify({ ...JSON.parse(signedForMe) as object, pad: 'x'.repeat(17 * 1024) }) },
    { what: 'a command as another screen', topic: topics.command(resident.homeId, device, owner.viewerId), payload: signedForMe },
    { what: 'a command to another home', topic: topics.command('another-home', device, resident.viewerId), payload: signedForMe },
    { what: 'a retained command', topic: topics.command(resident.homeId, device, resident.viewerId), payload: signedForMe, retain: true },
    { what: 'a command result from a screen', topic: topics.commandResult(resident.homeId, device, resident.viewerId), payload: encode(CommandResult, { ok: true, id: 'c-fake', type: 'unlock' }) }
  ]
  for (const c of cases) {
    const { client, closed } = await rawClient(lan, resident)
    client.publish(c.topic, c.payload, { qos: 1, retain: c.retain ?? false })
    await withTimeout(`the broker to refuse ${c.what}`, 5000, closed)
    client.end(true)
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(lan.hub.trust.audit.all().filter((a) => a.kind === 'open-door').length, plan.length + 2, 'nothing refused by the broker reached the doorbell')
  assert.equal(lan.lines.filter((l) => l.includes('refused a publish') && l.includes('/command/')).length, cases.length)
  assert.equal(lan.printed.filter((l) => l === 'DOOR UNLOCKED').length, 1)
})

// ---------------------------------------------------------------- offers and hellos: the grant is not enough without its key

/**
 * Proof of possession (core/src/trust.ts, DoorGuard.admit): an offer and a direct-path hello carry
 * the grant and a ViewClaim signed by the grant's key for this doorbell, this session, now, once.
 * A grant seen in someone else's offer (a replay, or a borrowed grant) shows no picture.
 */
test('offers and hellos with a replayed or borrowed grant, or a proof for another device, session or time, are refused by DoorGuard.admit', async () => {
  let clock = Date.now()
  const now = (): number => clock
  const home = await generateSigningKey(true)
  const alice = await generateSigningKey(false)
  const bob = await generateSigningKey(false)
  const mallory = await generateSigningKey(false)
  const s = { homeId: 'home', deviceId: 'front-door', viewerId: 'v-alice', now }
  const aliceGrant = await grant(s, home.privateKey, alice.publicKey, { name: 'Alice', id: 'm-alice' })
  const bobGrant = await grant({ ...s, viewerId: 'v-bob' }, home.privateKey, bob.publicKey, { name: 'Bob', id: 'm-bob' })
  // Alice's genuine proofs are admitted 300 times in as many milliseconds below: a budget that
  // does not get in the way of what this test is about (the budget has its own test in core).
  const guard = new DoorGuard({ homeId: s.homeId, deviceId: s.deviceId, homeKey: await exportPublicKey(home.publicKey), now, viewRate: { burst: 1000, refillMs: 1000 } })
  const proof = async (o: Partial<ViewClaim> & { key?: SigningKey } = {}): Promise<string> => {
    const { key, ...claim } = o
    return await sign(ViewClaim, { home: s.homeId, device: s.deviceId, session: 's-1', ts: now(), nonce: newNonce(), ...claim }, key ?? alice.privateKey)
  }
  const admit = async (credential: string, viewerId: string, token: string, session: string): Promise<string> => {
    const r = await guard.admit(credential, viewerId, { proof: token, session })
    return r.ok ? 'admitted' : r.reason
  }

  // Alice's own offer, and her own hello: admitted (the controls).
  const offered = await proof({ session: 's-1' })
  assert.equal(await admit(aliceGrant, 'v-alice', offered, 's-1'), 'admitted')
  const helloed = await proof({ session: HELLO_SESSION })
  assert.equal(await admit(aliceGrant, 'v-alice', helloed, HELLO_SESSION), 'admitted')

  const nonceSpent = (JSON.parse(new TextDecoder().decode(fromB64url(offered.slice(0, offered.indexOf('.'))))) as ViewClaim).nonce
  const cases: Array<[string, () => Promise<string>, DenyReason]> = [
    ['her offer, replayed as it was', async () => await admit(aliceGrant, 'v-alice', offered, 's-1'), 'replay'],
    ['her offer, replayed with its signature re-encoded', async () => await admit(aliceGrant, 'v-alice', reencoded(offered, 3), 's-1'), 'replay'],
    ['her hello, replayed', async () => await admit(aliceGrant, 'v-alice', helloed, HELLO_SESSION), 'replay'],
    ['her offer\'s proof, on another session', async () => await admit(aliceGrant, 'v-alice', offered, 's-2'), 'wrong-session'],
    ['her offer\'s proof, as a hello', async () => await admit(aliceGrant, 'v-alice', offered, HELLO_SESSION), 'wrong-session'],
    ['her hello\'s proof, as an offer', async () => await admit(aliceGrant, 'v-alice', helloed, 's-6'), 'wrong-session'],
    ['her grant, borrowed by Bob: his own key signs the proof', async () => await admit(aliceGrant, 'v-alice', await proof({ key: bob.privateKey }), 's-1'), 'bad-signature'],
    ['her grant, borrowed by someone in no grant', async () => await admit(aliceGrant, 'v-alice', await proof({ key: mallory.privateKey }), 's-1'), 'bad-signature'],
    ['her grant, under Bob\'s viewer id', async () => await admit(aliceGrant, 'v-bob', await proof({ key: bob.privateKey }), 's-1'), 'wrong-viewer'],
    ['Bob\'s grant with a proof by Alice\'s key', async () => await admit(bobGrant, 'v-bob', await proof(), 's-1'), 'bad-signature'],
    ['a proof for another doorbell', async () => await admit(aliceGrant, 'v-alice', await proof({ device: 'back-door' }), 's-1'), 'wrong-device'],
    ['a proof for another home', async () => await admit(aliceGrant, 'v-alice', await proof({ home: 'next-door' }), 's-1'), 'wrong-device'],
    ['a proof for another session', async () => await admit(aliceGrant, 'v-alice', await proof({ session: 's-9' }), 's-1'), 'wrong-session'],
    ['a proof signed 31 s ago', async () => await admit(aliceGrant, 'v-alice', await proof({ ts: now() - 31_000 }), 's-1'), 'stale'],
    ['a proof dated 31 s ahead', async () => await admit(aliceGrant, 'v-alice', await proof({ ts: now() + 31_000 }), 's-1'), 'stale'],
    ['a fresh proof that reuses a spent nonce', async () => await admit(aliceGrant, 'v-alice', await proof({ session: 's-3', nonce: nonceSpent }), 's-3'), 'replay'],
    ['a proof whose session was re-written (signature kept)', async () => await admit(aliceGrant, 'v-alice', rewritten(await proof({ session: 's-old' }), (c) => ({ ...c, session: 's-4' })), 's-4'), 'bad-signature'],
    ['an open-door command\'s proof', async () => await admit(aliceGrant, 'v-alice', (await signDoorCommand({ credential: aliceGrant, key: alice.privateKey, home: s.homeId, device: s.deviceId, session: 's-5', command: 'c-1', now: now() })).proof, 's-5'), 'bad-signature']
  ]
  for (const [what, attempt, reason] of cases) {
    clock += 1
    assert.equal(await attempt(), reason, what)
  }

  // Generated: bits flipped anywhere in a valid proof, claims re-written field by field. None is admitted.
  await fc.assert(fc.asyncProperty(
    fc.oneof(
      fc.record({ part: fc.constantFrom<Part>('payload', 'signature'), ...flip }).map((f) => ({ kind: 'flip' as const, ...f })),
      fc.record({ field: fc.constantFrom('home', 'device', 'session', 'ts', 'nonce'), value: anId }).map((r) => ({ kind: 'rewrite' as const, ...r }))
    ),
    async (a) => {
      clock += 1
      const session = newId('s')
      const token = await proof({ session })
      const forged = a.kind === 'flip'
        ? flipped(token, a.part, a.index, a.bit)
        : rewritten(token, (c) => ({ ...c, [a.field]: a.field === 'ts' ? now() + 1 : a.value }))
      const r = await guard.admit(aliceGrant, 'v-alice', { proof: forged, session })
      assert.equal(r.ok, false, `${JSON.stringify(a)} was admitted`)
      // The untouched proof still is: the guard does not refuse everything.
      assert.equal(await admit(aliceGrant, 'v-alice', token, session), 'admitted')
    }
  ), { numRuns: 300, seed: SEED })
})

test('over the direct path: a replayed hello or offer, and a borrowed grant, get a refusal and no picture; the member\'s own get in', { timeout: 60_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  const alice = await pairViewer(lan.hub, { name: 'Alice', role: 'resident' })
  const bob = await pairViewer(lan.hub, { name: 'Bob', role: 'resident' })
  const device = lan.device.config.deviceId
  // Bob's own libp2p node: he saw Alice's hello and offer on the LAN (a shared screen, a log), and has his own key.
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-forgery-'))
  const datastore = new FsDatastore(dir)
  await datastore.open()
  const probe = await createMeshPeer({ datastore, host: '127.0.0.1', tcpPort: 0, directPort: 0, tcp: tcp(), discovery: [] })
  await probe.start()
  t.after(async () => { await probe.stop(); await datastore.close(); rmSync(dir, { recursive: true, force: true }) })
  const addrs = lan.device.mesh!.node.getMultiaddrs()

  const hello = async (frame: ViewerHello): Promise<EventFrame> => {
    const stream = await probe.dialProtocol(addrs, PROTOCOLS.events)
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    await writeFrame(io, ViewerHello, frame)
    const got = await readFrame(io, EventFrame, 'the device\'s first frame', 5000)
    await stream.close().catch(() => {})
    assert.ok(got.ok)
    return got.value
  }
  const refusal = (f: EventFrame): string => f.kind === 'refused' ? f.message : `not refused: ${f.kind}`
  const aliceHello = async (key: SigningKey, ts?: number): Promise<ViewerHello> => ({
    homeId: alice.homeId, viewerId: alice.viewerId, viewerName: alice.name, credential: alice.credential,
    proof: await signViewClaim({ key, home: alice.homeId, device, session: HELLO_SESSION, ...(ts !== undefined ? { now: ts } : {}) })
  })

  // Hellos. Alice's own: the device's presence. Replayed by Bob: refused. Her grant with Bob's key, or stale: refused.
  const real = await aliceHello(alice.key)
  assert.equal((await hello(real)).kind, 'presence')
  assert.match(refusal(await hello(real)), /already used/)
  assert.match(refusal(await hello(await aliceHello(bob.key))), /not signed by Alice's key/)
  assert.match(refusal(await hello(await aliceHello(alice.key, Date.now() - 60_000))), /off the doorbell's clock/)
  assert.match(refusal(await hello({ ...await aliceHello(bob.key), viewerId: bob.viewerId, viewerName: bob.name })), /another viewer/)

  // Offers on the signal protocol: one stream per session, as the viewer app does.
  const offer = async (message: Offer): Promise<SignalToViewer> => {
    const stream = await probe.dialProtocol(addrs, PROTOCOLS.signal)
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    await writeFrame(io, SignalToDevice, message)
    const got = await readFrame(io, SignalToViewer, 'the device\'s reply', 10_000)
    assert.ok(got.ok)
    if (got.value.type === 'answer') {
      await writeFrame(io, SignalToDevice, { type: 'bye', sessionId: message.sessionId, reason: 'hang-up' })
      await eventually('the session to end', () => lan.device.state().participants.length === 0 ? true : undefined, 5000)
    }
    await stream.close().catch(() => {})
    return got.value
  }
  const rejected = (m: SignalToViewer): string => m.type === 'bye' && m.reason === 'rejected' ? m.message ?? '' : `not rejected: ${JSON.stringify(m).slice(0, 200)}`
  const sdp = await realSdp()
  const sessionId = newId('s')
  const aliceOffer = await offerFrom(alice, { device, sessionId, sdp })
  // Her grant, with a proof signed by Bob's key: no picture.
  assert.match(rejected(await offer(await offerFrom(alice, { device, sessionId: newId('s'), sdp, key: bob.key }))), /not signed by Alice's key/)
  // Her own offer: answered. The same offer again, after her call: refused.
  const answered = await offer(aliceOffer)
  assert.equal(answered.type, 'answer', JSON.stringify(answered).slice(0, 200))
  assert.match(rejected(await offer(aliceOffer)), /already used/)
  // A stale one, and one signed for another doorbell.
  assert.match(rejected(await offer(await offerFrom(alice, { device, sessionId: newId('s'), sdp, now: Date.now() - 60_000 }))), /off the doorbell's clock/)
  assert.match(rejected(await offer(await offerFrom(alice, { device: 'back-door', sessionId: newId('s'), sdp }))), /the proof is for back-door/)
  assert.equal(lan.device.state().participants.length, 0, 'no session was left for any of them')
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'))
})

/** A real offer's SDP from werift, as the viewer makes it. */
async function realSdp (): Promise<string> {
  const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle', codecs: { video: [videoCodec('h264')], audio: [] } })
  pc.createDataChannel(CONTROL_CHANNEL, { ordered: true })
  pc.addTransceiver('video', { direction: 'recvonly' })
  const offer = await pc.createOffer()
  withoutDefaultStun(pc, [])
  await pc.setLocalDescription(offer)
  await withTimeout('ICE gathering', 5000, new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return }
    const sub = pc.iceGatheringStateChange.subscribe((state) => { if (state === 'complete') { sub.unSubscribe(); resolve() } })
  }))
  const sdp = pc.localDescription!.sdp
  await pc.close()
  return sdp
}

// ---------------------------------------------------------------- talk commands (issue 17: the talk lease)

const TALK_RUNS = 2000
const TALK_CONTROL_EVERY = 50

type TalkAttack =
  | { kind: 'proof-by-foreign-key' }
  | { kind: 'claim-rewritten', change: 'session' | 'device' | 'command' | 'action' | 'ts' }
  | { kind: 'proof-bytes-flipped', index: number, bit: number }
  | { kind: 'random-proof', token: string }
  | { kind: 'replay' }
  | { kind: 'expired' }
  | { kind: 'guest-without-talk' }
  | { kind: 'operator-outside-talk-zones' }

const TALK_EXPECTED: Record<TalkAttack['kind'], DenyReason | 'malformed'> = {
  'proof-by-foreign-key': 'bad-signature',
  'claim-rewritten': 'wrong-session',
  'proof-bytes-flipped': 'bad-signature',
  'random-proof': 'malformed',
  replay: 'replay',
  expired: 'expired',
  'guest-without-talk': 'no-talk-right',
  'operator-outside-talk-zones': 'no-talk-right'
}
const talkReasonOf = (a: TalkAttack): string => a.kind === 'claim-rewritten'
  ? ({ session: 'wrong-session', device: 'wrong-device', command: 'wrong-session', action: 'wrong-session', ts: 'stale' } as const)[a.change]
  : TALK_EXPECTED[a.kind]

test(`${TALK_RUNS} generated talk commands that must not take the talk lease, against DoorGuard and the device's lease`, { timeout: 120_000 }, async () => {
  const homeKeys = await generateSigningKey(true)
  let clock = Date.now()
  const guard = new DoorGuard({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(homeKeys.publicKey), zone: 'home', now: () => clock })
  const audit: Array<{ outcome: string, reason: string }> = []
  const floor = talkLease({ guard, audit: (a) => { audit.push(a) }, deviceId: 'front-door', log: memoryLogger([], 'talk'), now: () => clock })
  const member = async (sub: string, grant: Partial<Grant>) => {
    const keys = await generateSigningKey(false)
    const credential = await sign(Grant, { v: 1, id: `m-${sub}`, home: 'home', sub, name: sub, role: 'resident', door: false, zones: [], talk: true, key: await exportPublicKey(keys.publicKey), iat: clock - 1000, exp: null, ...grant }, homeKeys.privateKey)
    return { sub, keys, credential }
  }
  const kitchen = await member('kitchen', {})
  const gone = await member('gone', { exp: clock + 500 })
  const guest = await member('guest', { role: 'guest', talk: false })
  const operator = await member('op', { role: 'operator', zones: ['home', 'gate'], talkZones: ['gate'] })
  const stranger = await generateSigningKey(false)
  const told: Array<Extract<TalkReply, { type: 'talk-nack' | 'talk-ack' }>> = []
  const session = (sessionId: string, viewerId: string) => floor.session({ sessionId, viewerId, viewerName: viewerId, log: memoryLogger([], 't'), send: (m) => { if (m.type === 'talk-nack' || m.type === 'talk-ack') told.push(m) }, path: () => 'lan' })
  const sessions = new Map([kitchen, gone, guest, operator].map((m) => [m.sub, session(`s-${m.sub}`, m.sub)]))
  clock += 1000 // the short grant has ended

  const claim = (o: { key?: SigningKey, session?: string, device?: string, command?: string, action?: 'talk' | 'renew', ts?: number }, id: string) =>
    sign(TalkClaim, { home: 'home', device: o.device ?? 'front-door', session: o.session ?? 's-kitchen', command: o.command ?? id, action: o.action ?? 'talk', ts: o.ts ?? clock, nonce: newNonce() }, (o.key ?? kitchen.keys.privateKey))
  let replayable: string | null = null
  let replayableAt = 0
  const build = async (a: TalkAttack): Promise<{ who: string, raw: string }> => {
    const id = newId('c')
    const command = (credential: string, proof: string, type = 'talk') => JSON.stringify({ type, id, credential, proof })
    switch (a.kind) {
      case 'proof-by-foreign-key': return { who: 'kitchen', raw: command(kitchen.credential, await claim({ key: stranger.privateKey }, id)) }
      case 'claim-rewritten': {
        const o = a.change === 'session' ? { session: 's-other' } : a.change === 'device' ? { device: 'back-door' } : a.change === 'command' ? { command: newId('c') } : a.change === 'action' ? { action: 'renew' as const } : { ts: clock - 120_000 }
        return { who: 'kitchen', raw: command(kitchen.credential, await claim(o, id)) }
      }
      case 'proof-bytes-flipped': {
        const proof = await claim({}, id)
        const dot = proof.indexOf('.')
        const sig = fromB64url(proof.slice(dot + 1))
        sig[a.index % sig.length]! ^= 1 << a.bit
        return { who: 'kitchen', raw: command(kitchen.credential, `${proof.slice(0, dot)}.${toB64url(sig)}`) }
      }
      case 'random-proof': return { who: 'kitchen', raw: command(kitchen.credential, a.token) }
      case 'replay': {
        // Spent once by a valid talk, then released: the same bytes again must be refused (made
        // again before it is stale, or it would be refused as stale first).
        if (replayable === null || clock - replayableAt > 20_000) {
          replayableAt = clock
          replayable = command(kitchen.credential, await claim({}, id))
          clock += 1000 // a budget token for it
          await sessions.get('kitchen')!.command(replayable)
          await sessions.get('kitchen')!.command(JSON.stringify({ type: 'talk-release', id: newId('r') }))
          audit.pop()
        }
        return { who: 'kitchen', raw: replayable }
      }
      case 'expired': return { who: 'gone', raw: command(gone.credential, await claim({ key: gone.keys.privateKey, session: 's-gone' }, id)) }
      case 'guest-without-talk': return { who: 'guest', raw: command(guest.credential, await claim({ key: guest.keys.privateKey, session: 's-guest' }, id)) }
      case 'operator-outside-talk-zones': return { who: 'op', raw: command(operator.credential, await claim({ key: operator.keys.privateKey, session: 's-op' }, id)) }
    }
  }
  const attacks = fc.oneof(
    fc.constant<TalkAttack>({ kind: 'proof-by-foreign-key' }),
    fc.constantFrom('session', 'device', 'command', 'action', 'ts').map((change): TalkAttack => ({ kind: 'claim-rewritten', change })),
    fc.record({ index: fc.nat(63), bit: fc.nat(7) }).map((r): TalkAttack => ({ kind: 'proof-bytes-flipped', ...r })),
    fc.string({ maxLength: 200 }).map((token): TalkAttack => ({ kind: 'random-proof', token })),
    fc.constant<TalkAttack>({ kind: 'replay' }),
    fc.constant<TalkAttack>({ kind: 'expired' }),
    fc.constant<TalkAttack>({ kind: 'guest-without-talk' }),
    fc.constant<TalkAttack>({ kind: 'operator-outside-talk-zones' })
  )
  let runs = 0
  let controls = 0
  await fc.assert(fc.asyncProperty(attacks, async (attack) => {
    runs++
    if (runs % TALK_CONTROL_EVERY === 0) {
      // A control: a valid talk takes the lease (so a guard refusing everything fails), then lets it go.
      clock += 1000
      const id = newId('c')
      await sessions.get('kitchen')!.command(JSON.stringify({ type: 'talk', id, credential: kitchen.credential, proof: await claim({}, id) }))
      assert.equal(floor.mayTalk('s-kitchen'), true, 'a valid talk command takes the lease')
      await sessions.get('kitchen')!.command(JSON.stringify({ type: 'talk-release', id: newId('r') }))
      audit.pop()
      controls++
    }
    const { who, raw } = await build(attack)
    const before = audit.length
    await sessions.get(who)!.command(raw)
    const record = audit[before]
    assert.ok(record, `${attack.kind}: audited`)
    assert.equal(record.outcome, 'denied', `${attack.kind} was allowed`)
    // Random tokens that happen to have a signed token's shape are refused for their signature.
    const expected = attack.kind === 'random-proof' && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/.test(attack.token) ? 'bad-signature' : talkReasonOf(attack)
    assert.equal(record.reason, expected, `${attack.kind}${attack.kind === 'claim-rewritten' ? ` (${attack.change})` : ''}`)
    assert.equal(told.at(-1)?.type, 'talk-nack')
    for (const s of ['s-kitchen', 's-gone', 's-guest', 's-op']) assert.equal(floor.mayTalk(s), false, `${attack.kind} took the lease`)
  }), { numRuns: TALK_RUNS, seed: SEED, endOnFailure: true })
  assert.ok(controls >= TALK_RUNS / TALK_CONTROL_EVERY - 1, `${controls} controls took the lease`)
  floor.stop()
})

// ---------------------------------------------------------------- quick-reply commands (issue 17: quick replies)

const REPLY_RUNS = 1000
const REPLY_CONTROL_EVERY = 100
const REPLY = 'Leave it at the door'

type ReplyAttack =
  | { kind: 'proof-by-foreign-key' }
  | { kind: 'claim-rewritten', change: 'session' | 'device' | 'command' | 'reply' | 'ts' | 'no-call' }
  | { kind: 'proof-bytes-flipped', index: number, bit: number }
  | { kind: 'random-proof', token: string }
  | { kind: 'replay' }
  | { kind: 'expired' }
  | { kind: 'guest-without-talk' }

const REPLY_EXPECTED: Record<ReplyAttack['kind'], DenyReason | 'malformed'> = {
  'proof-by-foreign-key': 'bad-signature',
  'claim-rewritten': 'wrong-session',
  'proof-bytes-flipped': 'bad-signature',
  'random-proof': 'malformed',
  replay: 'replay',
  expired: 'expired',
  'guest-without-talk': 'no-talk-right'
}
const replyReasonOf = (a: ReplyAttack): string => a.kind === 'claim-rewritten'
  ? ({ session: 'wrong-session', device: 'wrong-device', command: 'wrong-session', reply: 'wrong-session', ts: 'stale', 'no-call': 'wrong-session' } as const)[a.change]
  : REPLY_EXPECTED[a.kind]

test(`${REPLY_RUNS} generated quick-reply commands that must not play, against DoorGuard and the device's reply kind with a real espeak-ng render`, { timeout: 180_000 }, async (t) => {
  const homeKeys = await generateSigningKey(true)
  let clock = Date.now()
  const guard = new DoorGuard({ homeId: 'home', deviceId: 'front-door', homeKey: await exportPublicKey(homeKeys.publicKey), zone: 'home', now: () => clock })
  const audit: Array<{ kind?: string, outcome: string, reason: string }> = []
  // The doorbell's own player: the reply rendered by espeak-ng; what it plays is counted at the speaker's door.
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-reply-forgery-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  let played = 0
  const replies = new QuickReplies({ dir, ffmpeg: findFfmpeg(), speaker: { enabled: true, play: () => { played++ } }, log: memoryLogger([], 'replies') })
  await replies.start()
  await replies.use([REPLY])
  assert.ok(replies.has(REPLY), 'the reply was rendered')
  const floor = talkLease({ guard, replies, audit: (a) => { audit.push(a) }, deviceId: 'front-door', log: memoryLogger([], 'talk'), now: () => clock })
  t.after(() => { replies.stop(); floor.stop() })
  const member = async (sub: string, grant: Partial<Grant>) => {
    const keys = await generateSigningKey(false)
    const credential = await sign(Grant, { v: 1, id: `m-${sub}`, home: 'home', sub, name: sub, role: 'resident', door: false, zones: [], talk: true, key: await exportPublicKey(keys.publicKey), iat: clock - 1000, exp: null, ...grant }, homeKeys.privateKey)
    return { sub, keys, credential }
  }
  const kitchen = await member('kitchen', {})
  const gone = await member('gone', { exp: clock + 500 })
  const guest = await member('guest', { role: 'guest', talk: false })
  const stranger = await generateSigningKey(false)
  const told: Array<Extract<TalkReply, { type: 'talk-nack' | 'reply-ack' }>> = []
  const session = (sessionId: string, viewerId: string) => floor.session({ sessionId, viewerId, viewerName: viewerId, log: memoryLogger([], 't'), send: (m) => { if (m.type === 'talk-nack' || m.type === 'reply-ack') told.push(m) }, path: () => 'lan' })
  const sessions = new Map([kitchen, gone, guest].map((m) => [m.sub, session(`s-${m.sub}`, m.sub)]))
  clock += 1000 // the short grant has ended

  const claim = (o: { key?: SigningKey, session?: string, device?: string, command?: string, reply?: string, ts?: number }, id: string) =>
    sign(ReplyClaim, { home: 'home', device: o.device ?? 'front-door', session: o.session ?? 's-kitchen', command: o.command ?? id, reply: o.reply ?? REPLY, ts: o.ts ?? clock, nonce: newNonce() }, (o.key ?? kitchen.keys.privateKey))
  const command = (id: string, credential: string, proof: string): string => JSON.stringify({ type: 'reply', id, reply: REPLY, credential, proof })
  // A playing reply holds the floor under its command id: it has ended when that key may no longer talk.
  const untilPlayed = async (id: string): Promise<void> => { await eventually('the reply to end', () => !floor.mayTalk(id), 10_000) }
  let replayable: string | null = null
  let replayableAt = 0
  const build = async (a: ReplyAttack): Promise<{ who: string, raw: string }> => {
    const id = newId('c')
    switch (a.kind) {
      case 'proof-by-foreign-key': return { who: 'kitchen', raw: command(id, kitchen.credential, await claim({ key: stranger.privateKey }, id)) }
      case 'claim-rewritten': {
        const o = a.change === 'session' ? { session: 's-other' } : a.change === 'device' ? { device: 'back-door' } : a.change === 'command' ? { command: newId('c') }
          : a.change === 'reply' ? { reply: 'Go away' } : a.change === 'no-call' ? { session: NO_CALL_SESSION } : { ts: clock - 120_000 }
        return { who: 'kitchen', raw: command(id, kitchen.credential, await claim(o, id)) }
      }
      case 'proof-bytes-flipped': {
        const proof = await claim({}, id)
        const dot = proof.indexOf('.')
        const sig = fromB64url(proof.slice(dot + 1))
        sig[a.index % sig.length]! ^= 1 << a.bit
        return { who: 'kitchen', raw: command(id, kitchen.credential, `${proof.slice(0, dot)}.${toB64url(sig)}`) }
      }
      case 'random-proof': return { who: 'kitchen', raw: command(id, kitchen.credential, a.token) }
      case 'replay': {
        // Spent once by a valid reply that played: the same bytes again must be refused.
        if (replayable === null || clock - replayableAt > 20_000) {
          replayableAt = clock
          replayable = command(id, kitchen.credential, await claim({}, id))
          clock += 1000 // a budget token for it
          await sessions.get('kitchen')!.command(replayable)
          assert.equal(told.at(-1)?.type, 'reply-ack')
          await untilPlayed(id)
          audit.pop()
        }
        return { who: 'kitchen', raw: replayable }
      }
      case 'expired': return { who: 'gone', raw: command(id, gone.credential, await claim({ key: gone.keys.privateKey, session: 's-gone' }, id)) }
      case 'guest-without-talk': return { who: 'guest', raw: command(id, guest.credential, await claim({ key: guest.keys.privateKey, session: 's-guest' }, id)) }
    }
  }
  const attacks = fc.oneof(
    fc.constant<ReplyAttack>({ kind: 'proof-by-foreign-key' }),
    fc.constantFrom('session', 'device', 'command', 'reply', 'ts', 'no-call').map((change): ReplyAttack => ({ kind: 'claim-rewritten', change })),
    fc.record({ index: fc.nat(63), bit: fc.nat(7) }).map((r): ReplyAttack => ({ kind: 'proof-bytes-flipped', ...r })),
    fc.string({ maxLength: 200 }).map((token): ReplyAttack => ({ kind: 'random-proof', token })),
    fc.constant<ReplyAttack>({ kind: 'replay' }),
    fc.constant<ReplyAttack>({ kind: 'expired' }),
    fc.constant<ReplyAttack>({ kind: 'guest-without-talk' })
  )
  let runs = 0
  let controls = 0
  await fc.assert(fc.asyncProperty(attacks, async (attack) => {
    runs++
    if (runs % REPLY_CONTROL_EVERY === 0) {
      // A control: a valid reply plays (so a guard refusing everything fails), and is let finish.
      clock += 1000
      const id = newId('c')
      const before = played
      await sessions.get('kitchen')!.command(command(id, kitchen.credential, await claim({}, id)))
      assert.equal(told.at(-1)?.type, 'reply-ack', 'a valid reply command plays')
      await untilPlayed(id)
      await eventually('the reply\'s packets at the speaker', () => played > before + 10, 5000)
      audit.pop()
      controls++
    }
    const { who, raw } = await build(attack)
    const before = audit.length
    const playedBefore = played
    await sessions.get(who)!.command(raw)
    const record = audit[before]
    assert.ok(record, `${attack.kind}: audited`)
    assert.equal(record.kind, 'reply')
    assert.equal(record.outcome, 'denied', `${attack.kind} was allowed`)
    const expected = attack.kind === 'random-proof' && SIGNED.test(attack.token) ? 'bad-signature' : replyReasonOf(attack)
    assert.equal(record.reason, expected, `${attack.kind}${attack.kind === 'claim-rewritten' ? ` (${attack.change})` : ''}`)
    assert.equal(told.at(-1)?.type, 'talk-nack')
    assert.equal(played, playedBefore, `${attack.kind} reached the speaker`)
  }), { numRuns: REPLY_RUNS, seed: SEED, endOnFailure: true })
  assert.ok(controls >= REPLY_RUNS / REPLY_CONTROL_EVERY - 1, `${controls} controls played`)
})
