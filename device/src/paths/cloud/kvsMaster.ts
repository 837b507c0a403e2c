import { readFile } from 'node:fs/promises'
import { Role, SignalingClient, generateStunUrl } from 'amazon-kinesis-video-streams-webrtc'
import type { RTCIceServer } from 'werift'
import {
  KVS_PAYLOAD_MAX, Listeners, describeError, isCloudCommand, isCloudDismiss, isCloudKeptRead, isCloudRepliesRead, isStockSdp, kvsPayloadSize, stockPayloadSize, toKvsPayload,
  type Logger, type SignalToDevice, type SignalToViewer, type Unsubscribe
} from '@doorbell/core'
import { createActor, fromPromise, waitFor, type Actor, type InspectionEvent } from 'xstate'
import { BACKOFF, kvsIceMachine, kvsMasterMachine, loudFailure, type KvsMasterInput, type KvsReason } from '@doorbell/machines'
import { deviceControlPlane, type ChannelInfo, type KvsControlPlane, type KvsCredentialSource } from './controlPlane'
import { KvsSessions } from './kvsSessions'
import type { KvsCommandHandler } from './kvsCommands'
import type { KvsKeptReadHandler } from './kvsKeptReads'

/**
 * The doorbell as master of its KVS signaling channel (the cloud path's offer/answer carriage).
 *
 * Control plane (core/src/kvsControlPlane.ts, shared with the viewer): DescribeSignalingChannel →
 * ARN; GetSignalingChannelEndpoint (MASTER, WSS + HTTPS); GetIceServerConfig → TURN servers (kept
 * fresh; iceServers() returns the last known).
 * Data plane: the unmodified KVS SDK SignalingClient, role MASTER, credentials from the IoT
 * credentials provider (a static copy: each new client gets fresh ones).
 *
 * Viewer → device: every message rides SDP_OFFER; its payload is decoded by decodeKvsToDevice
 * (bad → warning, dropped). The KVS sender id (which KVS authenticates) is the viewer id: an
 * offer whose viewerId differs is dropped; a bye is taken only from the sender of that session's
 * offer. Device → viewer: every message rides SDP_ANSWER (recipient = the viewer id); one over
 * KVS's 10 KB limit is dropped with an error.
 *
 * Sending while the connection is not open drops the message (logged): the call machines time out
 * and a viewer offers again. Nothing is queued: an answer is worthless once its offer is stale.
 *
 * Connection: its lifecycle is the kvsMaster machine (machines/src/kvsMaster.ts): renewed after
 * renewAfterSeconds (KVS cuts at one hour), and after idleRenewSeconds without a message from us
 * (KVS cuts a connection idle for 10 minutes), by opening a new client (fresh credentials, fresh
 * signed URL) and closing the old one once the new is open (KVS routes to the newest master
 * connection; it may also close the old one itself). Any other close or error → retry with the
 * shared backoff (1 s doubling to 30 s, reset once open); a connection that fails to open also
 * re-runs the control-plane calls. This class holds the clients and does the machine's I/O.
 *
 * The signaling WebSocket is Node's global WebSocket, which cannot be given a CA: with a stand-in
 * CA (caFile), the process must start with NODE_EXTRA_CA_CERTS naming it.
 */

export type SignalingClientConfig = ConstructorParameters<typeof SignalingClient>[0]

/** What KvsMaster uses of the SDK's SignalingClient (an EventEmitter). */
export interface SignalingClientLike {
  on: (event: string, listener: (...args: any[]) => void) => unknown
  open: () => void
  close: () => void
  sendSdpAnswer: (payload: any, recipientClientId?: string) => void
  sendIceCandidate?: (payload: any, recipientClientId?: string) => void
}

/** Who takes the stock KVS protocol's messages (plain SDP, trickled candidates): `StockViewers`. */
export interface StockHandler {
  offer: (viewerId: unknown, payload: unknown) => void
  candidate: (viewerId: unknown, payload: unknown) => void
  stop: () => void
}

export type { ChannelInfo, KvsControlPlane, KvsCredentialSource, TimedIceServer } from './controlPlane'

export interface KvsMasterOptions {
  region: string
  channelName: string
  /** Control-plane override, https://host:port (stand-ins); default: the region's. */
  kvsEndpoint?: string | undefined
  /** CA bundle for the control plane's HTTPS (the WebSocket needs NODE_EXTRA_CA_CERTS, see above). */
  caFile?: string | undefined
  /** Open a new connection after this long (default 3300; KVS closes at 3600). */
  renewAfterSeconds?: number
  /** Open a new connection after this long without sending (default 540; KVS closes a connection idle for 600). */
  idleRenewSeconds?: number
  credentials: KvsCredentialSource
  log: Logger
  /** Retry delays after a failure (default 1 s doubling to 30 s). */
  backoff?: { initialMs?: number, maxMs?: number }
  /** A connection not open after this long counts as failed (default 15 s). */
  openTimeoutMs?: number
  /** ICE servers are fetched again this long before their Ttl runs out (default 60 s). */
  iceRefreshMarginSeconds?: number
  /** Prepended to the TURN servers; default KVS's STUN server for the region, none with a kvsEndpoint override (stand-ins have no STUN). */
  stunUrl?: string | null
  /** The device's inspection: the connection's machine (`kvsMaster`) is shown in /inspector. */
  inspect?: ((event: InspectionEvent) => void) | undefined
  /** Test seams. */
  createSignalingClient?: (config: SignalingClientConfig) => SignalingClientLike
  controlPlane?: KvsControlPlane
}

type KvsEvents = {
  signal: (viewerId: string, message: SignalToDevice) => void
  up: () => void
  down: () => void
}

const ICE_RETRY_MS = 30_000
const DEFAULT_TTL_S = 300

export class KvsMaster {
  private readonly listeners = new Listeners<KvsEvents>()
  private readonly sessions = new KvsSessions()
  private readonly retired = new WeakSet<SignalingClientLike>()
  /** The open connection, and the one being opened (at start, after a failure, or to renew). */
  private current: SignalingClientLike | null = null
  private pending: SignalingClientLike | null = null
  private channelInfo: ChannelInfo | null = null
  private control: KvsControlPlane | null = null
  private ice: { servers: RTCIceServer[], fetchedAt: number, ttlMs: number } | null = null
  /** The connection's lifecycle (machines/src/kvsMaster.ts) and the TURN servers' (kvsIce); null before start and after stop. */
  private actor: Actor<typeof kvsMasterMachine> | null = null
  private iceActor: Actor<typeof kvsIceMachine> | null = null
  private started = false
  private stopped = false
  private readonly stunUrl: string | null
  /** Stock KVS viewers; null: their messages are dropped as not ours. */
  private stock: StockHandler | null = null
  private commands: KvsCommandHandler | null = null
  private keptReads: KvsKeptReadHandler | null = null

  constructor (private readonly o: KvsMasterOptions) {
    this.stunUrl = o.stunUrl !== undefined
      ? o.stunUrl
      : o.kvsEndpoint !== undefined ? null : generateStunUrl({ region: o.region, useFipsEndpoints: false, useDualStackEndpoints: false })
  }

  /** The signaling connection is open. */
  get connected (): boolean { return this.current !== null }

  on<K extends keyof KvsEvents>(event: K, listener: KvsEvents[K]): Unsubscribe {
    return this.listeners.on(event, listener)
  }

  onSignal (listener: (viewerId: string, message: SignalToDevice) => void): Unsubscribe {
    return this.listeners.on('signal', listener)
  }

  /** Takes the stock protocol's messages from now on (recognized per message: a bare SDP, not our envelope). */
  handleStock (stock: StockHandler): void { this.stock = stock }
  /** Takes the commands outside a call and the dismissals from now on (core/src/cloudCommand.ts: our envelope, types `command` and `dismiss`). */
  handleCommands (commands: KvsCommandHandler): void { this.commands = commands }
  /** Takes the reads of the kept rings from now on (core/src/cloudKept.ts: our envelope, type `kept-read`). */
  handleKeptReads (reads: KvsKeptReadHandler): void { this.keptReads = reads }

  /** Sends a stock-protocol message (a bare answer, a candidate) to one viewer; false when it could not be sent. */
  sendStock (viewerId: string, action: 'SDP_ANSWER' | 'ICE_CANDIDATE', payload: unknown): boolean {
    const size = stockPayloadSize(payload)
    if (size > KVS_PAYLOAD_MAX) {
      this.o.log.error('dropped a stock KVS message over KVS\'s 10 KB payload limit', { action, viewer: viewerId, bytes: size, max: KVS_PAYLOAD_MAX })
      return false
    }
    const client = this.current
    if (client === null) return false
    try {
      if (action === 'SDP_ANSWER') client.sendSdpAnswer(payload, viewerId)
      else if (client.sendIceCandidate) client.sendIceCandidate(payload, viewerId)
      else return false
      this.actor?.send({ type: 'SENT' })
      return true
    } catch (err) {
      this.o.log.warn('could not send on KVS signaling: dropped a stock message', { action, viewer: viewerId, error: (err as Error).message })
      return false
    }
  }

  /**
   * The ICE servers for a cloud session's peer connection: KVS's STUN (real AWS only) and the last
   * TURN servers fetched (kept fresh in the background); [] before the first fetch.
   */
  iceServers (): RTCIceServer[] {
    const turn = this.ice?.servers ?? []
    return [...(this.stunUrl !== null ? [{ urls: this.stunUrl }] : []), ...turn.map((s) => ({ ...s }))]
  }

  /**
   * Starts connecting and resolves at once (the cloud may be unreachable: retries go on in the
   * background). Rejects only when the CA file cannot be read.
   */
  async start (): Promise<void> {
    if (this.started || this.stopped) return
    this.started = true
    if (this.o.controlPlane) {
      this.control = this.o.controlPlane
    } else {
      const ca = this.o.caFile !== undefined
        ? await readFile(this.o.caFile, 'utf8').catch((err: Error) => { throw new Error(`KVS: could not read the CA bundle ${this.o.caFile}: ${err.message}`) })
        : undefined
      if (this.o.caFile !== undefined && process.env.NODE_EXTRA_CA_CERTS === undefined) {
        this.o.log.warn('caFile is set but NODE_EXTRA_CA_CERTS is not: the KVS signaling WebSocket uses only the system CAs and Node\'s extra ones', { caFile: this.o.caFile })
      }
      this.control = deviceControlPlane({ region: this.o.region, channelName: this.o.channelName, kvsEndpoint: this.o.kvsEndpoint, credentials: this.o.credentials, ca })
    }
    if (this.stopped) return
    const input: KvsMasterInput = {
      renewAfterMs: (this.o.renewAfterSeconds ?? 3300) * 1000,
      idleRenewMs: (this.o.idleRenewSeconds ?? 540) * 1000,
      openTimeoutMs: this.o.openTimeoutMs ?? 15_000,
      backoff: this.o.backoff
        ? { firstMs: this.o.backoff.initialMs ?? 1000, maxMs: Math.max(this.o.backoff.initialMs ?? 1000, this.o.backoff.maxMs ?? 30_000) }
        : BACKOFF.kvsMaster
    }
    const inspect = this.o.inspect ? { inspect: this.o.inspect } : {}
    this.iceActor = createActor(kvsIceMachine.provide({
      actors: { fetchIce: fromPromise<number | null>(async () => await this.fetchIce()) }
    }), { input: { retryMs: ICE_RETRY_MS }, id: 'kvsIce', systemId: 'kvsIce', ...inspect })
    this.iceActor.start()
    this.actor = createActor(this.machine(), {
      input,
      id: 'kvsMaster',
      systemId: 'kvsMaster',
      ...(this.o.inspect ? { inspect: this.o.inspect } : {})
    })
    this.actor.start()
  }

  /** Closes the connection and clears every timer. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.actor?.stop()
    this.iceActor?.stop()
    this.actor = this.iceActor = null
    const wasUp = this.current !== null
    for (const c of [this.pending, this.current]) if (c) this.retire(c)
    this.pending = this.current = null
    this.sessions.clear()
    this.stock?.stop()
    this.control?.destroy()
    if (wasUp) this.emit('down')
  }

  sendToViewer (viewerId: string, sessionId: string, message: SignalToViewer): void {
    if (message.type === 'bye') this.sessions.forget(sessionId)
    const payload = toKvsPayload(message)
    const size = kvsPayloadSize(payload)
    if (size > KVS_PAYLOAD_MAX) {
      this.o.log.error('dropped a message too large for KVS signaling', { type: message.type, session: sessionId, viewer: viewerId, bytes: size, max: KVS_PAYLOAD_MAX })
      return
    }
    const client = this.current
    if (client === null) {
      this.debug('KVS signaling is not connected: dropped a message to a viewer', { type: message.type, session: sessionId, viewer: viewerId })
      return
    }
    try {
      // Every device → viewer message rides SDP_ANSWER (see core/src/cloud.ts).
      client.sendSdpAnswer(payload as any, viewerId)
      // Pushes the idle renewal back.
      this.actor?.send({ type: 'SENT' })
    } catch (err) {
      this.o.log.warn('could not send on KVS signaling: dropped a message to a viewer', { type: message.type, session: sessionId, viewer: viewerId, error: (err as Error).message })
    }
  }

  // ------------------------------------------------------------------ connection: the machine's I/O

  private machine () {
    const channel = this.o.channelName
    const attempt = (failures: number): Record<string, unknown> =>
      failures === 3 ? { failures, note: 'from now on every 20th failure is logged' } : failures > 3 ? { failures } : {}
    return kvsMasterMachine.provide({
      actors: {
        prepare: fromPromise<void, { reason: KvsReason, failures: number }>(async ({ input, signal }) => { await this.prepare(input.reason, input.failures, signal) })
      },
      actions: {
        openPending: () => {
          const client = this.pending
          if (client === null) return
          try { client.open() } catch (err) { queueMicrotask(() => { this.fail(client, describeError(err)) }) }
        },
        promote: ({ context }) => {
          const previous = this.current
          this.current = this.pending
          this.pending = null
          this.o.log.info(previous ? 'renewed the KVS signaling connection' : 'connected to KVS signaling', { channel })
          // The old connection goes only now: offers kept arriving on it while the new one opened.
          if (previous) this.retire(previous)
          void context
        },
        retirePending: () => {
          if (this.pending) this.retire(this.pending)
          this.pending = null
        },
        // The endpoint may have moved: ask the control plane again next time.
        forgetChannel: () => { this.channelInfo = null },
        up: () => { this.emit('up') },
        down: () => { this.emit('down') },
        logPrepareFailed: ({ context }) => {
          if (loudFailure(context.failures)) this.o.log.warn('could not prepare the KVS signaling connection', { reason: context.reason, channel, error: context.lastError, ...attempt(context.failures) })
        },
        logOpenFailed: ({ context }) => {
          if (loudFailure(context.failures)) this.o.log.warn('could not open the KVS signaling connection', { channel, error: context.lastError, ...attempt(context.failures) })
        },
        logLost: ({ event }) => {
          this.o.log.warn('lost the KVS signaling connection', { channel, error: event.type === 'CURRENT_LOST' ? event.error : undefined })
        },
        // Renewing: KVS (or a stand-in) closed the old connection as the new one connected. The new one decides what follows.
        logLostWhileRenewing: ({ event }) => {
          this.o.log.info('the previous KVS signaling connection closed while renewing', { channel, error: event.type === 'CURRENT_LOST' ? event.error : undefined })
        },
        logReconnecting: ({ context }) => {
          if (loudFailure(context.failures)) this.o.log.info('reconnecting to KVS signaling', { inMs: context.waitMs })
        }
      }
    })
  }

  /** The control plane (channel, ICE servers when stale), fresh credentials, and a new client: the pending one. */
  private async prepare (reason: KvsReason, failures: number, signal: AbortSignal): Promise<void> {
    const control = this.control
    if (control === null) throw new Error('KVS master not started')
    const channel = this.channelInfo ?? await control.channel()
    this.channelInfo = channel
    if (this.iceStale()) await this.refreshIce()
    const credentials = await this.o.credentials.getStatic()
    if (signal.aborted || this.stopped) return
    const config: SignalingClientConfig = {
      role: Role.MASTER,
      region: this.o.region,
      channelARN: channel.channelARN,
      channelEndpoint: channel.wssEndpoint,
      credentials,
      systemClockOffset: control.clockOffsetMs
    }
    const client = this.o.createSignalingClient?.(config) ?? new SignalingClient(config)
    this.pending = client
    this.wire(client)
    if (loudFailure(failures)) this.o.log.info(reason === 'renew' ? 'renewing the KVS signaling connection' : 'connecting to KVS signaling', { reason, channel: this.o.channelName, endpoint: channel.wssEndpoint })
  }

  private wire (client: SignalingClientLike): void {
    client.on('open', () => {
      if (this.retired.has(client) || client !== this.pending) return
      this.actor?.send({ type: 'OPENED' })
    })
    client.on('close', () => { this.fail(client, 'closed') })
    // The SDK emits 'error' for a failed WebSocket and for a URL it could not sign; an 'error' with no listener would throw.
    client.on('error', (err: unknown) => { this.fail(client, describeError(err)) })
    // Recognized per message: a bare session description is the stock protocol, anything else must be our envelope.
    client.on('sdpOffer', (payload: unknown, senderClientId: unknown) => {
      if (this.stock !== null && isStockSdp(payload)) this.stock.offer(senderClientId, payload)
      else if (this.commands !== null && isCloudCommand(payload)) this.commands.command(senderClientId, payload)
      else if (this.commands !== null && isCloudDismiss(payload)) this.commands.dismiss(senderClientId, payload)
      else if (this.keptReads !== null && isCloudKeptRead(payload)) this.keptReads.read(senderClientId, payload)
      else if (this.commands !== null && isCloudRepliesRead(payload)) this.commands.replies(senderClientId, payload)
      else this.onOffer(payload, senderClientId)
    })
    // Only stock viewers trickle (our offers carry every candidate).
    client.on('iceCandidate', (payload: unknown, senderClientId: unknown) => {
      if (this.stock !== null) this.stock.candidate(senderClientId, payload)
      else this.o.log.warn('dropped an ICE candidate: this doorbell takes no stock KVS viewers', { from: String(senderClientId).slice(0, 64) })
    })
    client.on('statusResponse', (status: unknown) => {
      this.o.log.warn('KVS signaling reported an error', { status: JSON.stringify(status)?.slice(0, 300) })
    })
  }

  /** A close or error we did not cause: the machine decides what follows. */
  private fail (client: SignalingClientLike, why: string): void {
    if (this.retired.has(client) || this.stopped) return
    if (client === this.pending) {
      this.actor?.send({ type: 'PENDING_FAILED', error: why })
    } else if (client === this.current) {
      this.retire(client)
      this.current = null
      this.actor?.send({ type: 'CURRENT_LOST', error: why })
    }
  }

  private retire (client: SignalingClientLike): void {
    this.retired.add(client)
    try { client.close() } catch {}
  }

  // ------------------------------------------------------------------ ICE servers

  private iceStale (): boolean {
    if (this.ice === null) return true
    return Date.now() - this.ice.fetchedAt >= this.ice.ttlMs - (this.o.iceRefreshMarginSeconds ?? 60) * 1000
  }

  /** Fetches the TURN servers now (the kvsIce machine's FETCH) and waits for the answer, or the failure (logged, the last known kept). */
  private async refreshIce (): Promise<void> {
    const ice = this.iceActor
    if (ice === null) return
    ice.send({ type: 'FETCH' })
    await waitFor(ice, (s) => !s.matches('fetching')).catch(() => {})
  }

  /** kvsIce's fetch: the TURN servers, and the wait before they are fetched again (null: no channel to ask about yet). */
  private async fetchIce (): Promise<number | null> {
    const channel = this.channelInfo
    const control = this.control
    if (channel === null || control === null || this.stopped) return null
    try {
      const list = await control.iceServers(channel)
      const ttlS = list.length > 0 ? Math.min(...list.map((s) => s.ttlSeconds)) : DEFAULT_TTL_S
      this.ice = { servers: list.map((s) => s.server), fetchedAt: Date.now(), ttlMs: ttlS * 1000 }
      this.o.log.info('got ICE servers from KVS', { count: list.length, ttlSeconds: ttlS })
      return Math.max(1000, this.ice.ttlMs - (this.o.iceRefreshMarginSeconds ?? 60) * 1000)
    } catch (err) {
      if (!this.stopped) this.o.log.warn('could not get ICE servers from KVS; keeping the last known', { error: describeError(err), retryInMs: ICE_RETRY_MS })
      throw err
    }
  }

  // ------------------------------------------------------------------ messages

  private onOffer (payload: unknown, senderClientId: unknown): void {
    const admitted = this.sessions.admit(payload, senderClientId)
    if (!admitted.ok) {
      this.o.log.warn(admitted.why, admitted.fields)
      return
    }
    const m = admitted.message
    try {
      this.listeners.emit('signal', admitted.viewerId, m)
    } catch (err) {
      this.o.log.error('a signal listener threw', { type: m.type, session: m.sessionId, error: describeError(err) })
    }
  }

  private emit (event: 'up' | 'down'): void {
    try { this.listeners.emit(event) } catch (err) { this.o.log.error('a KVS listener threw', { event, error: describeError(err) }) }
  }

  private debug (msg: string, fields: Record<string, unknown>): void {
    const log = this.o.log as Logger & { debug?: (msg: string, fields?: Record<string, unknown>) => void }
    if (log.debug) log.debug(msg, fields)
    else log.info(msg, fields)
  }
}

