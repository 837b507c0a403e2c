import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { KVS_PAYLOAD_MAX, decodeKvsToViewer, memoryLogger, toKvsPayload, type SignalToDevice } from '@doorbell/core'
import { KvsMaster, type ChannelInfo, type KvsControlPlane, type SignalingClientConfig, type SignalingClientLike, type TimedIceServer } from '../src/paths/cloud/kvsMaster'
import { until } from './cloudFixtures'

/**
 * KvsMaster's message handling and connection management, driven through its two seams: a fake
 * SignalingClient (an EventEmitter like the SDK's) and a fake control plane.
 */

const CHANNEL: ChannelInfo = {
  channelARN: 'arn:aws:kinesisvideo:eu-west-1:123456789012:channel/doorbell-1/1700000000000',
  wssEndpoint: 'wss://v-1234.kinesisvideo.eu-west-1.amazonaws.com',
  httpsEndpoint: 'https://r-1234.kinesisvideo.eu-west-1.amazonaws.com'
}
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'
const CREDENTIAL = `payload.${'A'.repeat(86)}`

class FakeSignalingClient extends EventEmitter implements SignalingClientLike {
  opened = false
  closed = false
  sent: Array<{ payload: unknown, to: string | undefined }> = []
  constructor (readonly config: SignalingClientConfig, private readonly behaviour: 'open' | 'fail' | 'error-no-close' | 'hang') { super() }
  open (): void {
    setImmediate(() => {
      if (this.closed) return
      if (this.behaviour === 'open') { this.opened = true; this.emit('open') }
      if (this.behaviour === 'fail') { this.emit('error', { type: 'error' }); this.emit('close') }
      if (this.behaviour === 'error-no-close') this.emit('error', new Error('could not sign the URL'))
    })
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.opened = false
    setImmediate(() => this.emit('close'))
  }

  sendSdpAnswer (payload: unknown, to?: string): void {
    if (!this.opened) throw new Error('Could not send message because the connection to the signaling service is not open.')
    this.sent.push({ payload, to })
  }

  /** What the SDK does with a message from a viewer: payload after base64+JSON decoding. */
  offer (payload: unknown, sender: string | undefined): void { this.emit('sdpOffer', payload, sender) }
  /** The server cut the connection. */
  drop (): void { this.opened = false; this.emit('close') }
}

class FakeControlPlane implements KvsControlPlane {
  channelCalls = 0
  iceCalls = 0
  clockOffsetMs = 1234
  failChannel = 0
  ttlSeconds = 300
  destroyed = false
  async channel (): Promise<ChannelInfo> {
    this.channelCalls++
    if (this.failChannel > 0) { this.failChannel--; throw new Error('ResourceNotFoundException') }
    return CHANNEL
  }

  async iceServers (): Promise<TimedIceServer[]> {
    this.iceCalls++
    return [{ server: { urls: [`turn:1.2.3.4:443?transport=udp&n=${this.iceCalls}`], username: `u${this.iceCalls}`, credential: 'p' }, ttlSeconds: this.ttlSeconds }]
  }

  destroy (): void { this.destroyed = true }
}

interface Rig {
  master: KvsMaster
  clients: FakeSignalingClient[]
  control: FakeControlPlane
  lines: string[]
  signals: Array<[string, SignalToDevice]>
  staticCalls: () => number
  /** What each new client will do when opened (default 'open'). */
  next: Array<'open' | 'fail' | 'error-no-close' | 'hang'>
  current: () => FakeSignalingClient
  /** The wait of each backoff the connection's machine entered, in order (read from its inspection, not the clock). */
  waits: number[]
}

async function rig (t: { after: (fn: () => Promise<void>) => void }, o: { renewAfterSeconds?: number, idleRenewSeconds?: number, kvsEndpoint?: string, openTimeoutMs?: number, iceRefreshMarginSeconds?: number, onCreate?: (c: FakeSignalingClient, all: FakeSignalingClient[]) => void } = {}): Promise<Rig> {
  const clients: FakeSignalingClient[] = []
  const control = new FakeControlPlane()
  const lines: string[] = []
  const signals: Array<[string, SignalToDevice]> = []
  const next: Rig['next'] = []
  let statics = 0
  const waits: number[] = []
  let inBackoff = false
  const master = new KvsMaster({
    inspect: (e) => {
      if (e.type !== '@xstate.snapshot' || (e.actorRef as { id?: string }).id !== 'kvsMaster') return
      const snap = e.snapshot as unknown as { value: unknown, context: { waitMs: number } }
      const now = snap.value === 'backoff'
      if (now && !inBackoff) waits.push(snap.context.waitMs)
      inBackoff = now
    },
    region: 'eu-west-1',
    channelName: 'doorbell-1',
    kvsEndpoint: o.kvsEndpoint,
    renewAfterSeconds: o.renewAfterSeconds ?? 3300,
    ...(o.idleRenewSeconds !== undefined ? { idleRenewSeconds: o.idleRenewSeconds } : {}),
    credentials: {
      provider: async () => ({ accessKeyId: 'ASIAFAKE00000000', secretAccessKey: 'secret', sessionToken: 'token', expiration: new Date(Date.now() + 3_600_000) }),
      getStatic: async () => { statics++; return { accessKeyId: `ASIAFAKE0000000${statics}`, secretAccessKey: 'secret', sessionToken: `token-${statics}` } }
    },
    log: memoryLogger(lines, 'kvs'),
    backoff: { initialMs: 50, maxMs: 400 },
    ...(o.openTimeoutMs !== undefined ? { openTimeoutMs: o.openTimeoutMs } : {}),
    ...(o.iceRefreshMarginSeconds !== undefined ? { iceRefreshMarginSeconds: o.iceRefreshMarginSeconds } : {}),
    controlPlane: control,
    createSignalingClient: (config) => {
      const c = new FakeSignalingClient(config, next.shift() ?? 'open')
      clients.push(c)
      o.onCreate?.(c, clients)
      return c
    }
  })
  master.onSignal((viewerId, message) => { signals.push([viewerId, message]) })
  t.after(async () => { await master.stop() })
  await master.start()
  await until('the signaling connection', () => (master.connected ? true : undefined))
  return { master, clients, control, lines, signals, staticCalls: () => statics, next, current: () => clients.filter((c) => c.opened).at(-1)!, waits }
}

const offer = (sessionId: string, viewerId: string): string => toKvsPayload({ type: 'offer', sessionId, viewerId, viewerName: 'Alice', sdp: SDP, credential: CREDENTIAL, proof: CREDENTIAL })
const bye = (sessionId: string): string => toKvsPayload({ type: 'bye', sessionId, reason: 'hang-up' })
const warned = (r: Rig, text: string): boolean => r.lines.some((l) => l.startsWith('warn') && l.includes(text))

describe('KvsMaster: messages', () => {
  test('connects as MASTER with the channel ARN, the WSS endpoint, static credentials and the SDK\'s clock offset', async (t) => {
    const r = await rig(t)
    const c = r.clients[0]!
    assert.equal(c.config.role, 'MASTER')
    assert.equal(c.config.region, 'eu-west-1')
    assert.equal(c.config.channelARN, CHANNEL.channelARN)
    assert.equal(c.config.channelEndpoint, CHANNEL.wssEndpoint)
    assert.equal(c.config.clientId, undefined)
    assert.deepEqual(c.config.credentials, { accessKeyId: 'ASIAFAKE00000001', secretAccessKey: 'secret', sessionToken: 'token-1' })
    assert.equal(c.config.systemClockOffset, 1234)
    assert.ok(r.lines.some((l) => l.includes('connected to KVS signaling')), r.lines.join('\n'))
  })

  test('an offer reaches the listener with the KVS sender as viewer id', async (t) => {
    const r = await rig(t)
    r.current().offer(offer('s1', 'viewer-a'), 'viewer-a')
    assert.equal(r.signals.length, 1)
    assert.equal(r.signals[0]![0], 'viewer-a')
    assert.equal(r.signals[0]![1].type, 'offer')
    assert.equal(r.signals[0]![1].sessionId, 's1')
  })

  test('an offer whose viewer id is not its KVS sender is dropped with a warning', async (t) => {
    const r = await rig(t)
    r.current().offer(offer('s1', 'viewer-a'), 'viewer-b')
    assert.equal(r.signals.length, 0)
    assert.ok(warned(r, 'viewer id is not its KVS sender'))
  })

  test('bad payloads are dropped with a warning, never thrown', async (t) => {
    const r = await rig(t)
    const c = r.current()
    const bad: Array<[unknown, string | undefined]> = [
      [{ type: 'offer', sdp: SDP }, 'viewer-a'], // a stock KVS viewer's bare session description
      ['not json', 'viewer-a'],
      [JSON.stringify({ type: 'offer', sessionId: 's1' }), 'viewer-a'],
      [JSON.stringify({ type: 'answer', sessionId: 's1', sdp: SDP }), 'viewer-a'],
      [JSON.stringify({ type: 'bye', sessionId: 'has space', reason: 'hang-up' }), 'viewer-a'],
      [42, 'viewer-a'],
      [null, 'viewer-a'],
      [offer('s1', 'viewer-a'), undefined],
      [offer('s1', 'viewer-a'), '']
    ]
    for (const [payload, sender] of bad) assert.doesNotThrow(() => { c.offer(payload, sender) })
    assert.equal(r.signals.length, 0)
    assert.equal(r.lines.filter((l) => l.startsWith('warn')).length, bad.length, r.lines.join('\n'))
    assert.ok(warned(r, 'not a doorbell message'))
    assert.ok(warned(r, 'no sender id'))
    // Still working afterwards.
    c.offer(offer('s2', 'viewer-a'), 'viewer-a')
    assert.equal(r.signals.length, 1)
  })

  test('a bye is taken only from the viewer that sent the session\'s offer, and once', async (t) => {
    const r = await rig(t)
    const c = r.current()
    c.offer(offer('s1', 'viewer-a'), 'viewer-a')
    c.offer(bye('s1'), 'viewer-b')
    assert.equal(r.signals.length, 1)
    assert.ok(warned(r, 'did not offer the session'))
    c.offer(bye('s-unknown'), 'viewer-a')
    assert.equal(r.signals.length, 1)
    assert.ok(warned(r, 'not offered over KVS'))
    c.offer(bye('s1'), 'viewer-a')
    assert.equal(r.signals.length, 2)
    assert.deepEqual(r.signals[1], ['viewer-a', { type: 'bye', sessionId: 's1', reason: 'hang-up' }])
    // Forgotten once ended: a second bye is not passed on.
    c.offer(bye('s1'), 'viewer-a')
    assert.equal(r.signals.length, 2)
  })

  test('an offer for another viewer\'s open session is dropped; the owner may offer again', async (t) => {
    const r = await rig(t)
    const c = r.current()
    c.offer(offer('s1', 'viewer-a'), 'viewer-a')
    c.offer(offer('s1', 'viewer-b'), 'viewer-b')
    assert.equal(r.signals.length, 1)
    assert.ok(warned(r, 'another viewer\'s session'))
    c.offer(offer('s1', 'viewer-a'), 'viewer-a')
    assert.equal(r.signals.length, 2)
  })

  test('the device\'s own bye forgets the session: a later bye from the viewer is dropped', async (t) => {
    const r = await rig(t)
    const c = r.current()
    c.offer(offer('s1', 'viewer-a'), 'viewer-a')
    r.master.sendToViewer('viewer-a', 's1', { type: 'bye', sessionId: 's1', reason: 'device-ended' })
    c.offer(bye('s1'), 'viewer-a')
    assert.equal(r.signals.length, 1)
  })

  test('open sessions are bounded: the oldest is forgotten', async (t) => {
    const r = await rig(t)
    const c = r.current()
    for (let i = 0; i < 300; i++) c.offer(offer(`s${i}`, 'viewer-a'), 'viewer-a')
    c.offer(bye('s0'), 'viewer-a')
    c.offer(bye('s299'), 'viewer-a')
    assert.equal(r.signals.length, 301)
    assert.equal(r.signals.at(-1)![1].sessionId, 's299')
  })

  test('a listener that throws is logged; the master carries on', async (t) => {
    const r = await rig(t)
    r.master.onSignal(() => { throw new Error('boom') })
    assert.doesNotThrow(() => { r.current().offer(offer('s1', 'viewer-a'), 'viewer-a') })
    assert.ok(r.lines.some((l) => l.startsWith('error') && l.includes('boom')))
  })

  test('an answer rides SDP_ANSWER to the viewer as an ASCII JSON payload the viewer decodes', async (t) => {
    const r = await rig(t)
    const sdp = `${SDP}a=x-name:Zoë ☃\r\n`
    r.master.sendToViewer('viewer-a', 's1', { type: 'answer', sessionId: 's1', sdp })
    const sent = r.current().sent
    assert.equal(sent.length, 1)
    assert.equal(sent[0]!.to, 'viewer-a')
    assert.equal(typeof sent[0]!.payload, 'string')
    assert.match(sent[0]!.payload as string, /^[\x00-\x7f]*$/)
    const d = decodeKvsToViewer(sent[0]!.payload)
    assert.ok(d.ok)
    assert.deepEqual(d.message, { type: 'answer', sessionId: 's1', sdp })
  })

  test('an answer over KVS\'s 10 KB limit is dropped with an error', async (t) => {
    const r = await rig(t)
    const sdp = SDP + `a=x-pad:${'x'.repeat(KVS_PAYLOAD_MAX)}\r\n`
    assert.doesNotThrow(() => { r.master.sendToViewer('viewer-a', 's1', { type: 'answer', sessionId: 's1', sdp }) })
    assert.equal(r.current().sent.length, 0)
    assert.ok(r.lines.some((l) => l.startsWith('error') && l.includes('too large')), r.lines.join('\n'))
    // Just under the limit goes.
    const room = KVS_PAYLOAD_MAX / 4 * 3 - JSON.stringify(toKvsPayload({ type: 'answer', sessionId: 's1', sdp: SDP })).length - 20
    r.master.sendToViewer('viewer-a', 's1', { type: 'answer', sessionId: 's1', sdp: SDP + `a=x-pad:${'x'.repeat(room)}\r\n` })
    assert.equal(r.current().sent.length, 1)
  })

  test('sending while not connected drops the message without throwing', async (t) => {
    const r = await rig(t)
    r.next.push('hang', 'hang', 'hang')
    r.current().drop()
    assert.equal(r.master.connected, false)
    assert.doesNotThrow(() => { r.master.sendToViewer('viewer-a', 's1', { type: 'bye', sessionId: 's1', reason: 'device-ended' }) })
    assert.ok(r.lines.some((l) => l.includes('not connected: dropped')), r.lines.join('\n'))
  })
})

describe('KvsMaster: connection', () => {
  test('renews: a new client with fresh credentials opens, then the old one closes', async (t) => {
    const r = await rig(t, { renewAfterSeconds: 0.3 })
    const first = r.clients[0]!
    await until('the renewal', () => (r.clients.length >= 2 && r.clients[1]!.opened ? true : undefined), 3000)
    const second = r.clients[1]!
    assert.equal(first.closed, true)
    assert.equal(r.master.connected, true)
    assert.equal(second.config.credentials?.sessionToken, 'token-2')
    r.master.sendToViewer('viewer-a', 's1', { type: 'answer', sessionId: 's1', sdp: SDP })
    assert.equal(second.sent.length, 1)
    assert.equal(first.sent.length, 0)
    assert.ok(r.lines.some((l) => l.includes('renewed the KVS signaling connection')), r.lines.join('\n'))
    // The old one's close is ours: no reconnect for it, no "lost".
    await new Promise((res) => setTimeout(res, 100))
    assert.ok(!r.lines.some((l) => l.includes('lost the KVS signaling connection')), r.lines.join('\n'))
  })

  test('renews after idleRenewSeconds without sending; each message sent pushes that back', async (t) => {
    const r = await rig(t, { idleRenewSeconds: 0.3 })
    for (let i = 0; i < 5; i++) {
      await new Promise((res) => setTimeout(res, 100))
      r.master.sendToViewer('viewer-a', 's1', { type: 'answer', sessionId: 's1', sdp: SDP })
    }
    assert.equal(r.clients.length, 1)
    await until('the idle renewal', () => (r.clients.length >= 2 && r.clients[1]!.opened ? true : undefined), 3000)
    assert.equal(r.clients[0]!.closed, true)
  })

  test('when KVS closes the old connection before the new one opens, it ends up with one connection', async (t) => {
    const r = await rig(t, {
      renewAfterSeconds: 0.2,
      // The newest master connection wins: the service drops the old one as the new one connects.
      onCreate: (c, all) => {
        if (all.length !== 2) return
        const open = c.open.bind(c)
        c.open = () => { all[0]!.drop(); open() }
      }
    })
    const ups: number[] = []
    const downs: number[] = []
    r.master.on('up', () => ups.push(1))
    r.master.on('down', () => downs.push(1))
    await until('the renewal', () => (r.clients.length >= 2 && r.clients[1]!.opened ? true : undefined), 3000)
    await new Promise((res) => setTimeout(res, 150))
    assert.equal(r.clients.length, 2)
    assert.equal(r.master.connected, true)
    assert.deepEqual([ups.length, downs.length], [1, 1])
    assert.ok(!warned(r, 'lost the KVS signaling connection'), r.lines.join('\n'))
  })

  test('a session offered on the old connection can be ended from the new one', async (t) => {
    const r = await rig(t, { renewAfterSeconds: 0.2 })
    r.current().offer(offer('s1', 'viewer-a'), 'viewer-a')
    await until('the renewal', () => (r.clients.length >= 2 && r.clients[1]!.opened ? true : undefined), 3000)
    r.clients[1]!.offer(bye('s1'), 'viewer-a')
    assert.equal(r.signals.length, 2)
  })

  test('after the server drops it, reconnects with backoff; a failed open re-runs the control plane', async (t) => {
    const r = await rig(t)
    assert.equal(r.control.channelCalls, 1)
    const downs: number[] = []
    r.master.on('down', () => downs.push(Date.now()))
    const ups: number[] = []
    r.master.on('up', () => ups.push(Date.now()))
    r.next.push('fail', 'fail', 'open')
    const t0 = Date.now()
    r.clients[0]!.drop()
    assert.equal(downs.length, 1)
    await until('connected again', () => (r.master.connected ? true : undefined), 3000)
    const took = Date.now() - t0
    // 50 + 100 + 200 ms of backoff (a lower bound: a loaded machine only makes it longer).
    assert.ok(took >= 340, `reconnected after ${took} ms`)
    assert.deepEqual(r.waits, [50, 100, 200], 'the backoff doubled at each failure')
    assert.equal(r.clients.length, 4)
    assert.equal(ups.length, 1)
    // Dropped by the server: the endpoint is reused; each failed open asks the control plane again.
    assert.equal(r.control.channelCalls, 3)
    // Backoff is reset once open.
    r.next.push('open')
    r.current().drop()
    await until('connected again', () => (r.master.connected ? true : undefined), 3000)
    // The machine's own wait, not a wall-clock window (which a loaded machine stretches).
    assert.deepEqual(r.waits, [50, 100, 200, 50], 'the first wait again, not the next doubling')
  })

  test('control-plane failures are retried with backoff', async (t) => {
    const r = await rig(t)
    r.control.failChannel = 2
    r.next.push('fail')
    r.clients[0]!.drop()
    await until('connected again', () => (r.master.connected ? true : undefined), 3000)
    assert.ok(warned(r, 'could not prepare the KVS signaling connection'))
    assert.ok(r.control.channelCalls >= 4)
  })

  test('an error with no close (the SDK could not sign the URL) is retried too', async (t) => {
    const r = await rig(t)
    r.next.push('error-no-close', 'open')
    r.clients[0]!.drop()
    await until('connected again', () => (r.master.connected ? true : undefined), 3000)
    assert.equal(r.clients.length, 3)
    assert.equal(r.clients[1]!.closed, true)
  })

  test('a connection that never opens times out and is retried', async (t) => {
    const r = await rig(t, { openTimeoutMs: 100 })
    r.next.push('hang', 'open')
    r.clients[0]!.drop()
    await until('connected again', () => (r.master.connected ? true : undefined), 3000)
    assert.ok(warned(r, 'not open after 100 ms'))
  })

  test('while the cloud stays away, only the first failures and then every 20th are logged', async (t) => {
    const control = new FakeControlPlane()
    control.failChannel = 45
    const lines: string[] = []
    const master = new KvsMaster({
      region: 'eu-west-1',
      channelName: 'doorbell-1',
      credentials: { provider: async () => { throw new Error('unused') }, getStatic: async () => ({ accessKeyId: 'A', secretAccessKey: 'B', sessionToken: 'C' }) },
      log: memoryLogger(lines, 'kvs'),
      backoff: { initialMs: 1, maxMs: 2 },
      controlPlane: control,
      createSignalingClient: (config) => new FakeSignalingClient(config, 'open')
    })
    t.after(async () => { await master.stop() })
    await master.start()
    await until('connected at last', () => (master.connected ? true : undefined), 5000)
    assert.equal(lines.filter((l) => l.includes('could not prepare')).length, 5, lines.join('\n'))
    assert.equal(lines.filter((l) => l.includes('reconnecting to KVS signaling')).length, 5)
  })

  test('stop() closes the connection and clears every timer (no client after it)', async (t) => {
    const r = await rig(t, { renewAfterSeconds: 0.2 })
    await r.master.stop()
    assert.equal(r.clients[0]!.closed, true)
    assert.equal(r.master.connected, false)
    assert.equal(r.control.destroyed, true)
    const n = r.clients.length
    await new Promise((res) => setTimeout(res, 400))
    assert.equal(r.clients.length, n)
  })

  test('stop() during backoff cancels the reconnect', async (t) => {
    const r = await rig(t)
    r.next.push('fail')
    r.clients[0]!.drop()
    await new Promise((res) => setTimeout(res, 10))
    await r.master.stop()
    const n = r.clients.length
    await new Promise((res) => setTimeout(res, 300))
    assert.equal(r.clients.length, n)
  })
})

describe('KvsMaster: ICE servers', () => {
  test('KVS\'s STUN for the region then the TURN servers, in werift\'s shape; synchronous', async (t) => {
    const r = await rig(t)
    assert.deepEqual(r.master.iceServers(), [
      { urls: 'stun:stun.kinesisvideo.eu-west-1.amazonaws.com:443' },
      { urls: ['turn:1.2.3.4:443?transport=udp&n=1'], username: 'u1', credential: 'p' }
    ])
  })

  test('no STUN with a control-plane override (stand-ins)', async (t) => {
    const r = await rig(t, { kvsEndpoint: 'https://127.0.0.1:4443' })
    assert.deepEqual(r.master.iceServers().map((s) => s.username), ['u1'])
  })

  test('fetched again before their Ttl runs out; the last known meanwhile', async (t) => {
    const clients: FakeSignalingClient[] = []
    const control = new FakeControlPlane()
    control.ttlSeconds = 2
    const master = new KvsMaster({
      region: 'eu-west-1',
      channelName: 'doorbell-1',
      kvsEndpoint: 'https://127.0.0.1:4443',
      credentials: { provider: async () => { throw new Error('unused') }, getStatic: async () => ({ accessKeyId: 'A', secretAccessKey: 'B', sessionToken: 'C' }) },
      log: memoryLogger([], 'kvs'),
      iceRefreshMarginSeconds: 1,
      controlPlane: control,
      createSignalingClient: (config) => { const c = new FakeSignalingClient(config, 'open'); clients.push(c); return c }
    })
    t.after(async () => { await master.stop() })
    assert.deepEqual(master.iceServers(), [])
    await master.start()
    await until('connected', () => (master.connected ? true : undefined))
    assert.equal(master.iceServers()[0]!.username, 'u1')
    control.ttlSeconds = 300
    await until('a refresh', () => (control.iceCalls >= 2 ? true : undefined), 3000)
    assert.equal(master.iceServers()[0]!.username, 'u2')
    // Not at each reconnect while still fresh.
    const calls = control.iceCalls
    clients.at(-1)!.drop()
    await until('connected again', () => (master.connected ? true : undefined), 3000)
    assert.equal(control.iceCalls, calls)
  })
})
