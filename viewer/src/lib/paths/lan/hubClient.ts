import mqtt, { type MqttClient } from 'mqtt'
import {
  COMMAND_RESULT_TIMEOUT_MS, CommandTimeoutError, InspectBatch, Listeners, OutOfCallCommand, RefusedError, SignalToDevice,
  decodeTopicMessage, encode, refusedCredentials, topics,
  type CommandResult, type Role, type SignalToViewer, type ViewerTransport, type ViewerTransportEvents
} from '@doorbell/core'
import { ResumeHold } from './resumeHold'

export interface HubClientOptions {
  /** ws(s)://host/mqtt in a browser; mqtt:// works in Node too. */
  url: string
  homeId: string
  viewerId: string
  viewerName: string
  log?: (level: 'info' | 'warn' | 'error', message: string) => void
  /** Also receive every source's inspection batches (the inspector page). */
  watchInspection?: boolean
  /** From pairing: the member id (MQTT user name) and token (password). */
  auth: { memberId: string, token: string }
  /** The hub refused these credentials (the member was removed): the page forgets its pairing. */
  onUnauthorized?: (refusal: RefusedError<'credentials'>) => void
  /**
   * Subscribe to these devices' topics one by one (`{home}/{device}/{ring,state,presence,calls}`)
   * instead of the home-wide wildcard: the operator console. More can be added with `watchDevices`.
   */
  devices?: readonly string[]
  /**
   * Who signs in (Home passes its pairing's trust through). An operator's grant never covers the
   * home-wide wildcard (the broker answers 0x80), so an operator without `devices` subscribes to
   * its inbox only: the resident app sends operators to the console instead.
   */
  trust?: { readonly role: Role }
  /**
   * A persistent session under this id (`screenSession.ts`: one per member and browser install):
   * client id `viewer-{viewerId}-{session}`, `clean: false`, so the hub queues ring events for
   * this screen while it is away. Absent: a clean session of this tab's own (live events only).
   */
  session?: string
  /** After a resumed session, how long ring events wait for their doorbell's state (default 1.5 s). */
  resumeHoldMs?: number
}

export type HubEvents = ViewerTransportEvents & {
  inspect: (batch: InspectBatch) => void
  /** The broker refused this device's topics (SUBACK 0x80): not in this operator's zones. */
  refused: (deviceId: string) => void
  /** A device refused before is granted now (on a later connection: its zone changed). */
  granted: (deviceId: string) => void
  /** The home's signed list of replaced grants (retained; core/src/grants.ts): this screen fetches its new grant when named. */
  grants: (token: string) => void
}

/** The events a viewer follows for one device. */
export const deviceTopics = (home: string, device: string): string[] =>
  [topics.ring(home, device), topics.state(home, device), topics.presence(home, device), topics.calls(home, device)]

/** A SUBACK return code with the failure bit set (MQTT 3.1.1 0x80; 5.0 reason codes >= 0x80). */
export const isRefusal = (granted: number | { qos: number }): boolean => ((typeof granted === 'number' ? granted : granted.qos) & 0x80) !== 0

/**
 * The viewer's connection to the LAN hub: the home's events in, signaling both ways.
 * Every message is parsed by its schema before anyone sees it; a bad one is logged and dropped.
 */
export class HubClient implements ViewerTransport {
  readonly path = 'lan' as const
  readonly client: MqttClient
  readonly clientId: string
  private readonly listeners = new Listeners<HubEvents>()
  private readonly sessions = new Map<string, (message: SignalToViewer) => void>()
  /** Commands outside a call waiting for their result, by command id. */
  private readonly commands = new Map<string, (result: CommandResult) => void>()
  private readonly log: NonNullable<HubClientOptions['log']>
  /** Per-device mode (null: the home-wide wildcard), and which devices the broker refused. */
  private readonly devices: Set<string> | null
  private readonly refusedDevices = new Set<string>()
  private readonly hold: ResumeHold

  constructor (readonly o: HubClientOptions) {
    this.devices = o.devices ? new Set(o.devices) : o.trust?.role === 'operator' ? new Set() : null
    this.log = o.log ?? ((level, message) => { console[level](`[hub] ${message}`) })
    const tab = Math.random().toString(36).slice(2, 8)
    // A clean session is one per tab: two tabs of one resident must not kick each other off.
    this.clientId = `viewer-${o.viewerId}-${o.session ?? tab}`
    this.hold = new ResumeHold({
      holdMs: o.resumeHoldMs ?? 1500,
      ring: (ring) => { this.emit('ring', ring) },
      state: (state) => { this.emit('state', state) }
    })
    this.client = mqtt.connect(o.url, {
      clientId: this.clientId,
      username: o.auth.memberId,
      password: o.auth.token,
      clean: o.session === undefined,
      reconnectPeriod: 1000,
      connectTimeout: 5000
    })
    // The hub kept this screen's session: what it queued meanwhile comes right after the CONNACK,
    // before the retained states (those follow the SUBSCRIBE below). Its rings wait for their
    // doorbell's state, so a ring that ended while we were away shows as missed, never as ringing.
    // On the CONNACK itself: mqtt.js may hand over the queued messages before its 'connect' event.
    this.client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack' && packet.sessionPresent === true) this.hold.resume()
    })
    this.client.on('connect', () => {
      const inspection = o.watchInspection ? [topics.homeInspection(o.homeId)] : []
      const events = this.devices ? [] : topics.homeEvents(o.homeId)
      this.client.subscribe([...events, topics.viewerInbox(o.homeId, o.viewerId), topics.commandResults(o.homeId, o.viewerId), topics.grants(o.homeId), ...inspection], { qos: 1 }, (err) => {
        if (err) this.log('error', `subscribe failed: ${err.message}`)
      })
      for (const device of this.devices ?? []) this.subscribeDevice(device)
      this.emit('link', true)
    })
    this.client.on('close', () => { this.hold.release(); this.emit('link', false) })
    this.client.on('error', (err) => {
      // Removed from the home (or its access ended): retrying would only be refused again.
      if (refusedCredentials(err)) {
        const refusal = new RefusedError({ reason: 'credentials', message: 'the hub refused this screen\'s credentials' })
        this.log('error', refusal.message)
        this.client.end(true)
        o.onUnauthorized?.(refusal)
        return
      }
      this.log('warn', `hub connection: ${err.message}`)
    })
    this.client.on('message', (topic, payload) => { this.onMessage(topic, payload) })
  }

  get connected (): boolean { return this.client.connected }

  on<K extends keyof ViewerTransportEvents>(event: K, listener: ViewerTransportEvents[K]): () => void {
    return this.listeners.on(event, listener as HubEvents[K])
  }

  /** The devices whose topics the broker refused (per-device mode), as of the last SUBACKs. */
  get refused (): ReadonlySet<string> { return this.refusedDevices }

  /** A device's topics were refused by the broker (SUBACK 0x80): not in this operator's zones. */
  onRefused (listener: HubEvents['refused']): () => void {
    return this.listeners.on('refused', listener)
  }

  /** Per-device mode: follow these devices too (subscribed now if connected, and on every reconnect). */
  watchDevices (deviceIds: readonly string[]): void {
    if (!this.devices) throw new Error('watchDevices needs a HubClient made with `devices`')
    for (const id of deviceIds) {
      if (this.devices.has(id)) continue
      this.devices.add(id)
      if (this.client.connected) this.subscribeDevice(id)
    }
  }

  /**
   * One SUBSCRIBE per device, so each SUBACK says whether that device is allowed. A refusal keeps
   * the connection (MQTT-3.9.3); the device is listed as refused until a later SUBACK grants it.
   */
  private subscribeDevice (deviceId: string): void {
    this.client.subscribe(deviceTopics(this.o.homeId, deviceId), { qos: 1 }, (err, _granted, packet?: { granted: unknown[] }) => {
      // mqtt.js reports a 0x80 as an error (its `code`) and leaves the codes in the SUBACK packet.
      const codes = (packet?.granted ?? []) as Array<number | { qos: number }>
      const code = (err as { code?: unknown } | null)?.code
      if (codes.some(isRefusal) || (typeof code === 'number' && isRefusal(code))) {
        this.log('warn', `the hub refused the topics of ${deviceId} (not in this screen's zones)`)
        this.refusedDevices.add(deviceId)
        this.emit('refused', deviceId)
        return
      }
      if (err) { this.log('error', `subscribe to ${deviceId} failed: ${err.message}`); return }
      if (this.refusedDevices.delete(deviceId)) this.emit('granted', deviceId)
    })
  }

  /** A device refused before was granted by a later SUBACK. */
  onGranted (listener: HubEvents['granted']): () => void {
    return this.listeners.on('granted', listener)
  }

  onGrants (listener: HubEvents['grants']): () => void {
    return this.listeners.on('grants', listener)
  }

  /** Inspection batches (the inspector page), which only the hub carries. */
  onInspect (listener: HubEvents['inspect']): () => void {
    return this.listeners.on('inspect', listener)
  }

  private emit<K extends keyof HubEvents>(event: K, ...args: Parameters<HubEvents[K]>): void {
    this.listeners.emit(event, ...args)
  }

  private onMessage (topic: string, payload: Uint8Array): void {
    const decoded = decodeTopicMessage(topic, payload)
    if (!decoded.ok) {
      this.log('warn', `rejected a message: ${decoded.error.message}`)
      return
    }
    const m = decoded.value
    if (m.topic.home !== this.o.homeId) return
    switch (m.kind) {
      case 'ring': this.hold.ring(m.payload); break
      case 'snapshot': this.emit('snapshot', m.payload); break
      case 'state': this.hold.state(m.payload); break
      case 'presence': this.emit('presence', m.payload); break
      case 'calls': this.emit('call', m.payload); break
      case 'to-viewer':
        if (m.topic.viewer === this.o.viewerId) this.sessions.get(m.topic.session)?.(m.payload)
        break
      case 'inspect': this.emit('inspect', m.payload); break
      case 'command-result':
        if (m.topic.viewer === this.o.viewerId && m.payload.id !== null) this.commands.get(m.payload.id)?.(m.payload)
        break
      case 'grants': this.emit('grants', m.payload.list); break
      case 'to-device': break
      case 'command': break
    }
  }

  /** Receives what the device sends to one session. */
  onSession (sessionId: string, listener: (message: SignalToViewer) => void): () => void {
    this.sessions.set(sessionId, listener)
    return () => { this.sessions.delete(sessionId) }
  }

  /** QoS 0: inspection is for watching live. */
  publishInspect (batch: InspectBatch): void {
    if (this.client.connected) this.client.publish(topics.inspect(this.o.homeId, this.clientId), encode(InspectBatch, batch), { qos: 0 })
  }

  sendToDevice (deviceId: string, sessionId: string, message: SignalToDevice): void {
    this.client.publish(
      topics.session(this.o.homeId, deviceId, this.o.viewerId, sessionId, 'to-device'),
      encode(SignalToDevice, message),
      { qos: 1 }
    )
  }

  /**
   * Sends a signed command to a device outside a call (docs/commands.md) and resolves with the
   * device's result for it (matched by the command's id; a refusal is a result, not an error).
   * Rejects with `CommandTimeoutError` if none comes in time.
   */
  async sendCommand (deviceId: string, command: OutOfCallCommand, timeoutMs = COMMAND_RESULT_TIMEOUT_MS): Promise<CommandResult> {
    const payload = encode(OutOfCallCommand, command)
    return await new Promise<CommandResult>((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); this.commands.delete(command.id) }
      const timer = setTimeout(() => { done(); reject(new CommandTimeoutError(command.id, timeoutMs)) }, timeoutMs)
      this.commands.set(command.id, (result) => { done(); resolve(result) })
      this.client.publish(topics.command(this.o.homeId, deviceId, this.o.viewerId), payload, { qos: 1 }, (err) => {
        if (err) { done(); reject(err) }
      })
    })
  }

  async close (): Promise<void> {
    this.hold.release()
    await new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()))
  }
}
