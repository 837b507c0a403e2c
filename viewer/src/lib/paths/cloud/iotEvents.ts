import mqtt, { type IClientOptions } from 'mqtt'
import { cloudTopics, type AwsCredentials, type ViewerCloudConfig } from '@doorbell/core'
import { iotBaseUrl, presignIotUrl, DEFAULT_PRESIGN_EXPIRES_SECONDS } from './presign'

/** The viewer's events on the cloud path: AWS IoT Core, MQTT over WSS with a SigV4-presigned URL (re-signed for every reconnect). */

/** The part of mqtt.js's client this client uses. */
export interface MqttLike {
  readonly connected: boolean
  on(event: 'connect' | 'close', listener: () => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'message', listener: (topic: string, payload: Uint8Array) => void): unknown
  subscribe: (topics: string[], options: { qos: 1 }, callback: (error: Error | null, granted?: Array<{ topic: string, qos: number }>) => void) => unknown
  end: (force: boolean, options: object, callback: () => void) => unknown
}

export interface IotEventsOptions {
  /** Where IoT Core is; `devices` gives the topics unless `topics` does. */
  config: Pick<ViewerCloudConfig, 'region' | 'iotEndpoint' | 'iotWssUrl'> & { devices?: ViewerCloudConfig['devices'] }
  /** The topics to subscribe to (stock KVS doorbells' ring topics); default: every configured doorbell's events. */
  topics?: string[]
  credentials: AwsCredentials
  clientId: string
  log: (level: 'info' | 'warn' | 'error', message: string) => void
  createWebSocket?: ((url: string, protocols: string[]) => unknown) | undefined
  createMqtt?: ((url: string, options: IClientOptions) => MqttLike) | undefined
  reconnectPeriodMs?: number | undefined
  /** The connection came up (true) or was lost (false): once each way. */
  onLink: (up: boolean) => void
  /** Each message on the doorbells' event topics, as it came (the client parses it). */
  onMessage: (topic: string, payload: Uint8Array) => void
}

/** Connects at once, subscribes to every doorbell's events, reconnects by itself until `close`. */
export class IotEvents {
  private mqtt: MqttLike | null = null
  private signedUrl = ''
  private signedAt = 0
  private up = false
  private quiet = false
  private closed = false

  constructor (private readonly o: IotEventsOptions) {
    void this.connect()
  }

  /** The IoT connection is up (events flow). */
  get connected (): boolean { return this.mqtt?.connected ?? false }

  private async sign (): Promise<void> {
    const r = this.o
    const at = Date.now()
    const url = await presignIotUrl({
      ...(r.config.iotWssUrl !== undefined ? { wssUrl: r.config.iotWssUrl } : { endpoint: r.config.iotEndpoint }),
      region: r.config.region,
      credentials: r.credentials,
      now: at
    })
    if (at >= this.signedAt) { this.signedUrl = url; this.signedAt = at }
  }

  private resign (): void {
    this.sign().catch((err: Error) => { this.o.log('error', `could not sign the AWS IoT URL: ${err.message}`) })
  }

  private async connect (): Promise<void> {
    const r = this.o
    try {
      await this.sign()
    } catch (err) {
      this.o.log('error', `could not sign the AWS IoT URL: ${(err as Error).message}`)
      return
    }
    if (this.closed) return
    const ws = this.o.createWebSocket
    const options: IClientOptions = {
      clientId: this.o.clientId,
      // A persistent session for this tab's client: rings published during a short loss of the
      // connection are kept by IoT Core and delivered on reconnect (QoS 1).
      clean: false,
      resubscribe: false,
      reconnectPeriod: this.o.reconnectPeriodMs ?? 2000,
      connectTimeout: 10_000,
      // mqtt.js asks for the URL on every (re)connect, synchronously: it gets the newest signed one.
      // A new one is signed on every close (a reconnect comes reconnectPeriod later), and when the
      // one at hand is getting old; so an expired URL never blocks a reconnect for long.
      transformWsUrl: () => {
        if (Date.now() - this.signedAt > (DEFAULT_PRESIGN_EXPIRES_SECONDS - 60) * 1000) this.resign()
        return this.signedUrl
      },
      ...(ws ? { createWebsocket: (url: string, protocols: string[]) => ws(url, protocols), forceNativeWebSocket: true } : {})
    }
    const base = iotBaseUrl(r.config.iotWssUrl !== undefined ? { wssUrl: r.config.iotWssUrl } : { endpoint: r.config.iotEndpoint }).toString()
    const client = (this.o.createMqtt ?? ((url, opts) => mqtt.connect(url, opts)))(base, options)
    this.mqtt = client
    client.on('connect', () => {
      if (this.closed) return
      this.quiet = false
      const topics = r.topics ?? (r.config.devices ?? []).flatMap((d) => cloudTopics.events(d.thingName))
      client.subscribe(topics, { qos: 1 }, (err, granted) => {
        if (err) { this.o.log('error', `AWS IoT subscribe failed: ${err.message}`); return }
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic)
        if (refused.length > 0) this.o.log('error', `AWS IoT refused ${refused.join(', ')}: the credentials' policy must allow iot:Subscribe and iot:Receive on them`)
      })
      if (!this.up) { this.up = true; this.o.onLink(true) }
    })
    client.on('close', () => {
      if (this.closed) return
      this.resign()
      if (this.up) {
        this.up = false
        this.o.log('warn', 'lost the AWS IoT connection: reconnecting')
        this.o.onLink(false)
      } else if (!this.quiet) {
        // A browser does not say why a WebSocket failed; said once until the next connect.
        this.quiet = true
        this.o.log('warn', `cannot connect to AWS IoT at ${new URL(base).host} (check the IoT endpoint, the credentials and their policy, and the internet connection); retrying`)
      }
    })
    client.on('error', (err) => {
      if (this.closed || this.quiet) return
      // Repeats every reconnect while the cause lasts: said once until the next connect.
      this.quiet = true
      this.o.log('warn', `AWS IoT connection: ${err.message} (check the IoT endpoint, the credentials and their policy)`)
    })
    client.on('message', (topic, payload) => { if (!this.closed) this.o.onMessage(topic, payload) })
  }

  async close (): Promise<void> {
    this.closed = true
    const client = this.mqtt
    this.mqtt = null
    this.up = false
    if (client) await new Promise<void>((resolve) => { client.end(true, {}, () => { resolve() }) })
  }
}
