import mqtt, { type MqttClient } from 'mqtt'
import {
  CallRecord, CommandResult, DeviceState, DoorAttempt, InspectBatch, Listeners, Presence, RingEvent, SignalToViewer, SnapshotEvent,
  decodeTopicMessage, encode, parseTopic, refusedCredentials, topics,
  type DeviceTransport, type DirectReach, type Logger, type SignalToDevice, type SignedReplies
} from '@doorbell/core'
import { HubOutbox, type HeldMessage } from './hubOutbox'

export interface MqttLinkOptions {
  /** `mqtts://hub:8883` from Node; `wss://hub/mqtt` from a browser (a camera node). */
  url: string
  homeId: string
  deviceId: string
  /** Told in its presence (and its will), so a screen can name a doorbell that is offline. */
  deviceName?: string
  log: Logger
  /** The device's direct addresses, told to viewers in its presence while the hub is up. */
  direct?: () => DirectReach | undefined
  /**
   * From pairing: the member id and token (MQTT user name and password), the home CA for mqtts/wss
   * from Node. A browser has no say over TLS trust: it passes null and relies on its own store.
   */
  auth: { memberId: string, token: string, ca: string | null }
  /** How long a stop waits for the hub to take the goodbye before it closes anyway (default 3 s). */
  stopGraceMs?: number
  /**
   * The doorbell's queue of events for the hub, shared by the links to each address it moves to
   * (and filled before the first one exists); a link of its own when absent.
   */
  outbox?: HubOutbox
}

type LinkEvents = {
  signal: (viewerId: string, message: SignalToDevice) => void
  /** The home's signed revocation list (retained on the hub), and the owner's signed per-doorbell stock KVS settings riding with it. */
  revocations: (token: string, stockSettings: string[]) => void
  /** The owner's signed quick replies (retained on the hub). */
  replies: (signed: SignedReplies) => void
  /** The home's signed list of replaced grants (retained on the hub; core/src/grants.ts). */
  grants: (token: string) => void
  /** A command outside a call, from `viewerId` (the broker binds the topic's level to the sender), not yet parsed. */
  command: (viewerId: string, payload: Uint8Array) => void
}

/**
 * A device's link to the LAN hub: the Node doorbell's and the browser camera node's alike
 * (mqtt.js over TCP/TLS or WebSocket; strings and bytes only, no Node Buffer).
 *
 * Persistent session (clean: false) and QoS 1, so offers sent while the device was away arrive
 * (one older than the proof's 30 s freshness is refused as stale, with a bye that says it came
 * late). Rings, pictures and call records raised while the hub is away wait in the
 * doorbell's own `HubOutbox` and are handed to mqtt.js only on a live connection, after the
 * presence and the state (so a screen learns whether the ring is still on before the ring
 * itself). What mqtt.js was sending when the connection dropped it sends again itself; what it
 * never acknowledged when this link stops goes back to the outbox for the next link. The will
 * marks the device offline.
 */
export class MqttLink implements DeviceTransport {
  readonly path = 'lan' as const
  readonly client: MqttClient
  private lastState: string | null = null
  private readonly listeners = new Listeners<LinkEvents>()
  readonly outbox: HubOutbox
  /** Handed to mqtt.js, not yet acknowledged by the hub. */
  private readonly inFlight = new Set<HeldMessage>()
  /** Packet ids of state messages the hub has not acknowledged yet (see the 'close' handler). */
  private readonly statesInFlight = new Set<number>()
  private stopped = false
  private readonly unwake: () => void

  constructor (private readonly o: MqttLinkOptions) {
    this.outbox = o.outbox ?? new HubOutbox(o.log)
    this.unwake = this.outbox.onHeld(() => { this.flush() })
    const presence = topics.presence(o.homeId, o.deviceId)
    this.client = mqtt.connect(o.url, {
      // The hub's gate lets a device member in only under this client id.
      clientId: `device-${o.deviceId}`,
      username: o.auth.memberId,
      password: o.auth.token,
      ...(o.auth.ca ? { ca: o.auth.ca } : {}),
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      queueQoSZero: false,
      will: {
        topic: presence,
        payload: encode(Presence, this.presence(false)),
        qos: 1,
        retain: true
      }
    })
    this.client.on('connect', (ack) => {
      // No Nagle: a ring published right after another small packet (its state, a PUBACK) must not
      // wait up to 40 ms for the hub's delayed ACK. mqtt.js does not set it; each reconnect is a new
      // socket. Only Node's sockets have it (a browser's WebSocket has no such switch).
      (this.client.stream as { setNoDelay?: (on: boolean) => unknown } | undefined)?.setNoDelay?.(true)
      o.log.info('connected to hub', { url: o.url, sessionPresent: ack.sessionPresent })
      this.publishPresence()
      if (this.lastState !== null) this.client.publish(topics.state(o.homeId, o.deviceId), this.lastState, { qos: 1, retain: true })
      this.flush()
      this.client.subscribe([topics.deviceInbox(o.homeId, o.deviceId), topics.commandInbox(o.homeId, o.deviceId), topics.revocations(o.homeId), topics.replies(o.homeId), topics.grants(o.homeId)], { qos: 1 }, (err) => {
        if (err) o.log.error('subscribe failed', { error: err.message })
      })
    })
    // A state the hub never acknowledged must not be sent again by mqtt.js after a reconnect: it
    // is old by then (a "ringing" for a ring that ended during the outage would alert the screens),
    // and the current one follows every connect anyway.
    const state = topics.state(o.homeId, o.deviceId)
    this.client.on('packetsend', (packet) => {
      if (packet.cmd === 'publish' && packet.topic === state && packet.messageId !== undefined) this.statesInFlight.add(packet.messageId)
    })
    this.client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && packet.messageId !== undefined) this.statesInFlight.delete(packet.messageId)
    })
    this.client.on('close', () => {
      for (const id of this.statesInFlight) this.client.removeOutgoingMessage(id)
      this.statesInFlight.clear()
    })
    this.client.on('offline', () => { o.log.warn('hub unreachable, retrying', { url: o.url }) })
    this.client.on('error', (err) => {
      // CONNACK 4/5 (MQTT 3.1.1) or 0x86/0x87 (5.0): the hub refused our credentials: revoked, or paired elsewhere.
      if (refusedCredentials(err)) o.log.error('the hub refused this device\'s credentials: pair it again', { error: err.message })
      else o.log.warn('hub connection error', { error: err.message })
    })
    this.client.on('message', (topic, payload) => { this.onMessage(topic, payload) })
  }

  /** Every incoming message is parsed before anything acts on it. */
  private onMessage (topic: string, payload: Uint8Array): void {
    // A command is parsed by the answering side's command kinds, which answer even a malformed one
    // (a result its sender can match, and an audit record), as the data channel does.
    const t = parseTopic(topic)
    if (t?.kind === 'command' && t.home === this.o.homeId && t.device === this.o.deviceId) {
      this.listeners.emit('command', t.viewer, payload)
      return
    }
    const decoded = decodeTopicMessage(topic, payload)
    if (!decoded.ok) {
      this.o.log.warn('rejected a message', { error: decoded.error.message, code: decoded.error.code })
      return
    }
    const m = decoded.value
    if (m.kind === 'revocations' && m.topic.home === this.o.homeId) {
      this.listeners.emit('revocations', m.payload.list, m.payload.stockSettings ?? [])
      return
    }
    if (m.kind === 'replies' && m.topic.home === this.o.homeId) {
      this.listeners.emit('replies', m.payload.signed)
      return
    }
    if (m.kind === 'grants' && m.topic.home === this.o.homeId) {
      this.listeners.emit('grants', m.payload.list)
      return
    }
    if (m.kind !== 'to-device' || m.topic.device !== this.o.deviceId || m.topic.home !== this.o.homeId) {
      this.o.log.warn('ignored a message not addressed to this device', { topic })
      return
    }
    this.listeners.emit('signal', m.topic.viewer, m.payload)
  }

  private presence (online: boolean): Presence {
    return { deviceId: this.o.deviceId, ...(this.o.deviceName !== undefined ? { deviceName: this.o.deviceName } : {}), online, at: Date.now() }
  }

  get url (): string { return this.o.url }

  onSignal (listener: (viewerId: string, message: SignalToDevice) => void): () => void {
    return this.listeners.on('signal', listener)
  }

  onRevocations (listener: (token: string, stockSettings: string[]) => void): () => void {
    return this.listeners.on('revocations', listener)
  }

  onReplies (listener: (signed: SignedReplies) => void): () => void {
    return this.listeners.on('replies', listener)
  }

  onGrants (listener: (token: string) => void): () => void {
    return this.listeners.on('grants', listener)
  }

  onCommand (listener: (viewerId: string, payload: Uint8Array) => void): () => void {
    return this.listeners.on('command', listener)
  }

  /** The result of `viewerId`'s command outside a call, on that member's result topic (QoS 1, never retained). */
  publishCommandResult (viewerId: string, result: CommandResult): void {
    this.client.publish(topics.commandResult(this.o.homeId, this.o.deviceId, viewerId), encode(CommandResult, result), { qos: 1 })
  }

  /** Resolves when the hub has the attempt (PUBACK); rejects while the hub is away, so the outbox keeps it. */
  async publishAudit (attempt: DoorAttempt): Promise<void> {
    if (!this.client.connected) throw new Error('the hub is not connected')
    await new Promise<void>((resolve, reject) => {
      this.client.publish(topics.audit(this.o.homeId, this.o.deviceId), encode(DoorAttempt, attempt), { qos: 1 }, (err) => { if (err) reject(err); else resolve() })
    })
  }

  /** Online, with the direct addresses (retained: a viewer that connects later learns them too). */
  publishPresence (): void {
    const direct = this.o.direct?.()
    this.client.publish(
      topics.presence(this.o.homeId, this.o.deviceId),
      encode(Presence, { ...this.presence(true), ...(direct ? { direct } : {}) }),
      { qos: 1, retain: true }
    )
  }

  async connected (signal?: AbortSignal): Promise<void> {
    if (this.client.connected) return
    await new Promise<void>((resolve, reject) => {
      this.client.once('connect', () => resolve())
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
    })
  }

  /** A QoS 1 event: into the outbox, then out at once if the hub is connected. */
  private send (topic: string, payload: string): void {
    this.outbox.add(topic, payload)
  }

  /** Hands what the outbox holds to mqtt.js, oldest first: only on a live connection (see the class comment). */
  private flush (): void {
    if (this.stopped || !this.client.connected) return
    for (const m of this.outbox.take()) {
      this.inFlight.add(m)
      this.client.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        if (!this.inFlight.delete(m)) return // returned to the outbox when this link stopped
        // mqtt.js gave up on it (the connection closed before it went out): the next connection sends it.
        if (err) this.outbox.hold(m)
      })
    }
  }

  publishRing (ring: RingEvent): void {
    this.send(topics.ring(this.o.homeId, this.o.deviceId), encode(RingEvent, ring))
  }

  /** The visitor's picture, its own QoS 1 message after the ring (the ring is never held for it). */
  publishSnapshot (snapshot: SnapshotEvent): void {
    this.send(topics.snapshot(this.o.homeId, this.o.deviceId), encode(SnapshotEvent, snapshot))
  }

  /** Retained: only the newest matters, so while the hub is away it is kept here and sent on connect. */
  publishState (state: DeviceState): void {
    this.lastState = encode(DeviceState, state)
    if (this.client.connected) this.client.publish(topics.state(this.o.homeId, this.o.deviceId), this.lastState, { qos: 1, retain: true })
  }

  publishCall (record: CallRecord): void {
    this.send(topics.calls(this.o.homeId, this.o.deviceId), encode(CallRecord, record))
  }

  /** QoS 0: inspection is for watching live; a lost batch is not worth a retry. */
  publishInspect (batch: InspectBatch): void {
    if (this.client.connected) this.client.publish(topics.inspect(this.o.homeId, this.o.deviceId), encode(InspectBatch, batch), { qos: 0 })
  }

  /**
   * Signaling goes out on a live connection only, never held: an answer or a bye is useless after
   * an outage (the screen's call has given up by then), and held it would push rings out of the
   * outbox's bound. Not handed to mqtt.js while offline either (its offline store is what the
   * outbox exists to avoid).
   */
  sendToViewer (viewerId: string, sessionId: string, message: SignalToViewer): void {
    if (this.stopped || !this.client.connected) {
      this.o.log.info('the hub is away: signaling for a call not sent', { viewer: viewerId, session: sessionId, type: message.type })
      return
    }
    this.client.publish(topics.session(this.o.homeId, this.o.deviceId, viewerId, sessionId, 'to-viewer'), encode(SignalToViewer, message), { qos: 1 })
  }

  async stop (): Promise<void> {
    // What this hub never acknowledged goes back to the outbox: the next link (a hub at a new
    // address) sends it. One the old hub did take may then arrive twice; screens know a ring by its id.
    this.stopped = true
    this.unwake()
    for (const m of this.inFlight) this.outbox.hold(m)
    this.inFlight.clear()
    // A clean stop says goodbye itself; the will covers crashes. A hub that takes the goodbye but
    // never acknowledges it must not hold the doorbell's stop (and the modules after it) for ever.
    await new Promise<void>((resolve) => {
      let ended = false
      const end = (force: boolean): void => {
        if (ended) return
        ended = true
        this.client.end(force, {}, () => resolve())
      }
      if (!this.client.connected) { end(true); return }
      const grace = setTimeout(() => { end(true) }, this.o.stopGraceMs ?? 3000)
      this.client.publish(topics.presence(this.o.homeId, this.o.deviceId), encode(Presence, this.presence(false)), { qos: 1, retain: true }, () => {
        clearTimeout(grace)
        end(false)
      })
    })
  }
}
