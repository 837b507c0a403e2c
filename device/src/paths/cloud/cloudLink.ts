import type { RTCIceServer } from 'werift'
import type { InspectionEvent } from 'xstate'
import {
  type CallRecord, type CommandResult, type KeptReadFrame, type KeptReadRequest, type DismissDirectAnswer, type DismissDirectRequest, type DeviceCloudConfig, type DeviceState, type DeviceTransport, type Logger,
  type RepliesReadAnswer, type RepliesReadRequest, type RingEvent, type SignalToDevice, type SnapshotEvent, type SignalToViewer, type Unsubscribe
} from '@doorbell/core'
import { IotCredentials } from './credentials'
import { IotLink, type IotLinkOptions } from './iotLink'
import { KvsMaster, type KvsMasterOptions } from './kvsMaster'
import { kvsCommands } from './kvsCommands'
import { kvsKeptReads, type KvsKeptReadHandler } from './kvsKeptReads'
import type { SenderLimit } from '../senderLimit'
import { StockViewers, type StockViewersOptions } from './stockViewers'

export interface CloudLinkDeps {
  deviceId: string
  log: Logger
  /** The device's inspection: the KVS master's and the IoT link's machines are shown in /inspector. */
  inspect?: ((event: InspectionEvent) => void) | undefined
  /** Test seams and tuning, passed through. */
  iot?: Pick<IotLinkOptions, 'minReconnectMs' | 'maxReconnectMs'>
  /** Answer stock KVS viewers (plain SDP, trickle ICE, `commands` channel) with this media, lock and audit; absent: their messages are dropped. */
  /** `acceptUnsignedOpenDoor`: the owner's signed setting (stockSetting.ts); default the config's. */
  stock?: Pick<StockViewersOptions, 'peers' | 'lock' | 'audit'> & Partial<Pick<StockViewersOptions, 'maxViewers' | 'connectTimeoutMs' | 'acceptUnsignedOpenDoor'>>
  kvs?: Pick<KvsMasterOptions, 'backoff' | 'openTimeoutMs' | 'idleRenewSeconds' | 'iceRefreshMarginSeconds' | 'stunUrl' | 'createSignalingClient' | 'controlPlane'>
  /** Commands outside a call on the KVS channel (a quick reply from a ring banner away from home: kvsCommands.ts); absent: they are dropped as unreadable signaling. */
  commands?: (viewerId: string, payload: string) => Promise<CommandResult>
  /** A ring dismissed from a screen away from home: the doorbell's dismissal handler (../dismissal.ts), as on the direct path; absent: refused. Needs `commands`. */
  dismiss?: (request: DismissDirectRequest) => Promise<DismissDirectAnswer>
  /** A read of the rings the doorbell keeps from a screen away from home: the doorbell's one kept-read check (../keptRead.ts); absent: dropped as unreadable signaling. */
  keptReads?: (request: KeptReadRequest, max: number) => Promise<KeptReadFrame[]>
  /** A read of the doorbell's quick replies from a screen away from home (../repliesRead.ts), as on the direct path; absent: refused. Needs `commands`. */
  replies?: (request: RepliesReadRequest) => Promise<RepliesReadAnswer>
  /** Commands, dismissals and reads one KVS viewer may send in a window (../senderLimit.ts); default 20 in 10 s. */
  commandLimit?: SenderLimit | undefined
}

/**
 * The cloud path, device side: events to AWS IoT Core (IotLink), a call's offer and answer over
 * the doorbell's KVS signaling channel (KvsMaster, with AWS credentials from the IoT credentials
 * provider, CredentialsProvider). What each half does while the cloud is unreachable:
 * rings, states and call records are queued by mqtt.js (QoS 1) and delivered on reconnect;
 * messages to viewers are dropped (the call machines time out).
 */
export class CloudLink implements DeviceTransport {
  readonly path = 'cloud' as const
  readonly credentials: IotCredentials
  readonly iot: IotLink
  readonly kvs: KvsMaster
  /** Stock KVS viewers on the channel; null without `deps.stock`. */
  readonly stock: StockViewers | null
  private readonly keptReads: KvsKeptReadHandler | null = null
  private stopped = false

  constructor (readonly config: DeviceCloudConfig, deps: CloudLinkDeps) {
    const log = deps.log
    this.credentials = new IotCredentials({
      credentialsEndpoint: config.credentialsEndpoint,
      roleAlias: config.roleAlias,
      thingName: config.thingName,
      certFile: config.certFile,
      keyFile: config.keyFile,
      caFile: config.caFile,
      log: log.child('aws-credentials')
    })
    this.iot = new IotLink({
      iotEndpoint: config.iotEndpoint,
      thingName: config.thingName,
      certFile: config.certFile,
      keyFile: config.keyFile,
      caFile: config.caFile,
      deviceId: deps.deviceId,
      seedRingChannel: config.seedTopics ? config.channelName : null,
      log: log.child('iot'),
      ...(deps.inspect ? { inspect: deps.inspect } : {}),
      ...deps.iot
    })
    this.kvs = new KvsMaster({
      region: config.region,
      channelName: config.channelName,
      kvsEndpoint: config.kvsEndpoint,
      caFile: config.caFile,
      renewAfterSeconds: config.renewAfterSeconds,
      credentials: this.credentials,
      log: log.child('kvs'),
      ...(deps.inspect ? { inspect: deps.inspect } : {}),
      ...deps.kvs
    })
    this.stock = deps.stock
      ? new StockViewers({
        acceptUnsignedOpenDoor: config.acceptUnsignedOpenDoor,
        ...deps.stock,
        deviceId: deps.deviceId,
        send: (viewerId, action, payload) => this.kvs.sendStock(viewerId, action, payload),
        log: log.child('kvs-stock')
      })
      : null
    const take = deps.commands
    if (take) this.kvs.handleCommands(kvsCommands({ take, ...(deps.dismiss ? { dismiss: deps.dismiss } : {}), limit: deps.commandLimit, ...(deps.replies ? { replies: deps.replies } : {}), send: (viewerId, payload) => this.kvs.sendStock(viewerId, 'SDP_ANSWER', payload), log: log.child('kvs-commands') }))
    if (deps.keptReads) {
      this.keptReads = kvsKeptReads({ read: deps.keptReads, send: (viewerId, payload) => this.kvs.sendStock(viewerId, 'SDP_ANSWER', payload), log: log.child('kvs-kept') })
      this.kvs.handleKeptReads(this.keptReads)
    }
    if (this.stock) {
      this.kvs.handleStock(this.stock)
      if (config.acceptUnsignedOpenDoor) log.warn('acceptUnsignedOpenDoor is on: anyone with access to this doorbell\'s KVS channel can open the door, and no person is named in the audit log')
    }
  }

  get connected (): { iot: boolean, kvs: boolean } {
    return { iot: this.iot.connected, kvs: this.kvs.connected }
  }

  /**
   * Starts both halves connecting and resolves without waiting for the cloud (a doorbell starts
   * without internet). Rejects only when a certificate, key or CA file cannot be read.
   */
  async start (): Promise<void> {
    try {
      await Promise.all([this.iot.start(), this.kvs.start()])
    } catch (err) {
      // Half a cloud path is no use: nothing keeps retrying in the background.
      await this.stop()
      throw err
    }
  }

  /** For a cloud session's peer connection: KVS's STUN and TURN servers (last known). */
  iceServers (): RTCIceServer[] { return this.kvs.iceServers() }

  publishRing (ring: RingEvent): void { this.iot.publishRing(ring) }
  publishSnapshot (snapshot: SnapshotEvent): void { this.iot.publishSnapshot(snapshot) }
  publishState (state: DeviceState): void { this.iot.publishState(state) }
  publishCall (record: CallRecord): void { this.iot.publishCall(record) }

  sendToViewer (viewerId: string, sessionId: string, message: SignalToViewer): void {
    this.kvs.sendToViewer(viewerId, sessionId, message)
  }

  onSignal (listener: (viewerId: string, message: SignalToDevice) => void): Unsubscribe {
    return this.kvs.onSignal(listener)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.keptReads?.stop()
    await Promise.all([this.kvs.stop(), this.iot.stop()])
  }
}
