import type { IClientOptions } from 'mqtt'
import { Listeners, SeedRing, stockChannelName, type AwsCredentials, type StockDoorbell } from '@doorbell/core'
import { IotEvents, type MqttLike } from './iotEvents'
import { StockCall, type StockCallOptions } from './stockCall'
import type { CloudLog } from './cloudClient'

/**
 * The stock KVS doorbells added to this viewer (the seed's doorbell: a KVS C master on a Pi or an
 * AmebaPro2): their rings from AWS IoT Core on each one's ring topic (the seed's payload
 * `{"event":"ring","channel":"<channel>","timestamp":<unix seconds>}`, checked by `SeedRing`; a
 * malformed one is ignored with a logged reason), and a `StockCall` per answer. The IoT connection
 * is the cloud path's own (`IotEvents`, one per IoT endpoint), with the resident's AWS keys. Our
 * hub is never asked anything.
 */

export interface StockRing {
  doorbellId: string
  /** The seed's timestamp, in milliseconds. */
  at: number
  /** When this screen heard it. */
  heardAt: number
}

export interface StockDoorbellsEvents {
  ring: (ring: StockRing) => void
  /** The IoT connection of at least one endpoint is up (true) or all are down (false). */
  link: (up: boolean) => void
}

export interface StockDoorbellsOptions {
  doorbells: StockDoorbell[]
  credentials: AwsCredentials
  /** This viewer's id: its KVS client ids start with it. */
  viewerId: string
  log?: CloudLog
  createWebSocket?: (url: string, protocols: string[]) => unknown
  createMqtt?: (url: string, options: IClientOptions) => MqttLike
  reconnectPeriodMs?: number
  /** Seams for the calls (tests): the peer connection, the SDK client, the control plane. */
  call?: Partial<Pick<StockCallOptions, 'createPeerConnection' | 'createSignalingClient' | 'controlPlane' | 'openTimeoutMs' | 'inspect'>>
}

/** Ring payloads larger than this are not the seed's (its ring is ~70 bytes). */
const MAX_RING_BYTES = 1024

export class StockDoorbells {
  private readonly listeners = new Listeners<StockDoorbellsEvents>()
  private readonly iot: IotEvents[] = []
  private readonly up = new Set<IotEvents>()
  private readonly log: CloudLog
  private closed = false

  constructor (private readonly o: StockDoorbellsOptions) {
    this.log = o.log ?? ((level, message) => { console[level](`[kvs doorbells] ${message}`) })
    // One IoT connection per endpoint (a home's stock doorbells usually share one account).
    const byEndpoint = new Map<string, StockDoorbell[]>()
    for (const d of o.doorbells) {
      const key = JSON.stringify([d.region, d.iotEndpoint, d.iotWssUrl ?? null])
      byEndpoint.set(key, [...(byEndpoint.get(key) ?? []), d])
    }
    let n = 0
    for (const group of byEndpoint.values()) {
      const first = group[0]!
      const events: IotEvents = new IotEvents({
        config: { region: first.region, iotEndpoint: first.iotEndpoint, ...(first.iotWssUrl !== undefined ? { iotWssUrl: first.iotWssUrl } : {}) },
        topics: [...new Set(group.map((d) => d.ringTopic))],
        credentials: o.credentials,
        clientId: `viewer-${o.viewerId}-kvs${n++}-${Math.random().toString(36).slice(2, 8)}`.slice(0, 128),
        log: this.log,
        createWebSocket: o.createWebSocket,
        createMqtt: o.createMqtt,
        reconnectPeriodMs: o.reconnectPeriodMs,
        onLink: (isUp) => {
          const before = this.up.size > 0
          if (isUp) this.up.add(events); else this.up.delete(events)
          if (before !== this.up.size > 0) this.emit('link', this.up.size > 0)
        },
        onMessage: (topic, payload) => { this.onMessage(group, topic, payload) }
      })
      this.iot.push(events)
    }
  }

  get connected (): boolean { return this.iot.some((i) => i.connected) }

  on<K extends keyof StockDoorbellsEvents>(event: K, listener: StockDoorbellsEvents[K]): () => void { return this.listeners.on(event, listener) }

  /** A call to this stock doorbell, not yet started (listen first, then `start()`). */
  call (doorbellId: string): StockCall | null {
    const doorbell = this.o.doorbells.find((d) => d.id === doorbellId)
    if (doorbell === undefined || this.closed) return null
    return new StockCall({
      doorbell,
      credentials: this.o.credentials,
      clientId: `viewer-${this.o.viewerId}-${Math.random().toString(36).slice(2, 8)}`.slice(0, 256),
      log: this.log,
      ...this.o.call
    })
  }

  async close (): Promise<void> {
    this.closed = true
    await Promise.all(this.iot.map(async (i) => { await i.close() }))
  }

  private emit<K extends keyof StockDoorbellsEvents>(event: K, ...args: Parameters<StockDoorbellsEvents[K]>): void {
    if (this.closed) return
    try { this.listeners.emit(event, ...args) } catch (err) { this.log('error', `a ${event} listener threw: ${(err as Error).message}`) }
  }

  /** A message on a ring topic: the seed's ring for the doorbell whose channel it names, or ignored with the reason. */
  private onMessage (group: StockDoorbell[], topic: string, payload: Uint8Array): void {
    if (this.closed) return
    const on = group.filter((d) => d.ringTopic === topic)
    if (on.length === 0) { this.log('warn', `ignored a message on ${topic}: no KVS doorbell rings there`); return }
    if (payload.byteLength > MAX_RING_BYTES) { this.log('warn', `ignored a ring on ${topic}: ${payload.byteLength} bytes is not the seed's ring`); return }
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
    } catch {
      this.log('warn', `ignored a ring on ${topic}: not JSON (expected {"event":"ring","channel":"<channel>","timestamp":<unix seconds>})`)
      return
    }
    const ring = SeedRing.safeParse(json)
    if (!ring.success) {
      const why = ring.error.issues.slice(0, 2).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')
      this.log('warn', `ignored a malformed ring on ${topic} (${why})`)
      return
    }
    const doorbell = on.find((d) => stockChannelName(d.channel) === ring.data.channel)
    if (doorbell === undefined) { this.log('warn', `ignored a ring on ${topic}: it names the channel ${ring.data.channel}, not this doorbell's`); return }
    this.log('info', `${doorbell.name} rang (stock KVS doorbell)`)
    this.emit('ring', { doorbellId: doorbell.id, at: ring.data.timestamp * 1000, heardAt: Date.now() })
  }
}
