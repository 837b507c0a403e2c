import type { IClientOptions } from 'mqtt'
import {
  AwsCredentials, COMMAND_RESULT_TIMEOUT_MS, CloudCommand, CloudDismiss, CloudKeptRead, CloudRepliesRead, KVS_PAYLOAD_MAX, Listeners, SignalToDevice, ViewerCloudConfig,
  decodeKvsToViewer, kvsPayloadSize, newId, toKvsPayload,
  type CloudDevice, type DismissDirectRequest, type KeptReadRequest, type KeptRing, type RepliesReadRequest, type CommandResult, type OutOfCallCommand, type IceServerInit, type SignalToViewer, type ViewerTransport, type ViewerTransportEvents
} from '@doorbell/core'
import { createActor, fromPromise, waitFor, type InspectionEvent } from 'xstate'
import { cloudChannelMachine } from '@doorbell/machines'
import { IotEvents, type MqttLike } from './iotEvents'
import { readThingMessage } from './thingEvents'
import { CloudCommandError, CloudCommands } from './cloudCommands'
import { CloudKeptReads } from './cloudKeptReads'
import { awsControlPlane, createKvsSignalingClient, describeCloudError, KVS_BUSY, type KvsControlPlane, type SignalingConfig, type SignalingLike } from './aws'
import { KvsControlCache } from './controlCache'
import { checkCloudSetup } from './settings'
import { PREVIEW_UNAVAILABLE, REFUSED, wireChannel, type Channel, type Queued, type Session } from './channel'

/**
 * The viewer's half of the cloud path (away from home):
 *   events     AWS IoT Core, MQTT over WSS with a SigV4-presigned URL (re-signed for every reconnect)
 *   signaling  one KVS signaling connection (role VIEWER) per doorbell channel, opened on first use
 * The AWS SDK and the KVS SDK are loaded on first use (dynamic imports): a page that never answers
 * over the cloud never downloads them.
 */

export type CloudLog = (level: 'info' | 'warn' | 'error', message: string) => void

export {
  CLOUD_READY_MARK, awsControlPlane, createKvsSignalingClient, describeCloudError, preloadCloud,
  type KvsChannel, type KvsControlPlane, type KvsIceConfig, type SignalingConfig, type SignalingLike
} from './aws'

export type { MqttLike } from './iotEvents'

export interface CloudClientOptions {
  config: ViewerCloudConfig
  credentials: AwsCredentials
  /** This viewer's id: the KVS client id of its signaling connections. */
  viewerId: string
  log?: CloudLog
  /** The IoT WebSocket (e.g. one that trusts a stand-in's CA in Node). Default: the platform's. */
  createWebSocket?: (url: string, protocols: string[]) => unknown
  /** Seams (tests). Default: mqtt.connect. */
  createMqtt?: (url: string, options: IClientOptions) => MqttLike
  /** Default: the KVS SDK's SignalingClient, unmodified. */
  createSignalingClient?: (config: SignalingConfig) => SignalingLike | Promise<SignalingLike>
  /** Default: AWS SDK v3 clients. */
  controlPlane?: KvsControlPlane
  /** A signaling connection unused this long is closed (default 5 min; KVS closes idle ones at 10). */
  idleMs?: number
  /** How long opening a signaling connection (control plane + WebSocket) may take (default 15 s). */
  openTimeoutMs?: number
  /** The IoT reconnect period (default 2 s). */
  reconnectPeriodMs?: number
  /** The page's inspection: each channel's machine (`cloudChannel:<deviceId>`) is shown in /inspector. */
  inspect?: ((event: InspectionEvent) => void) | undefined
}

const MAX_QUEUED = 16
const MAX_SESSIONS = 256

export { PREVIEW_UNAVAILABLE }

/**
 * The cloud path's viewer transport. Everything received is parsed by its schema first; a bad or
 * foreign message is logged and dropped. Nothing throws at the caller: an offer that cannot go
 * out (too large, channel refused, unreachable) comes back at once as a `bye` with a message the
 * page can show.
 */
export class CloudClient implements ViewerTransport {
  readonly path = 'cloud' as const
  /** Why the cloud path cannot run at all (invalid config or credentials), or null. */
  readonly problem: string | null = null
  private readonly ready: { config: ViewerCloudConfig, credentials: AwsCredentials } | null
  private readonly log: CloudLog
  private readonly listeners = new Listeners<ViewerTransportEvents>()
  private readonly sessionListeners = new Map<string, (message: SignalToViewer) => void>()
  private readonly sessions = new Map<string, Session>()
  private readonly byThing = new Map<string, CloudDevice>()
  private readonly byId = new Map<string, CloudDevice>()
  private readonly channels = new Map<string, Channel>()
  private readonly commands = new CloudCommands()
  private readonly keptReads = new CloudKeptReads()
  private readonly control: KvsControlCache | null
  private iot: IotEvents | null = null
  private closed = false
  readonly clientId: string

  constructor (private readonly o: CloudClientOptions) {
    this.log = o.log ?? ((level, message) => { console[level](`[cloud] ${message}`) })
    this.clientId = `viewer-${o.viewerId}-${Math.random().toString(36).slice(2, 8)}`
    const setup = checkCloudSetup(o.config, o.credentials)
    if (!setup.ok) {
      this.problem = setup.problem
      this.log('error', this.problem)
      this.ready = null
      this.control = null
      return
    }
    const { config, credentials } = setup
    this.ready = { config, credentials }
    for (const d of config.devices) { this.byThing.set(d.thingName, d); this.byId.set(d.deviceId, d) }
    this.control = new KvsControlCache(o.controlPlane ?? awsControlPlane(config, credentials), config, o.viewerId, this.log)
    this.iot = new IotEvents({
      config,
      credentials,
      clientId: this.clientId,
      log: this.log,
      createWebSocket: o.createWebSocket,
      createMqtt: o.createMqtt,
      reconnectPeriodMs: o.reconnectPeriodMs,
      onLink: (up) => { this.emit('link', up) },
      onMessage: (topic, payload) => { this.onMessage(topic, payload) }
    })
  }

  /** The IoT connection is up (events flow). */
  get connected (): boolean { return this.iot?.connected ?? false }

  on<K extends keyof ViewerTransportEvents>(event: K, listener: ViewerTransportEvents[K]): () => void {
    return this.listeners.on(event, listener)
  }

  onSession (sessionId: string, listener: (message: SignalToViewer) => void): () => void {
    this.sessionListeners.set(sessionId, listener)
    return () => { if (this.sessionListeners.get(sessionId) === listener) this.sessionListeners.delete(sessionId) }
  }

  // ---------------------------------------------------------------- events: AWS IoT Core (iotEvents.ts)

  private onMessage (topic: string, payload: Uint8Array): void {
    if (this.closed) return
    const read = readThingMessage(topic, payload, this.byThing)
    if (!read.ok) { this.log('warn', read.why); return }
    const { device, e } = read
    switch (e.event) {
      case 'ring':
        this.emit('ring', e.value)
        // The resident will likely answer: have the signaling connection and TURN servers ready.
        this.warm(device)
        return
      case 'state': this.emit('state', e.value); return
      case 'presence': this.emit('presence', e.value); return
      case 'call': this.emit('call', e.value); return
      case 'snapshot': this.emit('snapshot', e.value)
    }
  }

  private emit<K extends keyof ViewerTransportEvents>(event: K, ...args: Parameters<ViewerTransportEvents[K]>): void {
    if (this.closed) return
    try { this.listeners.emit(event, ...args) } catch (err) { this.log('error', `a ${event} listener threw: ${(err as Error).message}`) }
  }

  // ---------------------------------------------------------------- signaling: KVS, role VIEWER

  /** Opens the doorbell's signaling connection and fetches its TURN servers ahead of an answer. */
  warm (device: CloudDevice | string): void {
    const d = typeof device === 'string' ? this.byId.get(device) : device
    if (!d || this.closed || !this.ready) return
    this.channel(d)
    void this.iceServers(d.deviceId)
  }

  sendToDevice (deviceId: string, sessionId: string, message: SignalToDevice): void {
    if (this.closed) return
    const offer = message.type === 'offer'
    const checked = SignalToDevice.safeParse(message)
    if (!checked.success || checked.data.sessionId !== sessionId) {
      this.log('error', `not sending an invalid ${String(message.type)}: ${checked.success ? 'it names another session' : checked.error.issues[0]?.message ?? ''}`)
      if (offer) this.fail(sessionId, 'the call could not be started (an invalid offer)')
      return
    }
    const device = this.byId.get(deviceId)
    if (!device || !this.ready) {
      this.log('warn', `${deviceId} is not set up for the cloud path`)
      if (offer) this.fail(sessionId, this.problem ?? 'this doorbell is not set up for the cloud path: check Settings')
      return
    }
    const payload = toKvsPayload(checked.data)
    if (kvsPayloadSize(payload) > KVS_PAYLOAD_MAX) {
      this.log('warn', `${message.type} of ${kvsPayloadSize(payload)} bytes is over the KVS limit of ${KVS_PAYLOAD_MAX}`)
      if (offer) this.fail(sessionId, 'the offer is too large for the cloud signaling channel')
      return
    }
    const existing = this.channels.get(deviceId)
    if (offer) {
      this.sessions.set(sessionId, { deviceId, answered: false, preview: checked.data.type === 'offer' && checked.data.preview === true })
      while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!)
    } else {
      const ended = this.sessions.get(sessionId)
      this.sessions.delete(sessionId)
      // A hang-up before the offer even left: neither goes out.
      const queued = existing?.queue.findIndex((q) => q.sessionId === sessionId && q.message.type === 'offer') ?? -1
      if (existing && queued >= 0) { existing.queue.splice(queued, 1); if (ended?.preview === true) { existing.release = true; this.release(existing) } return }
      if (existing && ended?.preview === true) existing.release = true
    }
    const ch = this.channel(device)
    const q: Queued = { sessionId, message: checked.data, payload }
    if (ch.actor.getSnapshot().matches('open')) { this.transmit(ch, q); this.release(ch); return }
    if (ch.queue.length >= MAX_QUEUED) {
      this.log('warn', `too many messages waiting for ${device.channelName} to open: dropped a ${message.type}`)
      if (offer) { this.sessions.delete(sessionId); this.fail(sessionId, 'too many calls waiting for the cloud signaling channel') }
      return
    }
    ch.queue.push(q)
  }

  /** A signed command outside a call (a ring banner's quick reply) on the doorbell's KVS channel (core/src/cloudCommand.ts), and its result. */
  async sendCommand (deviceId: string, command: OutOfCallCommand, timeoutMs = COMMAND_RESULT_TIMEOUT_MS): Promise<CommandResult> {
    return await this.request(deviceId, 'command', toKvsPayload(CloudCommand.parse({ type: 'command', command })), () => this.commands.expect(command.id, timeoutMs), command.id, timeoutMs)
  }

  /**
   * Dismisses a ring on its doorbell from away from home, the hub down (docs/history.md): the
   * direct path's signed request on the doorbell's KVS channel; the doorbell keeps it for the hub's
   * history. A refusal throws CloudCommandError with the doorbell's reason.
   */
  async dismissRing (deviceId: string, request: DismissDirectRequest, timeoutMs = COMMAND_RESULT_TIMEOUT_MS): Promise<'ringing' | 'dismissed'> {
    const id = newId('d')
    const answer = await this.request(deviceId, 'dismissal', toKvsPayload(CloudDismiss.parse({ type: 'dismiss', id, request })), () => this.commands.expectDismissal(id, timeoutMs), id, timeoutMs)
    if (answer.kind === 'refused') throw new CloudCommandError(`the doorbell refused: ${answer.message}`)
    return answer.outcome
  }

  /** The doorbells this screen may reach away from home. */
  get deviceIds (): string[] { return [...this.byId.keys()] }

  /** The rings a doorbell keeps, the hub down (docs/history.md; cloudKeptReads.ts); KeptReadError says why not. */
  async readKeptRings (deviceId: string, request: KeptReadRequest, timeoutMs = 30_000): Promise<{ rings: KeptRing[], more: boolean }> {
    const id = newId('k')
    return await this.request(deviceId, 'read of the kept rings', toKvsPayload(CloudKeptRead.parse({ type: 'kept-read', id, request })), () => this.keptReads.expect(id, deviceId, timeoutMs), id, timeoutMs, (err) => { this.keptReads.fail(id, err) })
  }

  /** The quick replies the doorbell plays now, read from away from home with the hub down (core/src/repliesRead.ts); a refusal throws CloudCommandError. */
  async readReplies (deviceId: string, request: RepliesReadRequest, timeoutMs = COMMAND_RESULT_TIMEOUT_MS): Promise<string[]> {
    const id = newId('q')
    const answer = await this.request(deviceId, 'replies read', toKvsPayload(CloudRepliesRead.parse({ type: 'replies', id, request })), () => this.commands.expectReplies(id, timeoutMs), id, timeoutMs)
    if (answer.kind === 'refused') throw new CloudCommandError(`the doorbell refused: ${answer.message}`)
    return answer.replies
  }

  /** Sends a command, a dismissal or a read on SDP_OFFER once the doorbell's channel is open, and waits for its answer. */
  private async request<T> (deviceId: string, what: string, payload: string, expect: () => Promise<T>, id: string, timeoutMs: number, fail = (err: Error): void => { this.commands.fail(id, err) }): Promise<T> {
    const device = this.byId.get(deviceId)
    if (!device || !this.ready || this.closed) throw new CloudCommandError(this.problem ?? `${deviceId} is not set up for the cloud path`)
    if (kvsPayloadSize(payload) > KVS_PAYLOAD_MAX) throw new CloudCommandError(`the ${what} is over KVS's ${KVS_PAYLOAD_MAX}-byte limit`)
    const result = expect()
    const ch = this.channel(device)
    waitFor(ch.actor, (s) => s.matches('open'), { timeout: timeoutMs }).then(() => {
      if (!this.current(ch) || !ch.client) throw new Error('the cloud signaling connection closed')
      ch.client.sendSdpOffer(payload as any)
      this.touch(ch)
    }).catch((err: Error) => { fail(new CloudCommandError(`could not send the ${what}: ${err.message}`)) })
    return await result
  }

  /** The signaling connection of a doorbell: the open one, or one being opened now. */
  private channel (device: CloudDevice): Channel {
    const existing = this.channels.get(device.deviceId)
    if (existing) { this.touch(existing); return existing }
    const ch: Channel = { device, client: null, queue: [], actor: null as unknown as Channel['actor'] }
    const name = `cloudChannel:${device.deviceId}`
    ch.actor = createActor(this.channelMachine(ch), {
      input: {
        ...(this.o.openTimeoutMs !== undefined ? { openTimeoutMs: this.o.openTimeoutMs } : {}),
        ...(this.o.idleMs !== undefined ? { idleMs: this.o.idleMs } : {})
      },
      id: name,
      systemId: name,
      ...(this.o.inspect ? { inspect: this.o.inspect } : {})
    })
    this.channels.set(device.deviceId, ch)
    ch.actor.start()
    return ch
  }

  private current (ch: Channel): boolean { return !this.closed && this.channels.get(ch.device.deviceId) === ch }

  /** The channel machine's I/O: the control plane, the SDK client, the queue, the offers that fail. */
  private channelMachine (ch: Channel) {
    const r = this.ready!
    return cloudChannelMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          try {
            const info = await this.control!.channel(ch.device)
            if (!this.current(ch)) return
            const client = await (this.o.createSignalingClient ?? createKvsSignalingClient)({
              role: 'VIEWER',
              clientId: this.o.viewerId,
              region: r.config.region,
              channelARN: info.channelARN,
              channelEndpoint: info.wssEndpoint,
              credentials: r.credentials
            })
            if (!this.current(ch)) { try { client.close() } catch {} return }
            ch.client = client
            wireChannel(ch, client, { current: (c) => this.current(c), warn: (m) => { this.log('warn', m) }, forget: (id) => { this.control?.forget(id) }, onAnswer: (c, payload) => { this.onAnswer(c, payload) } })
          } catch (err) {
            throw new Error(describeCloudError(err, ch.device, r.config.region))
          }
        })
      },
      actions: {
        openClient: () => {
          if (!this.current(ch) || !ch.client) return
          try { ch.client.open() } catch (err) { ch.actor.send({ type: 'REFUSED', message: describeCloudError(err, ch.device, r.config.region) }) }
        },
        flush: () => {
          this.log('info', `cloud signaling open for ${ch.device.deviceId}`)
          for (const q of ch.queue.splice(0)) this.transmit(ch, q)
          // After the transition: the machine is in `open` only once this action has run.
          queueMicrotask(() => { this.release(ch) })
        },
        failChannel: ({ context }) => { this.failChannel(ch, context.error ?? REFUSED) },
        closeIdle: () => {
          if (!this.current(ch)) return
          this.log('info', `closing the idle cloud signaling connection of ${ch.device.deviceId}`)
          this.channels.delete(ch.device.deviceId)
          try { ch.client?.close() } catch {}
        },
        closedUnderCall: () => {
          if (!this.current(ch)) return
          this.log('info', `cloud signaling for ${ch.device.deviceId} closed`)
          this.failChannel(ch, 'the cloud signaling connection closed before the doorbell answered')
          // A call in progress still needs to hear the doorbell's bye (KVS closes idle connections).
          if ([...this.sessions.values()].some((s) => s.deviceId === ch.device.deviceId && s.answered)) this.channel(ch.device)
        }
      },
      guards: {
        inUse: () => ch.queue.length > 0 || [...this.sessions.values()].some((s) => s.deviceId === ch.device.deviceId)
      }
    })
  }

  private transmit (ch: Channel, q: Queued): void {
    try {
      ch.client!.sendSdpOffer(q.payload as any)
    } catch (err) {
      this.log('warn', `could not send a ${q.message.type} on ${ch.device.channelName}: ${(err as Error).message}`)
      if (q.message.type === 'offer') { this.sessions.delete(q.sessionId); this.fail(q.sessionId, 'the cloud signaling connection is not open') }
    }
    this.touch(ch)
  }

  /** Ends a channel: its waiting offers, and the offers it carried that got no answer yet, fail with `message`. */
  private failChannel (ch: Channel, message: string): void {
    if (!this.current(ch)) return
    this.channels.delete(ch.device.deviceId)
    try { ch.client?.close() } catch {}
    const failing = new Set<string>()
    for (const q of ch.queue) if (q.message.type === 'offer') failing.add(q.sessionId)
    ch.queue = []
    for (const [id, s] of this.sessions) if (s.deviceId === ch.device.deviceId && !s.answered) failing.add(id)
    this.log('warn', `cloud signaling for ${ch.device.deviceId}: ${message}`)
    for (const id of failing) {
      // A preview that found no room says so plainly: the banner keeps the snapshot, Answer tries again.
      const preview = this.sessions.get(id)?.preview === true && (message === REFUSED || message === KVS_BUSY)
      this.sessions.delete(id)
      this.fail(id, preview ? PREVIEW_UNAVAILABLE : message)
    }
  }

  /**
   * Closes a channel on which a preview ended, once nothing else uses it: KVS allows 10 viewers
   * per channel, and a screen that keeps its connection for the idle timer (5 min) holds a slot
   * another screen may need to answer (docs/preview.md). Not closed while a message waits or a
   * session with the doorbell is still up.
   */
  private release (ch: Channel): void {
    // A quick reply's result still on its way comes on this connection.
    if (ch.release !== true || !this.current(ch) || !ch.actor.getSnapshot().matches('open') || ch.queue.length > 0 || this.commands.waitingCount > 0 || this.keptReads.waitingCount > 0) return
    if ([...this.sessions.values()].some((s) => s.deviceId === ch.device.deviceId)) return
    this.log('info', `a live preview of ${ch.device.deviceId} ended: closing its cloud signaling connection`)
    this.channels.delete(ch.device.deviceId)
    ch.actor.stop()
    try { ch.client?.close() } catch {}
  }

  /** Used: its idle timer starts over. */
  private touch (ch: Channel): void {
    ch.actor.send({ type: 'TOUCH' })
  }

  private onAnswer (ch: Channel, payload: unknown): void {
    if (!this.current(ch)) return
    this.touch(ch)
    const warn = (m: string): void => { this.log('warn', `${ch.device.channelName}: ${m}`) }
    if (this.commands.take(payload, warn) || this.keptReads.take(ch.device.deviceId, payload, warn)) { this.release(ch); return }
    const d = decodeKvsToViewer(payload)
    if (!d.ok) { this.log('warn', `rejected a message from ${ch.device.channelName}: ${d.error}`); return }
    const m = d.message
    const s = this.sessions.get(m.sessionId)
    if (!s || s.deviceId !== ch.device.deviceId) { this.log('warn', `rejected a ${m.type} from ${ch.device.channelName}: no session ${m.sessionId} with this doorbell`); return }
    if (m.type === 'answer') s.answered = true
    else {
      this.sessions.delete(m.sessionId)
      if (s.preview) ch.release = true
    }
    const listener = this.sessionListeners.get(m.sessionId)
    if (!listener) this.log('warn', `dropped a ${m.type} for session ${m.sessionId}: nobody listens`)
    else this.deliver(listener, m)
    this.release(ch)
  }

  private deliver (listener: (message: SignalToViewer) => void, message: SignalToViewer): void {
    if (this.closed) return
    try { listener(message) } catch (err) { this.log('error', `a session listener threw: ${(err as Error).message}`) }
  }

  /** The session's own listener hears that its offer failed (asynchronously, as an answer would come). */
  private fail (sessionId: string, message: string): void {
    const bye: SignalToViewer = { type: 'bye', sessionId, reason: 'failed', message: message.slice(0, 300) }
    queueMicrotask(() => {
      const listener = this.sessionListeners.get(sessionId)
      if (listener) this.deliver(listener, bye)
    })
  }

  /** The ICE servers for a cloud call with this doorbell (controlCache.ts); [] when it cannot have them. */
  async iceServers (deviceId: string): Promise<IceServerInit[]> {
    const device = this.byId.get(deviceId)
    if (!device || this.closed || !this.control) return []
    return await this.control.iceServers(device)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.commands.clear('the cloud path closed')
    this.keptReads.clear('the cloud path closed')
    for (const ch of this.channels.values()) {
      ch.actor.stop()
      try { ch.client?.close() } catch {}
    }
    this.channels.clear()
    this.sessions.clear()
    this.sessionListeners.clear()
    await this.iot?.close()
  }
}
