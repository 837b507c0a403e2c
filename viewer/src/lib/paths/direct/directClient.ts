import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import {
  DIRECT_SILENCE_MS, EventFrame, HELLO_SESSION, Listeners, MAX_EVENT_FRAME_BYTES, MAX_FRAME_BYTES, PROTOCOLS, SignalToDevice, SignalToViewer, ViewerHello,
  describeError, readFrame, signViewClaim, writeFrame,
  type CommandResult, type DirectReach, type KeptRing, type OutOfCallCommand, type Presence, type SigningKey, type FrameIo, type ViewerTransport, type ViewerTransportEvents
} from '@doorbell/core'
import { readKeptRings } from './keptRead'
import { DirectCommandError, sendDirectCommand } from './directCommand'
import { DirectDismissError, dismissRingDirect } from './dismissRing'
import { RepliesReadError, readRepliesDirect } from './repliesRead'

export interface DirectClientOptions {
  homeId: string
  viewerId: string
  viewerName: string
  /** This viewer's grant, signed by the home: the device talks to members only. */
  credential: string
  /** The grant's key: each hello carries a proof signed by it. */
  key: SigningKey
  /** The devices to dial, with the addresses learned while the hub was up. */
  devices: () => Array<{ deviceId: string, reach: DirectReach }>
  log?: (level: 'info' | 'warn' | 'error', message: string) => void
  /** A libp2p node that can dial webrtc-direct (default: one made for this client). */
  createNode?: () => Promise<Libp2p>
  dialTimeoutMs?: number
  /** Silence after which a device that has been sending heartbeats counts as gone (default DIRECT_SILENCE_MS). */
  silenceMs?: number
}

interface Device { deviceId: string, stream: Stream, connection: Connection }
interface Session { deviceId: string, io?: FrameIo, stream?: Stream, chain: Promise<void> }

const loadLibp2p = async () => await Promise.all([
  import('libp2p'), import('@libp2p/webrtc'), import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux')
])

/**
 * Fetches the direct path's code while the hub is up: once the hub is gone, so is the server
 * that would have sent it (the service worker keeps what was fetched for later page loads).
 */
export async function preloadDirect (): Promise<void> {
  await loadLibp2p()
  performance.mark(DIRECT_MARKS.ready)
}

/** User Timing marks of the direct path (tests and DevTools read them). */
export const DIRECT_MARKS = {
  ready: 'doorbell:direct-ready',
  dial: 'doorbell:direct-dial',
  connected: 'doorbell:direct-connected'
} as const

/**
 * A libp2p node for a viewer: webrtc-direct only (what a browser can dial), noise, yamux. Loaded
 * on first use, so the app's first paint does not carry libp2p. Browsers refuse private addresses
 * unless the gater allows them, and on a LAN every address is private (FIELD-NOTES).
 */
export async function createDialer (): Promise<Libp2p> {
  const [{ createLibp2p }, { webRTCDirect }, { noise }, { yamux }] = await loadLibp2p()
  return await createLibp2p({
    transports: [webRTCDirect()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: async () => false }
  })
}

/**
 * The viewer's half of the direct path: with the hub gone, it dials each known doorbell over
 * webrtc-direct, hears its events on the events stream and runs each call's signaling on a
 * signal stream of the same connection. The media and the open-door command are then exactly
 * as on the LAN path.
 */
export class DirectClient implements ViewerTransport {
  readonly path = 'direct' as const
  private node: Libp2p | null = null
  private readonly devices = new Map<string, Device>()
  private readonly listeners = new Listeners<ViewerTransportEvents>()
  private readonly sessionListeners = new Map<string, (message: SignalToViewer) => void>()
  private readonly sessions = new Map<string, Session>()
  private closed = false
  private readonly log: NonNullable<DirectClientOptions['log']>

  constructor (private readonly o: DirectClientOptions) {
    this.log = o.log ?? ((level, message) => { console[level](`[direct] ${message}`) })
  }

  get connected (): boolean { return this.devices.size > 0 }

  on<K extends keyof ViewerTransportEvents>(event: K, listener: ViewerTransportEvents[K]): () => void {
    return this.listeners.on(event, listener)
  }

  onSession (sessionId: string, listener: (message: SignalToViewer) => void): () => void {
    this.sessionListeners.set(sessionId, listener)
    return () => { this.sessionListeners.delete(sessionId) }
  }

  /** Dials every known doorbell at once; resolves when at least one answers, rejects if none does. */
  async start (): Promise<void> {
    const known = this.o.devices()
    if (known.length === 0) throw new Error('no doorbell addresses known yet (they are learned while the hub is up)')
    performance.mark(DIRECT_MARKS.dial)
    this.node = await (this.o.createNode ?? createDialer)()
    const results = await Promise.allSettled(known.map(async (d) => { await this.dial(d.deviceId, d.reach) }))
    if (this.devices.size === 0) {
      const reasons = results.map((r) => r.status === 'rejected' ? describeError(r.reason) : '').filter(Boolean)
      throw new Error(`no doorbell answered directly (${reasons.join('; ')})`)
    }
  }

  private async dial (deviceId: string, reach: DirectReach): Promise<void> {
    const node = this.node
    if (!node || this.closed) return
    const connection = await node.dial(reach.addrs.map((a) => multiaddr(a)), { signal: AbortSignal.timeout(this.o.dialTimeoutMs ?? 5000) })
    if (connection.remotePeer.toString() !== reach.peerId) {
      await connection.close()
      throw new Error(`${deviceId} answered with another peer id`)
    }
    const stream = await connection.newStream(PROTOCOLS.events)
    // Room for the ring's picture; every other frame is far smaller.
    const io = lpStream(stream, { maxDataLength: MAX_EVENT_FRAME_BYTES })
    const proof = await signViewClaim({ key: this.o.key, home: this.o.homeId, device: deviceId, session: HELLO_SESSION })
    await writeFrame(io, ViewerHello, { homeId: this.o.homeId, viewerId: this.o.viewerId, viewerName: this.o.viewerName, credential: this.o.credential, proof })
    const wasUp = this.connected
    this.devices.set(deviceId, { deviceId, stream, connection })
    this.log('info', `connected directly to ${deviceId}`)
    if (!wasUp) {
      performance.mark(DIRECT_MARKS.connected)
      this.listeners.emit('link', true)
    }
    void this.readEvents(deviceId, io)
  }

  private async readEvents (deviceId: string, io: FrameIo): Promise<void> {
    // A doorbell that dies (SIGKILL, power) closes nothing: its silence is the sign. The watch starts
    // with its first repeated presence, so a doorbell that sends none (an older one) is never cut off.
    let presences = 0
    let last: Presence | null = null
    let silence: ReturnType<typeof setTimeout> | undefined
    const silenceMs = this.o.silenceMs ?? DIRECT_SILENCE_MS
    const heard = (): void => {
      clearTimeout(silence)
      if (presences < 2) return
      silence = setTimeout(() => {
        this.log('warn', `no word from ${deviceId} for ${silenceMs} ms: it is gone`)
        this.devices.get(deviceId)?.stream.abort(new Error(`${deviceId} went silent`))
      }, silenceMs)
    }
    try {
      while (!this.closed) {
        const frame = await readFrame(io, EventFrame, `direct events from ${deviceId}`, undefined, MAX_EVENT_FRAME_BYTES)
        heard()
        if (!frame.ok) { this.log('warn', `rejected a message: ${frame.error.message}`); continue }
        const f = frame.value
        if (f.kind === 'refused') { this.log('warn', `${deviceId} refused us: ${f.message}`); break }
        // A device speaks only for itself.
        if (f.payload.deviceId !== deviceId) { this.log('warn', `rejected a message: ${deviceId} spoke for ${f.payload.deviceId}`); continue }
        switch (f.kind) {
          case 'ring': this.listeners.emit('ring', f.payload); break
          case 'state': this.listeners.emit('state', f.payload); break
          case 'presence': {
            presences++
            heard()
            // The heartbeat repeats it: only a change is news.
            const changed = last === null || last.online !== f.payload.online || JSON.stringify(last.direct) !== JSON.stringify(f.payload.direct)
            last = f.payload
            if (changed) this.listeners.emit('presence', f.payload)
            break
          }
          case 'calls': this.listeners.emit('call', f.payload); break
          // Checked by the schema (JPEG magic, size) and above (its own device's): as the hub checks it.
          case 'snapshot': this.listeners.emit('snapshot', f.payload); break
        }
      }
    } catch {
      // The stream or the connection ended, or the device went silent.
    }
    clearTimeout(silence)
    const device = this.devices.get(deviceId)
    this.devices.delete(deviceId)
    device?.stream.abort(new Error('closed'))
    if (!this.closed) {
      this.log('warn', `lost the direct connection to ${deviceId}`)
      // As the hub says with the device's will: offline, so its lock state is unknown on every screen.
      if (last?.online === true) this.listeners.emit('presence', { deviceId, online: false, at: Date.now() })
      if (!this.connected) this.listeners.emit('link', false)
    }
  }

  sendToDevice (deviceId: string, sessionId: string, message: SignalToDevice): void {
    let session = this.sessions.get(sessionId)
    if (!session) {
      session = { deviceId, chain: Promise.resolve() }
      this.sessions.set(sessionId, session)
    }
    const s = session
    // One chain per session: the bye never overtakes its offer.
    s.chain = s.chain.then(async () => { await this.send(s, sessionId, message) }).catch((err: Error) => {
      this.log('warn', `could not reach ${deviceId} directly: ${err.message}`)
      if (message.type === 'offer') this.sessionListeners.get(sessionId)?.({ type: 'bye', sessionId, reason: 'failed', message: `the doorbell cannot be reached directly (${err.message})` })
    })
  }

  private async send (s: Session, sessionId: string, message: SignalToDevice): Promise<void> {
    if (!s.io) {
      const device = this.devices.get(s.deviceId)
      if (!device) throw new Error('not connected')
      s.stream = await device.connection.newStream(PROTOCOLS.signal)
      s.io = lpStream(s.stream, { maxDataLength: MAX_FRAME_BYTES })
      void this.readSignals(sessionId, s.io)
    }
    await writeFrame(s.io, SignalToDevice, message)
    if (message.type === 'bye') {
      this.sessions.delete(sessionId)
      await s.stream?.close().catch(() => {})
    }
  }

  private async readSignals (sessionId: string, io: FrameIo): Promise<void> {
    try {
      while (!this.closed) {
        const frame = await readFrame(io, SignalToViewer, 'direct signal')
        if (!frame.ok) { this.log('warn', `rejected a message: ${frame.error.message}`); continue }
        if (frame.value.sessionId !== sessionId) { this.log('warn', 'rejected a message: it names another session'); continue }
        this.sessionListeners.get(sessionId)?.(frame.value)
        if (frame.value.type === 'bye') break
      }
    } catch {}
    // Our half closes too, so the stream is freed on both sides.
    const s = this.sessions.get(sessionId)
    if (s?.io === io) {
      this.sessions.delete(sessionId)
      await s.stream?.close().catch(() => {})
    }
  }

  /** The rings each connected doorbell keeps (the hub has not taken them yet), for the history view while the hub is down. */
  async keptRings (): Promise<Array<{ deviceId: string, rings: KeptRing[], more: boolean, error?: string }>> {
    return await Promise.all([...this.devices.values()].map(async (d) => {
      try {
        return { deviceId: d.deviceId, ...await readKeptRings(d.connection, { homeId: this.o.homeId, viewerId: this.o.viewerId, credential: this.o.credential, key: this.o.key, deviceId: d.deviceId }) }
      } catch (err) {
        return { deviceId: d.deviceId, rings: [], more: false, error: describeError(err) }
      }
    }))
  }

  /** A signed command outside a call (a quick reply from the ring banner) to a connected doorbell, and its result. */
  async sendCommand (deviceId: string, command: OutOfCallCommand): Promise<CommandResult> {
    const d = this.devices.get(deviceId)
    if (!d) throw new DirectCommandError(`${deviceId} is not connected directly now`)
    return await sendDirectCommand(d.connection, { homeId: this.o.homeId, viewerId: this.o.viewerId, command })
  }

  /** Dismisses a ring on its doorbell while the hub is down (dismissRing.ts); the hub takes it with the kept ring. */
  async dismissRing (deviceId: string, ringId: string): Promise<'ringing' | 'dismissed'> {
    const d = this.devices.get(deviceId)
    if (!d) throw new DirectDismissError(`${deviceId} is not connected on the direct path`)
    return await dismissRingDirect(d.connection, { homeId: this.o.homeId, viewerId: this.o.viewerId, credential: this.o.credential, key: this.o.key, deviceId, ringId })
  }

  /** The quick replies a connected doorbell plays now (repliesRead.ts), for the ring banner while the hub is down. */
  async replies (deviceId: string): Promise<string[]> {
    const d = this.devices.get(deviceId)
    if (!d) throw new RepliesReadError(`${deviceId} is not connected on the direct path`)
    return await readRepliesDirect(d.connection, { homeId: this.o.homeId, viewerId: this.o.viewerId, credential: this.o.credential, key: this.o.key, deviceId })
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const node = this.node
    this.node = null
    this.devices.clear()
    this.sessions.clear()
    await node?.stop()
  }
}
