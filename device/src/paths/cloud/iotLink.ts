import { readFile } from 'node:fs/promises'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { createActor, type Actor, type InspectionEvent } from 'xstate'
import { BACKOFF, iotLinkMachine } from '@doorbell/machines'
import {
  CallRecord, DeviceState, IOT_MAX_PAYLOAD_BYTES, Listeners, Presence, RingEvent, SeedRing, SnapshotEvent, cloudTopics, encode, seedRingTopic,
  type CloudTopicKind, type Logger, type Unsubscribe
} from '@doorbell/core'

export interface IotLinkOptions {
  /** host or host:port of the account's iot:Data-ATS endpoint (port 8883 unless given). */
  iotEndpoint: string
  thingName: string
  certFile: string
  keyFile: string
  /** CA bundle (PEM) to trust instead of the system's; for stand-ins. */
  caFile?: string | undefined
  /** The doorbell's id, as its presence carries it. */
  deviceId: string
  log: Logger
  /** First retry after a lost connection (default 1 s); doubles on each failure up to maxReconnectMs (default 30 s). */
  minReconnectMs?: number
  maxReconnectMs?: number
  /** The device's inspection: the link's machine (`iotLink`) is shown in /inspector. */
  inspect?: ((event: InspectionEvent) => void) | undefined
  /**
   * `seedTopics`: every ring is also published to the seed's topic `doorbell/<channel>/ring` in the
   * seed's payload, so the seed's viewer (and ours, for a stock doorbell) is told. Null: not.
   */
  seedRingChannel?: string | null | undefined
}

type IotLinkEvents = {
  /** Connected to IoT Core (CONNACK). */
  up: () => void
  /** The connection was lost; mqtt.js is retrying. */
  down: () => void
}

/** How long stop() waits for IoT Core to take the "offline" presence before it cuts the connection. */
const STOP_GRACE_MS = 3000

/**
 * The device's link to AWS IoT Core: MQTT over mutual TLS with the thing certificate, client id
 * = thing name (an IoT policy usually requires it), persistent session (clean: false) and QoS 1,
 * so rings raised while IoT Core is unreachable stay in mqtt.js's outgoing queue and are delivered
 * on reconnect. The will marks the doorbell offline (retained) if the link dies without a goodbye.
 * It publishes only, under things/{thingName}/: ring, state (retained), presence (retained), calls;
 * with `seedTopics` each ring also on the seed's `doorbell/<channel>/ring` (core/src/kvsStock.ts).
 *
 * Retries start after 1 s and back off (doubling, with jitter) to 30 s while IoT Core stays
 * unreachable; the period is back to 1 s once connected. The retries are the iotLink machine's
 * (machines/src/iotLink.ts, the shared backoff): mqtt.js's own reconnect is off, and the machine
 * asks this client to reconnect, keeping its stores (the QoS 1 messages raised meanwhile).
 */
export class IotLink {
  private client: MqttClient | null = null
  private lastState: string | null = null
  /** Publishes made before start(): handed to the client when it exists. */
  private early: Array<{ kind: CloudTopicKind, payload: string, topic?: string }> = []
  private readonly listeners = new Listeners<IotLinkEvents>()
  private readonly minReconnectMs: number
  private readonly maxReconnectMs: number
  /** The reconnect lifecycle; null before start. */
  private actor: Actor<typeof iotLinkMachine> | null = null
  private up = false
  /** Connection errors since the last connect: the first few are logged, then every 20th. */
  private errors = 0
  private stopped = false

  constructor (private readonly o: IotLinkOptions) {
    this.minReconnectMs = o.minReconnectMs ?? 1000
    this.maxReconnectMs = Math.max(this.minReconnectMs, o.maxReconnectMs ?? 30_000)
  }

  /** mqtts://host:port */
  get url (): string {
    return `mqtts://${this.o.iotEndpoint.includes(':') ? this.o.iotEndpoint : `${this.o.iotEndpoint}:8883`}`
  }

  get connected (): boolean { return this.client?.connected === true }

  /** The next retry's wait and how many came before it since the link was last up (tests; the inspector shows the same). */
  get retry (): { attempt: number, waitMs: number } | null {
    const c = this.actor?.getSnapshot().context
    return c ? { attempt: c.attempt, waitMs: c.waitMs } : null
  }

  on<K extends keyof IotLinkEvents>(event: K, listener: IotLinkEvents[K]): Unsubscribe {
    return this.listeners.on(event, listener)
  }

  /**
   * Reads the certificate files and starts connecting; resolves at once (it does not wait for IoT
   * Core: a doorbell starts without internet). Rejects only when the files cannot be read.
   */
  async start (): Promise<void> {
    if (this.client || this.stopped) return
    const [cert, key, ca] = await Promise.all([
      readFile(this.o.certFile, 'utf8'),
      readFile(this.o.keyFile, 'utf8'),
      this.o.caFile ? readFile(this.o.caFile, 'utf8') : Promise.resolve(undefined)
    ]).catch((err: Error) => { throw new Error(`IoT Core: could not read the thing's certificate, key or CA: ${err.message}`) })
    if (this.stopped) return
    const url = new URL(this.url)
    const options: IClientOptions = {
      clientId: this.o.thingName,
      cert,
      key,
      ...(ca !== undefined ? { ca } : {}),
      // IoT Core on port 443 speaks MQTT only to clients that ask for it by ALPN.
      ...(url.port === '443' ? { ALPNProtocols: ['x-amzn-mqtt-ca'] } : {}),
      protocolVersion: 4,
      clean: false,
      keepalive: 60,
      // The iotLink machine reconnects (the shared backoff), not mqtt.js.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      queueQoSZero: false,
      will: {
        topic: cloudTopics.of(this.o.thingName, 'presence'),
        payload: Buffer.from(this.presence(false)),
        qos: 1,
        retain: true
      }
    }
    const client = mqtt.connect(this.url, options)
    this.client = client
    const machine = iotLinkMachine.provide({
      actions: {
        // Keeping the stores: a plain reconnect() would drop the QoS 1 messages waiting in them.
        reconnect: () => { if (!this.stopped) client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore }) },
        connected: () => {
          this.publish('presence', this.presence(true), true)
          if (this.lastState !== null) this.publish('state', this.lastState, true)
          this.up = true
          this.emit('up')
        },
        lost: () => {
          this.up = false
          if (!this.stopped) this.o.log.warn('lost AWS IoT Core; retrying', { url: this.url })
          this.emit('down')
        }
      }
    })
    const actor = createActor(machine, {
      input: { backoff: { ...BACKOFF.iot, firstMs: this.minReconnectMs, maxMs: this.maxReconnectMs } },
      id: 'iotLink',
      systemId: 'iotLink',
      ...(this.o.inspect ? { inspect: this.o.inspect } : {})
    })
    this.actor = actor
    client.on('connect', (ack) => {
      this.errors = 0;
      (client.stream as { setNoDelay?: (on: boolean) => unknown }).setNoDelay?.(true)
      this.o.log.info('connected to AWS IoT Core', { url: this.url, thing: this.o.thingName, sessionPresent: ack.sessionPresent })
      actor.send({ type: 'CONNECTED' })
    })
    client.on('close', () => { if (!this.stopped) actor.send({ type: 'CLOSED' }) })
    client.on('error', (err) => {
      this.errors++
      if (this.errors > 3 && this.errors % 20 !== 0) return
      const more = this.errors === 3 ? { note: 'from now on every 20th error is logged' } : this.errors > 3 ? { errors: this.errors } : {}
      // CONNACK 4/5: IoT Core refused the certificate or the client id (policy).
      const code = (err as { code?: number | string }).code
      if (code === 4 || code === 5) this.o.log.error('AWS IoT Core refused this doorbell (certificate inactive, or its policy does not allow connecting as this thing)', { error: err.message, ...more })
      else this.o.log.warn('AWS IoT Core connection error', { error: err.message, ...(code !== undefined ? { code } : {}), ...more })
    })
    actor.start()
    for (const e of this.early) this.publish(e.kind, e.payload, false, e.topic)
    this.early = []
  }

  publishRing (ring: RingEvent): void {
    this.publish('ring', encode(RingEvent, ring), false)
    const channel = this.o.seedRingChannel
    if (channel) this.publish('ring', encode(SeedRing, { event: 'ring', channel, timestamp: Math.floor(ring.at / 1000) }), false, seedRingTopic(channel))
  }

  /** The visitor's picture after the ring: its own message (at most ~88 KB, under IoT Core's 128 KB). */
  publishSnapshot (snapshot: SnapshotEvent): void {
    const payload = encode(SnapshotEvent, snapshot)
    if (Buffer.byteLength(payload) > IOT_MAX_PAYLOAD_BYTES) {
      this.o.log.warn('a snapshot is over IoT Core\'s message limit: not sent on the cloud path', { ringId: snapshot.ringId, bytes: Buffer.byteLength(payload) })
      return
    }
    this.publish('snapshot', payload, false)
  }

  /** Retained, and published again on every connect (IoT Core may have dropped it, or missed the last change). */
  publishState (state: DeviceState): void {
    this.lastState = encode(DeviceState, state)
    // While down, only the latest state matters: it goes out on connect, not every change queued.
    if (this.client && !this.client.connected) return
    this.publish('state', this.lastState, true)
  }

  publishCall (record: CallRecord): void {
    this.publish('calls', encode(CallRecord, record), false)
  }

  /** Says "offline" (retained) when connected, then ends; the will covers crashes. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.actor?.stop()
    const client = this.client
    if (!client) return
    await new Promise<void>((resolve) => {
      const end = (force: boolean): void => { client.end(force, {}, () => resolve()) }
      if (!client.connected) { end(true); return }
      const grace = setTimeout(() => { end(true) }, STOP_GRACE_MS)
      client.publish(cloudTopics.of(this.o.thingName, 'presence'), this.presence(false), { qos: 1, retain: true }, () => {
        clearTimeout(grace)
        end(false)
      })
    })
  }

  private presence (online: boolean): string {
    return encode(Presence, { deviceId: this.o.deviceId, online, at: Date.now() })
  }

  /** QoS 1 always: while disconnected mqtt.js keeps the message and sends it on reconnect. */
  private publish (kind: CloudTopicKind, payload: string, retain: boolean, topic?: string): void {
    if (this.stopped) return
    if (!this.client) {
      if (kind === 'state') return // kept in lastState, sent on connect
      this.early.push({ kind, payload, ...(topic !== undefined ? { topic } : {}) })
      return
    }
    this.client.publish(topic ?? cloudTopics.of(this.o.thingName, kind), payload, { qos: 1, retain }, (err) => {
      if (err && !this.stopped) this.o.log.warn('AWS IoT Core did not take a message', { kind, ...(topic !== undefined ? { topic } : {}), error: err.message })
    })
  }

  private emit (event: keyof IotLinkEvents): void {
    try {
      this.listeners.emit(event)
    } catch (err) {
      this.o.log.error('an IoT link listener threw', { event, error: (err as Error).message })
    }
  }
}
