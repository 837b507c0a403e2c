import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { waitFor } from 'xstate'
import { RTCPeerConnection } from 'werift'
import {
  CONTROL_CHANNEL, SignalToDevice, SignalToViewer, decode, decodeTopicMessage, encode, memoryLogger, newId, signViewClaim, topics
} from '@doorbell/core'
import { pairDevice, videoCodec, withoutDefaultStun } from '@doorbell/device'
import { eventually, startLan, type Lan } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'
import { deviceInvite, pairViewer, type PairedViewer } from '../src/trust'

/**
 * Garbage from members who are signed in: a resident, a second doorbell of the home, and the
 * doorbell's own credentials publish fuzzed payloads (random bytes, random JSON, valid messages
 * with one field changed, payloads over 64 KiB and over the WebSocket's 256 KiB) to every kind of
 * topic, and the resident sends offers with a valid grant but garbage SDP. Every message is either
 * refused by the hub with a log line that names the client, the topic and the reason (and the
 * connection closed; the fuzzer signs in again), or it was a valid message. Afterwards the hub and
 * the doorbell still work (a ring reaches a viewer, who answers and sees video) and the door
 * never opened.
 */

const SEED = Number(process.env.FUZZ_SEED ?? (Date.now() % 2_147_483_647))
const HOME = 'home'
const FRONT = 'front-door'
const PORCH = 'porch'
const WAIT_MS = 5000
const COUNTS = { resident: 110, porch: 90, ownCredentials: 20, sdp: 70 }

type Kind = 'ring' | 'state' | 'presence' | 'calls' | 'audit' | 'inspect' | 'to-device' | 'to-viewer' | 'revocations' | 'not-ours'
const KINDS: Kind[] = ['ring', 'state', 'presence', 'calls', 'audit', 'inspect', 'to-device', 'to-viewer', 'revocations', 'not-ours']
const NOT_OURS = ['garbage/topic', `doorbell/${HOME}/${FRONT}/open-door`, `doorbell/${HOME}/${FRONT}`, `doorbell/${HOME}/bad id/ring`, '$SYS/broker/uptime', `doorbell/${HOME}/revocations/x`]

async function withTimeout<T> (what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------- a publisher that signs in again when the hub closes it

type Outcome = 'accepted' | 'closed'

class Publisher {
  client: MqttClient | null = null
  clientId = ''
  reconnects = 0
  constructor (private readonly url: string, private readonly o: { clientId: () => string, username: string, password: string }) {}

  private async connect (): Promise<MqttClient> {
    if (this.client?.connected) return this.client
    if (this.client) { this.client.end(true); this.reconnects++ }
    this.clientId = this.o.clientId()
    const client = mqtt.connect(this.url, { clientId: this.clientId, username: this.o.username, password: this.o.password, clean: true, reconnectPeriod: 0, connectTimeout: WAIT_MS } satisfies IClientOptions)
    client.on('error', () => {})
    // A device id is one session: the real doorbell may take it back at any moment. Try a few times.
    for (let attempt = 0; attempt < 5; attempt++) {
      const ok = await withTimeout('a CONNACK', WAIT_MS + 1000, new Promise<boolean>((resolve) => {
        if (client.connected) { resolve(true); return }
        client.once('connect', () => resolve(true))
        client.once('close', () => resolve(false))
      }))
      if (ok) { this.client = client; return client }
      client.reconnect()
    }
    throw new Error(`${this.clientId} could not sign in`)
  }

  /** Publishes once, QoS 1: acknowledged, or the hub closed the connection. */
  async send (topic: string, payload: Buffer | string): Promise<{ outcome: Outcome, clientId: string }> {
    const client = await this.connect()
    const clientId = this.clientId
    let onClose = (): void => {}
    try {
      const outcome = await withTimeout(`the hub's verdict on ${topic}`, WAIT_MS, new Promise<Outcome>((resolve) => {
        onClose = () => { resolve('closed') }
        client.once('close', onClose)
        client.publish(topic, payload, { qos: 1 }, (err) => { if (!err) resolve('accepted') })
      }))
      return { outcome, clientId }
    } finally {
      client.removeListener('close', onClose)
    }
  }

  async end (): Promise<void> {
    const c = this.client
    if (c) await withTimeout('the client to end', 2000, new Promise<void>((resolve) => { c.end(true, {}, () => resolve()) })).catch(() => {})
  }
}

// ---------------------------------------------------------------- what is fuzzed

interface Shape { topic: string, base: unknown }

/** A valid message of each kind, as `who` would send it (ids agreeing with the topic; the offer's proof names its session). */
function shapes (o: { device: string, viewerId: string, credential: string, proof: string, session: string, sdp: string, list: string }): Record<Kind, () => Shape> {
  const session = o.session
  let n = 0
  return {
    ring: () => ({ topic: topics.ring(HOME, o.device), base: { type: 'ring', deviceId: o.device, deviceName: 'Front door', ringId: newId('r'), at: Date.now(), count: 1 } }),
    state: () => ({
      topic: topics.state(HOME, o.device),
      base: { deviceId: o.device, deviceName: 'Front door', call: { status: 'idle', ringId: null, since: 0 }, participants: [], lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null }, lastRing: null, at: Date.now() }
    }),
    presence: () => ({ topic: topics.presence(HOME, o.device), base: { deviceId: o.device, online: true, at: Date.now() } }),
    calls: () => ({ topic: topics.calls(HOME, o.device), base: { deviceId: o.device, ringId: null, startedAt: 1, endedAt: 2, outcome: 'live-view', answeredBy: [{ viewerId: o.viewerId, viewerName: 'K' }], unlocks: [] } }),
    audit: () => ({ topic: topics.audit(HOME, o.device), base: { id: newId('a'), deviceId: o.device, at: Date.now(), outcome: 'allowed', reason: 'ok', message: 'opened', memberId: null, viewerId: o.viewerId, viewerName: 'K', role: 'resident', path: 'lan' } }),
    inspect: () => {
      const source = o.device === '' ? `viewer-${o.viewerId}-fz` : o.device
      return { topic: topics.inspect(HOME, source), base: { source: { kind: o.device === '' ? 'viewer' : 'device', id: source, name: 'fuzz' }, events: [{ type: 'event', at: 1, from: null, to: 'deviceCall', event: 'PRESS' }] } }
    },
    'to-device': () => ({ topic: topics.session(HOME, FRONT, o.viewerId, session, 'to-device'), base: { type: 'offer', sessionId: session, viewerId: o.viewerId, viewerName: 'Fuzzer', sdp: o.sdp, credential: o.credential, proof: o.proof } }),
    'to-viewer': () => ({ topic: topics.session(HOME, o.device || FRONT, o.viewerId, session, 'to-viewer'), base: { type: 'answer', sessionId: session, sdp: o.sdp } }),
    revocations: () => ({ topic: topics.revocations(HOME), base: { list: o.list } }),
    'not-ours': () => ({ topic: NOT_OURS[n++ % NOT_OURS.length]!, base: { type: 'ring', deviceId: o.device || FRONT, deviceName: 'Front door', ringId: 'r1', at: 1, count: 1 } })
  }
}

/** Every path to a leaf (or a branch) of a JSON value. */
function paths (v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (v === null || typeof v !== 'object') return [prefix]
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v)
  return [prefix, ...entries.flatMap(([k, x]) => paths(x, [...prefix, k]))]
}

/** The value with the thing at `path` replaced (or removed). */
function mutate (v: unknown, path: Array<string | number>, replacement: { value: unknown } | 'delete'): unknown {
  if (path.length === 0) return replacement === 'delete' ? undefined : replacement.value
  const copy = structuredClone(v) as Record<string | number, unknown>
  let at = copy
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>
  const last = path.at(-1)!
  if (replacement === 'delete') delete at[last]
  else at[last] = replacement.value
  return copy
}

const anyValue = fc.oneof(
  fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.nat(), { maxKeys: 3 }),
  fc.integer({ min: 300, max: 5000 }).map((n) => 'x'.repeat(n)), fc.constantFrom('', '../..', 'a/b', '#', '+', 'v=0', '__proto__', 'unlock', 'owner')
)

type Gen = 'bytes' | 'json' | 'mutated' | 'retyped' | 'oversized' | 'huge'

const ID = /^[A-Za-z0-9_-]{1,64}$/
/** Another value of the same type: it often passes the schema, and so reaches the doorbell and the viewers. */
function sameType (v: unknown): fc.Arbitrary<unknown> {
  if (typeof v === 'string') return fc.oneof(fc.stringMatching(ID), fc.string({ maxLength: 20 }), fc.constant(''))
  if (typeof v === 'number') return fc.oneof(fc.nat(), fc.integer(), fc.constant(Number.MAX_SAFE_INTEGER))
  if (typeof v === 'boolean') return fc.boolean()
  if (Array.isArray(v)) return fc.constant([])
  return anyValue
}
const at = (v: unknown, path: Array<string | number>): unknown => path.reduce<unknown>((x, k) => (x as Record<string | number, unknown>)[k], v)

/** A fuzzed payload for a message shaped like `base`. */
function payloads (base: unknown): fc.Arbitrary<{ gen: Gen, payload: Buffer }> {
  const p = paths(base)
  return fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((b) => ({ gen: 'bytes' as const, payload: Buffer.from(b) })) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map((s) => ({ gen: 'json' as const, payload: Buffer.from(s) })) },
    {
      weight: 5,
      arbitrary: fc.tuple(fc.nat({ max: p.length - 1 }), fc.oneof({ weight: 5, arbitrary: anyValue.map((value) => ({ value })) }, { weight: 1, arbitrary: fc.constant('delete' as const) }))
        .map(([i, r]) => ({ gen: 'mutated' as const, payload: Buffer.from(JSON.stringify(mutate(base, p[i]!, r)) ?? '') }))
    },
    {
      weight: 4,
      arbitrary: fc.nat({ max: p.length - 1 }).chain((i) => sameType(at(base, p[i]!)).map((value) => ({ gen: 'retyped' as const, payload: Buffer.from(JSON.stringify(mutate(base, p[i]!, { value })) ?? '') })))
    },
    // Over the 64 KiB any of our messages may be (the hub parses nothing bigger).
    { weight: 1, arbitrary: fc.integer({ min: 64 * 1024 + 1, max: 200 * 1024 }).map((n) => ({ gen: 'oversized' as const, payload: Buffer.from(JSON.stringify({ ...(base as object), pad: 'x'.repeat(n) })) })) },
    // Over the WebSocket path's 256 KiB frame limit (on TCP the hub still has to refuse it itself).
    { weight: 1, arbitrary: fc.integer({ min: 257 * 1024, max: 1024 * 1024 }).map((n) => ({ gen: 'huge' as const, payload: Buffer.alloc(n, 0x7b) })) }
  )
}

function plan (count: number, seed: number, shape: Record<Kind, () => Shape>): Array<{ kind: Kind, topic: string, gen: Gen, payload: Buffer }> {
  const kinds = fc.sample(fc.constantFrom(...KINDS), { numRuns: count, seed })
  return kinds.map((kind, i) => {
    const s = shape[kind]()
    const [p] = fc.sample(payloads(s.base), { numRuns: 1, seed: seed + i + 1 })
    return { kind, topic: s.topic, ...p! }
  })
}

// ---------------------------------------------------------------- the test

interface Tally { accepted: number, refused: Map<string, number> }
const tally = (): Tally => ({ accepted: 0, refused: new Map() })
/** Per generator: how many were valid, how many refused. */
const byGen = new Map<string, { valid: number, refused: number }>()
const countGen = (gen: string, valid: boolean): void => {
  const g = byGen.get(gen) ?? { valid: 0, refused: 0 }
  if (valid) g.valid++; else g.refused++
  byGen.set(gen, g)
}
/** The reason in a word or two, for the summary. */
const category = (reason: string): string =>
  /exceeds|a packet of \d+ bytes/.test(reason) ? 'too large'
    : /not JSON/.test(reason) ? 'not JSON'
      : /not a doorbell topic/.test(reason) ? 'not our topic'
        : /\$SYS/.test(reason) ? '$SYS'
          : /may not|only the|does not send|not in the operator/.test(reason) ? 'not allowed (ACL)'
            : /does not match the topic/.test(reason) ? 'ids disagree with the topic'
              : 'schema'

/**
 * Sends `messages` as `who`; each must be refused with a log line (client, topic, reason) or be a
 * valid message on a topic the sender may use.
 */
async function fuzz (lan: Lan, who: string, pub: Publisher, messages: Array<{ kind: Kind, topic: string, gen: Gen, payload: Buffer }>, t: Tally, o: { sharedId?: boolean } = {}): Promise<void> {
  for (const [i, m] of messages.entries()) {
    const what = `${who} #${i} ${m.kind}/${m.gen} (${m.payload.length} bytes) on ${m.topic}`
    let line: string | undefined
    for (let attempt = 0; line === undefined; attempt++) {
      const from = lan.lines.length
      const { outcome, clientId } = await pub.send(m.topic, m.payload)
      if (outcome === 'accepted') break
      // A packet over the hub's size limit is dropped as it arrives, before its topic is read (hub/src/broker/connectionGuard.ts).
      const refusal = (): string | undefined => lan.lines.slice(from).find((l) => l.includes(`client=${clientId}`) && ((l.includes('refused a publish') && l.includes(`topic=${m.topic}`)) || l.includes('dropped an MQTT connection')))
      if (o.sharedId) {
        // The real doorbell may have taken its client id back just then (MQTT-3.1.4-2): send again.
        line = await eventually(`the hub to say why it refused ${what}`, refusal, 500).catch(() => undefined)
        if (line === undefined && attempt < 5 && lan.lines.slice(from).some((l) => l.includes(`client connected client=${clientId}`))) continue
      }
      line ??= await eventually(`the hub to say why it refused ${what}`, refusal, WAIT_MS)
    }
    if (line === undefined) {
      assert.ok(decodeTopicMessage(m.topic, m.payload).ok, `${what}: accepted, so it is a valid message`)
      t.accepted++
      countGen(m.gen, true)
      continue
    }
    const reason = /reason=([\s\S]*)$/.exec(line)?.[1] ?? ''
    assert.ok(reason.length > 0, `${what}: the refusal has a reason (${line})`)
    const c = category(reason)
    countGen(m.gen, false)
    if (process.env.FUZZ_VERBOSE) console.log(`${what}: ${reason.slice(0, 160)}`)
    t.refused.set(c, (t.refused.get(c) ?? 0) + 1)
  }
}

/** A real offer's SDP from werift, as the viewer makes it. */
async function realSdp (): Promise<string> {
  const pc = new RTCPeerConnection({ iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle', codecs: { video: [videoCodec('h264')], audio: [] } })
  pc.createDataChannel(CONTROL_CHANNEL, { ordered: true })
  pc.addTransceiver('video', { direction: 'recvonly' })
  const offer = await pc.createOffer()
  withoutDefaultStun(pc, [])
  await pc.setLocalDescription(offer)
  await withTimeout('ICE gathering', WAIT_MS, new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return }
    const sub = pc.iceGatheringStateChange.subscribe((state) => { if (state === 'complete') { sub.unSubscribe(); resolve() } })
  }))
  const sdp = pc.localDescription!.sdp
  await pc.close()
  return sdp
}

const viewerClientId = (p: PairedViewer) => (): string => `viewer-${p.viewerId}-${newId().slice(0, 6)}`

/** A viewer's part of an offer to the front door: its grant, and a proof by its key for a new session. */
async function offerParts (p: PairedViewer): Promise<{ viewerId: string, credential: string, proof: string, session: string }> {
  const session = newId('s')
  return { viewerId: p.viewerId, credential: p.credential, proof: await signViewClaim({ key: p.key, home: HOME, device: FRONT, session }), session }
}

test('fuzzed MQTT payloads and garbage SDP offers are refused with a reason; the hub and the doorbell keep working and the door stays locked', { timeout: 240_000 }, async (t) => {
  const started = performance.now()
  const lan = await startLan()
  const cleanup: Array<() => Promise<void>> = []
  t.after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {})
    await lan.stop()
  })
  const owner = await pairViewer(lan.hub, { name: 'Owner', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Fuzzer', role: 'resident' })
  const porch = await pairDevice({ url: await deviceInvite(lan.hub, PORCH), deviceId: PORCH, deviceName: 'Porch', log: memoryLogger([], 'porch') })
  const sdp = await realSdp()
  const list = await lan.hub.trust.revocationList()

  // The honest viewer, in the viewer app's own code: it must come through all of it.
  const honest = nodeViewer(lan.hub.mqttUrl, owner)
  cleanup.push(async () => { await honest.close() })
  await eventually('the viewer to reach the hub', () => honest.home.hub.connected)
  await eventually('the retained state of the doorbell', () => honest.home.doorbells.get(FRONT))

  // A steady tab of the fuzzing resident: hears the doorbell's answers and hangs each call up,
  // so fuzzed offers that happen to be usable do not keep sessions open.
  const inbox = mqtt.connect(lan.hub.mqttUrl, { clientId: viewerClientId(resident)(), username: resident.memberId, password: resident.token, clean: true, reconnectPeriod: 500 })
  cleanup.push(async () => { await withTimeout('the inbox to end', 2000, new Promise<void>((resolve) => { inbox.end(true, {}, () => resolve()) })).catch(() => {}) })
  const replies = new Map<string, SignalToViewer[]>()
  inbox.on('message', (topic, payload) => {
    const m = decode(SignalToViewer, payload, topic)
    if (!m.ok) return
    replies.set(m.value.sessionId, [...replies.get(m.value.sessionId) ?? [], m.value])
    if (m.value.type === 'answer') {
      inbox.publish(topics.session(HOME, FRONT, resident.viewerId, m.value.sessionId, 'to-device'), encode(SignalToDevice, { type: 'bye', sessionId: m.value.sessionId, reason: 'hang-up' }), { qos: 1 })
    }
  })
  await withTimeout('the inbox to sign in', WAIT_MS, new Promise<void>((resolve) => { inbox.once('connect', () => resolve()) }))
  await withTimeout('the inbox subscription', WAIT_MS, inbox.subscribeAsync(topics.viewerInbox(HOME, resident.viewerId), { qos: 1 }))

  const summary: Record<string, Tally> = {}

  // ------------------------------------------------------------ a resident, a second doorbell, the doorbell's own credentials
  const residentPub = new Publisher(lan.hub.mqttUrl, { clientId: viewerClientId(resident), username: resident.memberId, password: resident.token })
  cleanup.push(async () => { await residentPub.end() })
  await t.test(`${COUNTS.resident} fuzzed messages from a resident, to every kind of topic`, async () => {
    const shape = shapes({ device: FRONT, ...await offerParts(resident), sdp, list })
    // A resident's inspection is under its own tab ('' picks that source).
    shape.inspect = shapes({ device: '', ...await offerParts(resident), sdp, list }).inspect
    await fuzz(lan, 'resident', residentPub, plan(COUNTS.resident, SEED, shape), summary.resident = tally())
  })

  const porchPub = new Publisher(lan.hub.mqttUrl, { clientId: () => `device-${PORCH}`, username: porch.memberId, password: porch.token })
  cleanup.push(async () => { await porchPub.end() })
  await t.test(`${COUNTS.porch} fuzzed messages from another doorbell of the home, for itself and for the front door`, async () => {
    const own = shapes({ device: PORCH, ...await offerParts(owner), sdp, list })
    const front = shapes({ device: FRONT, ...await offerParts(owner), sdp, list })
    const half = Math.floor(COUNTS.porch / 2)
    await fuzz(lan, 'porch', porchPub, [...plan(half, SEED + 1000, own), ...plan(COUNTS.porch - half, SEED + 2000, front)], summary.porch = tally())
  })

  await t.test(`${COUNTS.ownCredentials} fuzzed messages with the front door's own credentials (it is pushed off the hub and comes back)`, async () => {
    const pub = new Publisher(lan.hub.mqttUrl, { clientId: () => `device-${FRONT}`, username: lan.device.pairing.memberId, password: lan.device.pairing.token })
    try {
      await fuzz(lan, 'front-door', pub, plan(COUNTS.ownCredentials, SEED + 3000, shapes({ device: FRONT, ...await offerParts(owner), sdp, list })), summary['front-door (own credentials)'] = tally(), { sharedId: true })
    } finally {
      await pub.end()
    }
    await lan.device.hubConnected(AbortSignal.timeout(WAIT_MS))
  })

  await t.test('over the WebSocket: over 64 KiB is refused by the hub, over 256 KiB by the socket itself', async () => {
    const ws = new Publisher(lan.hub.wsUrl, { clientId: viewerClientId(resident), username: resident.memberId, password: resident.token })
    cleanup.push(async () => { await ws.end() })
    const topic = topics.session(HOME, FRONT, resident.viewerId, 's-ws', 'to-device')
    const w = summary['resident over WebSocket'] = tally()
    for (const size of [70 * 1024, 200 * 1024]) await fuzz(lan, 'resident (ws)', ws, [{ kind: 'to-device', topic, gen: 'oversized', payload: Buffer.alloc(size, 0x20) }], w)
    for (const size of [300 * 1024, 1024 * 1024]) {
      const from = lan.lines.length
      const { outcome, clientId } = await ws.send(topic, Buffer.alloc(size, 0x20))
      assert.equal(outcome, 'closed', `${size} bytes over the WebSocket`)
      // Cut at the socket, before aedes parses a packet: the hub says who it dropped.
      const line = await eventually('a log line for the dropped WebSocket client', () => lan.lines.slice(from).find((l) => l.includes(clientId) && /client (error|disconnected)/.test(l)), WAIT_MS)
      const said = `over 256 KiB (hub: ${/error=(.*)$/.exec(line)?.[1] ?? 'client disconnected'})`
      w.refused.set(said, (w.refused.get(said) ?? 0) + 1)
    }
  })

  // ------------------------------------------------------------ garbage SDP with a valid grant
  await t.test(`${COUNTS.sdp} offers with a valid grant and garbage SDP: refused by the hub, or answered or refused by the doorbell`, async () => {
    const lines = sdp.split('\r\n')
    const firstM = lines.findIndex((l) => l.startsWith('m='))
    const sdps = fc.sample(fc.oneof(
      // Random text (the hub refuses most: an SDP starts with v=0 and has an m-line).
      fc.string({ unit: 'binary', maxLength: 400 }),
      // Random text shaped just enough to pass the hub's schema: it reaches the doorbell.
      fc.tuple(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 40 })).map(([a, b]) => `v=0\r\n${a}\r\nm=video ${b}\r\n${a.slice(0, 50)}`),
      // A real SDP cut short (after its first m-line, so that it reaches the doorbell).
      fc.integer({ min: firstM + 1, max: lines.length - 1 }).map((n) => lines.slice(0, n).join('\r\n') + '\r\n'),
      fc.integer({ min: 0, max: sdp.length }).map((n) => sdp.slice(0, n)),
      // A real SDP with one line garbled.
      fc.tuple(fc.integer({ min: 1, max: lines.length - 2 }), fc.string({ unit: 'binary', maxLength: 80 })).map(([i, s]) => lines.map((l, j) => j === i ? s : l).join('\r\n')),
      // Huge: under the 32 KiB an SDP may have (it reaches the doorbell) and over it.
      fc.integer({ min: 20_000, max: 48_000 }).map((n) => sdp + Array.from({ length: Math.ceil(n / 40) }, (_, i) => `a=x-fuzz-${i}:${'y'.repeat(28)}`).join('\r\n') + '\r\n')
    ), { numRuns: COUNTS.sdp, seed: SEED + 4000 })
    const s = summary['garbage SDP offers'] = tally()
    for (const [i, text] of sdps.entries()) {
      const sessionId = newId('s')
      const topic = topics.session(HOME, FRONT, resident.viewerId, sessionId, 'to-device')
      const offer = JSON.stringify({ type: 'offer', sessionId, viewerId: resident.viewerId, viewerName: 'Fuzzer', sdp: text, credential: resident.credential, proof: await signViewClaim({ key: resident.key, home: HOME, device: FRONT, session: sessionId }) })
      const from = lan.lines.length
      const { outcome, clientId } = await residentPub.send(topic, Buffer.from(offer))
      const what = `garbage SDP #${i} (${text.length} chars)`
      if (outcome === 'closed') {
        const line = await eventually(`the hub to say why it refused ${what}`, () => lan.lines.slice(from).find((l) => l.includes('refused a publish') && l.includes(`client=${clientId}`) && l.includes(`topic=${topic}`)), WAIT_MS)
        assert.match(line, /reason=.*sdp|reason=.*exceeds/, `${what}: refused for its SDP`)
        s.refused.set('hub: sdp', (s.refused.get('hub: sdp') ?? 0) + 1)
        continue
      }
      // It reached the doorbell: an answer (hung up at once by the inbox), or a bye that says why not.
      const reply = await eventually(`the doorbell's reply to ${what}`, () => replies.get(sessionId)?.[0], 25_000)
      if (reply.type === 'answer') {
        s.accepted++
        await eventually(`the doorbell to end the answered ${what}`, () => lan.lines.slice(from).some((l) => l.includes('viewer left') && l.includes(`session=${sessionId}`)), WAIT_MS)
      } else {
        assert.equal(reply.reason, 'failed', `${what}: ${JSON.stringify(reply)}`)
        const line = await eventually(`the doorbell to log why it could not answer ${what}`, () => lan.lines.slice(from).find((l) => l.includes(`session ${sessionId}`) && l.includes('could not answer the offer')), WAIT_MS)
        assert.match(line, /error=\S/)
        s.refused.set('doorbell: could not answer', (s.refused.get('doorbell: could not answer') ?? 0) + 1)
      }
    }
  })

  // ------------------------------------------------------------ still standing
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'), `the relay never opened (${lan.printed.join(', ')})`)
  assert.equal(lan.lock.open, false)
  assert.equal(lan.device.lock.state().status, 'locked')
  await eventually('the doorbell back on the hub', () => lan.device.link?.client.connected, 10_000)
  await eventually('the doorbell to be idle', () => lan.device.call.getSnapshot().matches('idle'), 25_000)
  await eventually('the honest viewer on the hub', () => honest.home.hub.connected, 10_000)
  const doorbell = honest.home.doorbell(FRONT)
  const previousRing = doorbell.getSnapshot().context.ring?.ringId ?? null
  lan.button.press()
  await waitFor(doorbell, (s) => s.matches('incoming') && s.context.ring?.ringId !== previousRing, { timeout: WAIT_MS })
  const rtp = honest.rtp.length
  honest.home.answer(FRONT)
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  await eventually('video from the doorbell', () => honest.rtp.length >= rtp + 20, 10_000)

  // One field changed on purpose: a bye from the resident (on its own viewer level, so the hub lets
  // it through) naming the owner's session, whose id every member sees in the doorbell's state.
  const ownerSession = await eventually('the owner\'s session in the doorbell\'s state', () => lan.device.state().participants.find((p) => p.viewerId === owner.viewerId)?.sessionId, WAIT_MS)
  const byeFrom = lan.lines.length
  const spoof = await residentPub.send(topics.session(HOME, FRONT, resident.viewerId, ownerSession, 'to-device'), encode(SignalToDevice, { type: 'bye', sessionId: ownerSession, reason: 'hang-up' }))
  assert.equal(spoof.outcome, 'accepted', 'a well-formed bye on the resident\'s own viewer level passes the hub')
  await eventually('the doorbell to ignore it', () => lan.lines.slice(byeFrom).some((l) => l.includes('ignored a bye from another viewer') && l.includes(`session=${ownerSession}`)), WAIT_MS)
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.ok(doorbell.getSnapshot().matches({ active: 'connected' }), 'the owner\'s call goes on')
  assert.ok(lan.device.state().participants.some((p) => p.sessionId === ownerSession), 'the doorbell still has the owner\'s session')

  honest.home.hangUp(FRONT)
  await eventually('the doorbell back to idle', () => lan.device.call.getSnapshot().matches('idle'), WAIT_MS)
  assert.ok(!lan.printed.includes('DOOR UNLOCKED'))

  const total = Object.values(summary).reduce((n, x) => n + x.accepted + [...x.refused.values()].reduce((a, b) => a + b, 0), 0)
  const ms = Math.round(performance.now() - started)
  console.log(`fuzz (seed ${SEED}): ${total} messages in ${ms} ms; the resident signed in again ${residentPub.reconnects} times, the porch doorbell ${porchPub.reconnects}\n` +
    Object.entries(summary).map(([who, x]) => `  ${who}: ${x.accepted} valid, refused: ${[...x.refused].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`).join('\n') +
    `\n  by generator (MQTT fuzz): ${[...byGen].map(([g, x]) => `${g} ${x.valid} valid / ${x.refused} refused`).join(', ')}`)
})
