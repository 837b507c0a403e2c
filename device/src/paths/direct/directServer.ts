import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import {
  DIRECT_HEARTBEAT_MS, EventFrame, HELLO_SESSION, Listeners, MAX_FRAME_BYTES, PROTOCOLS, SignalToDevice, SignalToViewer, ViewerHello,
  readFrame, writeFrame,
  type CallRecord, type DeviceState, type DeviceTransport, type FrameIo, type Logger, type Possession, type Presence, type Refusal, type RingEvent, type SnapshotEvent
} from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'

export interface DirectServerOptions {
  homeId: string
  deviceId: string
  log: Logger
  /** What a viewer is told first: the device's presence (online, its direct addresses). */
  presence: () => Presence
  /** Longest a new stream may take to say hello. */
  helloTimeoutMs?: number
  /** How often each viewer is sent the presence again (default DIRECT_HEARTBEAT_MS). */
  heartbeatMs?: number
  /** Whether a viewer's credential makes it a live member of this home and its proof says it holds the credential's key, or why not (`DoorGuard.admit`). */
  admit: (credential: string, viewerId: string, possession: Possession) => Promise<{ ok: true } | Refusal>
}

/** Frames waiting for one slow viewer before it is dropped (it will reconnect). */
const MAX_QUEUED = 64

interface Subscriber { io: FrameIo, stream: Stream, queued: number, chain: Promise<void>, viewerId: string }
interface Session { io: FrameIo, stream: Stream, viewerId: string }

/**
 * The device's half of the direct path: viewers that cannot reach the hub connect to the device
 * itself over libp2p (webrtc-direct from a browser). Events go out on each viewer's events stream;
 * each call session has its own signal stream. A stream that closes ends nothing by itself: the
 * media runs on its own peer connection, and a viewer that moved back to the hub says bye there.
 */
export class DirectServer implements DeviceTransport {
  readonly path = 'direct' as const
  private readonly subscribers = new Set<Subscriber>()
  private readonly sessions = new Map<string, Session>()
  private readonly listeners = new Listeners<{ signal: (viewerId: string, message: SignalToDevice) => void }>()
  private lastState: DeviceState | null = null
  private stopped = false
  private heartbeat: ReturnType<typeof setInterval> | undefined

  constructor (private readonly node: MeshNode, private readonly o: DirectServerOptions) {}

  async start (): Promise<void> {
    await this.node.handle(PROTOCOLS.events, (stream) => { void this.onEvents(stream) })
    await this.node.handle(PROTOCOLS.signal, (stream) => { void this.onSignalStream(stream) })
    // The presence again on every events stream: a viewer that stops hearing it shows the doorbell offline.
    this.heartbeat = setInterval(() => { if (this.subscribers.size > 0) this.broadcast({ kind: 'presence', payload: this.o.presence() }) }, this.o.heartbeatMs ?? DIRECT_HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  /** How many viewers are connected directly now. */
  get viewers (): number { return this.subscribers.size }

  onSignal (listener: (viewerId: string, message: SignalToDevice) => void): () => void {
    return this.listeners.on('signal', listener)
  }

  publishRing (ring: RingEvent): void { this.broadcast({ kind: 'ring', payload: ring }) }
  /** The visitor's picture, after the ring on the same events stream (the viewer checks it as the hub does). */
  publishSnapshot (snapshot: SnapshotEvent): void { this.broadcast({ kind: 'snapshot', payload: snapshot }) }
  publishState (state: DeviceState): void {
    this.lastState = state
    this.broadcast({ kind: 'state', payload: state })
  }

  publishCall (record: CallRecord): void { this.broadcast({ kind: 'calls', payload: record }) }

  sendToViewer (viewerId: string, sessionId: string, message: SignalToViewer): void {
    const session = this.sessions.get(sessionId)
    if (!session || session.viewerId !== viewerId) return
    const sent = writeFrame(session.io, SignalToViewer, message)
    sent.catch((err: Error) => {
      this.o.log.warn('could not send to a direct viewer', { session: sessionId, error: err.message })
    })
    if (message.type === 'bye') {
      // Our half closes after the bye; the viewer closes its half, and the stream is freed
      // (libp2p allows 32 open inbound streams per protocol and connection).
      this.sessions.delete(sessionId)
      void sent.then(async () => { await session.stream.close() }).catch(() => {})
    }
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.heartbeat)
    await this.node.unhandle([PROTOCOLS.events, PROTOCOLS.signal]).catch(() => {})
    for (const s of this.subscribers) s.stream.abort(new Error('the doorbell is stopping'))
    this.subscribers.clear()
    this.sessions.clear()
  }

  private async onEvents (stream: Stream): Promise<void> {
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    let hello
    try {
      hello = await readFrame(io, ViewerHello, 'direct hello', this.o.helloTimeoutMs ?? 5000)
    } catch (err) {
      this.o.log.warn('a direct viewer sent no hello', { error: (err as Error).message })
      stream.abort(err as Error)
      return
    }
    const admitted: { ok: true } | Refusal = !hello.ok
      ? { ok: false, reason: 'malformed', message: hello.error.message }
      : hello.value.homeId !== this.o.homeId
        ? { ok: false, reason: 'other-home', message: `this doorbell belongs to another home than ${hello.value.homeId}` }
        : await this.o.admit(hello.value.credential, hello.value.viewerId, { proof: hello.value.proof, session: HELLO_SESSION })
    if (!hello.ok || !admitted.ok) {
      const message = admitted.ok ? 'refused' : admitted.message
      this.o.log.warn('refused a direct viewer', { error: message, reason: admitted.ok ? 'malformed' : admitted.reason })
      await writeFrame(io, EventFrame, { kind: 'refused', message: message.slice(0, 200) }).catch(() => {})
      await stream.close().catch(() => {})
      return
    }
    const sub: Subscriber = { io, stream, queued: 0, chain: Promise.resolve(), viewerId: hello.value.viewerId }
    this.subscribers.add(sub)
    this.o.log.info('direct viewer connected', { viewer: hello.value.viewerName })
    this.send(sub, { kind: 'presence', payload: this.o.presence() })
    if (this.lastState) this.send(sub, { kind: 'state', payload: this.lastState })
    // The viewer sends nothing more; reading tells us when it goes.
    try {
      while (!this.stopped) await io.read()
    } catch {}
    this.subscribers.delete(sub)
    this.o.log.info('direct viewer left', { viewer: hello.value.viewerName })
  }

  private async onSignalStream (stream: Stream): Promise<void> {
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    let owned: string | null = null
    try {
      while (!this.stopped) {
        const frame = await readFrame(io, SignalToDevice, 'direct signal')
        if (!frame.ok) {
          // Bad input changes nothing: logged, dropped, the stream stays usable.
          this.o.log.warn('rejected a direct signal', { error: frame.error.message, code: frame.error.code })
          continue
        }
        const m = frame.value
        if (m.type === 'offer') {
          const held = this.sessions.get(m.sessionId)
          if ((owned !== null && owned !== m.sessionId) || (held && held.io !== io)) {
            this.o.log.warn('rejected a direct signal', { error: held ? 'the session belongs to another stream' : 'one session per signal stream' })
            continue
          }
          owned = m.sessionId
          this.sessions.set(m.sessionId, { io, stream, viewerId: m.viewerId })
          this.listeners.emit('signal', m.viewerId, m)
        } else {
          // Only the stream that carried a session's offer may end it: session ids are not secret
          // (every viewer sees the participants). A bye for a session that came another way is
          // dropped: that viewer's peer connection closes, which ends the session on the device.
          const session = this.sessions.get(m.sessionId)
          if (!session || session.io !== io) {
            this.o.log.warn('rejected a direct signal', { error: 'a bye for a session this stream does not hold' })
            continue
          }
          this.sessions.delete(m.sessionId)
          this.listeners.emit('signal', session.viewerId, m)
          break
        }
      }
    } catch {
      // The stream ended: see the class comment.
    }
    if (owned !== null && this.sessions.get(owned)?.io === io) this.sessions.delete(owned)
    await stream.close().catch(() => {})
  }

  private broadcast (frame: EventFrame): void {
    for (const sub of this.subscribers) this.send(sub, frame)
  }

  private send (sub: Subscriber, frame: EventFrame): void {
    if (sub.queued >= MAX_QUEUED) {
      this.o.log.warn('dropped a direct viewer that stopped reading', { viewer: sub.viewerId })
      this.subscribers.delete(sub)
      sub.stream.abort(new Error('too slow'))
      return
    }
    sub.queued++
    sub.chain = sub.chain
      .then(async () => { await writeFrame(sub.io, EventFrame, frame) })
      .catch(() => { this.subscribers.delete(sub) })
      .finally(() => { sub.queued-- })
  }
}
