import {
  Listeners, STOCK_COMMANDS_CHANNEL, StockCandidate, StockSdp, isStockSdp, kvsControlPlane, stockChannelName, stockPayloadSize,
  KVS_PAYLOAD_MAX, type AwsCredentials, type IceServerInit, type KvsChannel, type KvsIceConfig, type StockDoorbell
} from '@doorbell/core'
import { cloudChannelMachine } from '@doorbell/machines'
import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate'
import { createKvsSignalingClient, describeCloudError, kvsStun, type SignalingConfig, type SignalingLike } from './aws'
import type { CloudLog } from './cloudClient'

/**
 * Our viewer calling a stock KVS doorbell (the seed's KVS C master), as a standard KVS viewer: a
 * plain SDP offer (video received; audio received, and sent when the resident talks), trickle ICE
 * both ways, a `commands` data channel on which `{"command":"OPEN_DOOR"}` opens the door. The
 * signaling connection's lifecycle is the cloud path's own `cloudChannel` machine, its control
 * plane core's `kvsControlPlane`, its client the unmodified KVS SDK: only the messages differ.
 * Every message from the master is recognized per message (a bare session description); our own
 * envelope here means the channel is one of our doorbells, and is dropped with a log line saying so.
 */

/** The control-plane calls a stock call makes (core's kvsControlPlane, role VIEWER). */
export interface StockControlPlane {
  channel: (channelName: string, signal?: AbortSignal) => Promise<KvsChannel>
  iceServers: (channel: KvsChannel, clientId: string | undefined, signal?: AbortSignal) => Promise<KvsIceConfig>
}

/** The part of RTCPeerConnection a stock call uses (a browser's; werift's in Node tests). */
export type StockPeerConnection = Pick<RTCPeerConnection,
  'addTransceiver' | 'createDataChannel' | 'createOffer' | 'setLocalDescription' | 'setRemoteDescription' | 'addIceCandidate' | 'close' | 'connectionState' | 'localDescription'
> & {
  onicecandidate: ((ev: { candidate: { toJSON?: () => unknown } | null }) => void) | null
  ontrack: ((ev: { track: MediaStreamTrack, streams: readonly MediaStream[] }) => void) | null
  onconnectionstatechange: (() => void) | null
}

export interface StockCallOptions {
  doorbell: StockDoorbell
  credentials: AwsCredentials
  /** This viewer's KVS client id. */
  clientId: string
  log: CloudLog
  createPeerConnection?: (config: RTCConfiguration) => StockPeerConnection
  createSignalingClient?: (config: SignalingConfig) => SignalingLike | Promise<SignalingLike>
  controlPlane?: StockControlPlane
  openTimeoutMs?: number
  inspect?: ((event: InspectionEvent) => void) | undefined
}

export interface StockCallEvents {
  /** The media flows. */
  connected: () => void
  /** The call could not be made, or was lost: what to do, for a resident. */
  failed: (message: string) => void
  stream: (stream: MediaStream) => void
  /** The audio sender, when the doorbell's answer takes our audio (talk); never otherwise. */
  talk: (sender: RTCRtpSender) => void
  /** What the doorbell said on the `commands` channel (the seed's master says nothing; ours does). */
  reply: (text: string) => void
}

const CONTROL_TIMEOUT_MS = 10_000
const MAX_EARLY_CANDIDATES = 64

/** Does an answer's audio section take audio from us (sendrecv or recvonly from the doorbell's side)? */
export function answerTakesAudio (sdp: string): boolean {
  const audio = sdp.split(/\r?\nm=/).find((s) => s.startsWith('audio ') || s.startsWith('m=audio '))
  if (audio === undefined || /^(m=)?audio 0 /.test(audio)) return false
  const dir = /\r?\na=(sendrecv|sendonly|recvonly|inactive)/.exec(audio)?.[1] ?? 'sendrecv'
  return dir === 'sendrecv' || dir === 'recvonly'
}

export class StockCall {
  private readonly listeners = new Listeners<StockCallEvents>()
  private readonly actor: Actor<typeof cloudChannelMachine>
  private client: SignalingLike | null = null
  private pc: StockPeerConnection | null = null
  private commands: RTCDataChannel | null = null
  private answered = false
  private early: StockCandidate[] = []
  private done = false
  private connected = false

  constructor (private readonly o: StockCallOptions) {
    const d = o.doorbell
    const control = o.controlPlane ?? kvsControlPlane({ region: d.region, role: 'VIEWER', credentials: o.credentials, endpoint: d.kvsEndpoint, clientOptions: { maxAttempts: 2 } })
    const cloud = { channelName: stockChannelName(d.channel) }
    const name = `stockCall:${d.id}`
    this.actor = createActor(cloudChannelMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          try {
            const info = await control.channel(cloud.channelName, AbortSignal.timeout(CONTROL_TIMEOUT_MS))
            const ice = await control.iceServers(info, o.clientId, AbortSignal.timeout(CONTROL_TIMEOUT_MS))
            if (this.done) return
            this.peer([...kvsStun(d), ...ice.servers])
            const client = await (o.createSignalingClient ?? createKvsSignalingClient)({
              role: 'VIEWER', clientId: o.clientId, region: d.region, channelARN: info.channelARN, channelEndpoint: info.wssEndpoint, credentials: o.credentials
            })
            if (this.done) { try { client.close() } catch {} return }
            this.client = client
            this.wire(client)
          } catch (err) {
            throw new Error(describeCloudError(err, cloud, d.region))
          }
        })
      },
      actions: {
        openClient: () => {
          try { this.client?.open() } catch (err) { this.actor.send({ type: 'REFUSED', message: describeCloudError(err, cloud, d.region) }) }
        },
        flush: () => { void this.offer() },
        failChannel: ({ context }) => { this.fail(context.error ?? 'the doorbell\'s signaling channel could not be opened') },
        closeIdle: () => { try { this.client?.close() } catch {} },
        closedUnderCall: () => {
          // The media is peer to peer: a call already connected goes on without signaling.
          if (!this.connected) this.fail('the signaling connection closed before the doorbell answered')
        }
      },
      guards: { inUse: () => !this.done }
    }), { id: name, systemId: name, ...(o.openTimeoutMs !== undefined ? { input: { openTimeoutMs: o.openTimeoutMs } } : { input: {} }), ...(o.inspect ? { inspect: o.inspect } : {}) })
  }

  on<K extends keyof StockCallEvents>(event: K, listener: StockCallEvents[K]): () => void { return this.listeners.on(event, listener) }

  start (): void { this.actor.start() }

  /** Sends `{"command":"OPEN_DOOR"}` on the `commands` channel; false when it is not open. */
  openDoor (): boolean {
    if (this.done || this.commands?.readyState !== 'open') return false
    this.commands.send(JSON.stringify({ command: 'OPEN_DOOR' }))
    this.o.log('info', `sent OPEN_DOOR to the stock KVS doorbell ${this.o.doorbell.name}`)
    return true
  }

  close (): void {
    if (this.done) return
    this.done = true
    this.actor.stop()
    try { this.client?.close() } catch {}
    try { this.pc?.close() } catch {}
  }

  private emit<K extends keyof StockCallEvents>(event: K, ...args: Parameters<StockCallEvents[K]>): void {
    if (this.done && event !== 'failed') return
    try { this.listeners.emit(event, ...args) } catch (err) { this.o.log('error', `a stock call ${event} listener threw: ${(err as Error).message}`) }
  }

  private fail (message: string): void {
    if (this.done) return
    this.o.log('warn', `stock KVS doorbell ${this.o.doorbell.name}: ${message}`)
    this.emit('failed', message)
    this.close()
  }

  /** The peer connection, as AWS's example viewer makes it: video received, audio both ways, a `commands` channel. */
  private peer (iceServers: IceServerInit[]): void {
    const pc = (this.o.createPeerConnection ?? ((c) => new RTCPeerConnection(c) as unknown as StockPeerConnection))({ iceServers: iceServers as RTCIceServer[] })
    this.pc = pc
    pc.addTransceiver('video', { direction: 'recvonly' })
    // sendrecv with no track yet: nothing is sent until the resident talks (replaceTrack).
    const audio = pc.addTransceiver('audio', { direction: 'sendrecv' })
    const commands = pc.createDataChannel(STOCK_COMMANDS_CHANNEL)
    this.commands = commands
    commands.onmessage = (e) => { this.emit('reply', typeof e.data === 'string' ? e.data.slice(0, 1000) : '(binary)') }
    pc.ontrack = (e) => { const s = e.streams[0]; if (s) this.emit('stream', s) }
    pc.onicecandidate = (e) => {
      if (e.candidate === null || this.client === null) return
      const c = typeof e.candidate.toJSON === 'function' ? e.candidate.toJSON() : e.candidate
      try { this.client.sendIceCandidate?.(c) } catch (err) { this.o.log('warn', `could not trickle a candidate: ${(err as Error).message}`) }
    }
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState
      if (state === 'connected' && !this.connected) { this.connected = true; this.emit('connected') }
      if (state === 'failed') this.fail('the connection to the doorbell was lost')
    }
    this.takesAudio = (sdp) => { if (answerTakesAudio(sdp)) this.emit('talk', audio.sender) }
  }

  private takesAudio: (sdp: string) => void = () => {}

  private async offer (): Promise<void> {
    const pc = this.pc
    if (pc === null || this.client === null || this.done) return
    try {
      await pc.setLocalDescription(await pc.createOffer())
      const local = pc.localDescription
      if (local === null || this.done) return
      const offer = { type: 'offer' as const, sdp: local.sdp }
      if (stockPayloadSize(offer) > KVS_PAYLOAD_MAX) { this.fail('the offer is too large for the cloud signaling channel'); return }
      this.client.sendSdpOffer(offer)
      this.o.log('info', `offered to the stock KVS doorbell ${this.o.doorbell.name} (plain SDP, trickle ICE)`)
    } catch (err) {
      this.fail(`the call could not be started (${(err as Error).message})`)
    }
  }

  private wire (client: SignalingLike): void {
    const d = this.o.doorbell
    client.on('error', (err) => {
      if (this.done) return
      this.o.log('warn', `stock KVS signaling (${d.name}): ${(err as Error)?.message ?? 'WebSocket error'}`)
      if (!this.actor.getSnapshot().matches('open')) this.actor.send({ type: 'REFUSED', message: 'the doorbell\'s signaling channel refused the connection: check the AWS keys in Away from home, and the channel' })
    })
    client.on('open', () => { if (!this.done) this.actor.send({ type: 'OPENED' }) })
    client.on('close', () => {
      if (this.done) return
      if (this.actor.getSnapshot().matches('open')) this.actor.send({ type: 'CLOSED' })
      else this.actor.send({ type: 'REFUSED', message: 'the doorbell\'s signaling channel closed before it opened: check the AWS keys in Away from home, and the channel' })
    })
    client.on('sdpAnswer', (payload) => { void this.onAnswer(payload) })
    client.on('iceCandidate', (payload) => { this.onCandidate(payload) })
  }

  /** Recognized per message: a bare answer is the stock protocol; anything else is dropped with why. */
  private async onAnswer (payload: unknown): Promise<void> {
    if (this.done || this.pc === null) return
    if (!isStockSdp(payload)) {
      this.o.log('warn', `dropped a message from ${this.o.doorbell.name}'s channel: not a plain SDP answer (one of our doorbells speaks our own protocol: add it under Away from home instead)`)
      return
    }
    const parsed = StockSdp.safeParse(payload)
    if (!parsed.success || parsed.data.type !== 'answer') { this.o.log('warn', `dropped a malformed SDP answer from ${this.o.doorbell.name}`); return }
    if (this.answered) { this.o.log('warn', `dropped a second SDP answer from ${this.o.doorbell.name}`); return }
    this.answered = true
    try {
      await this.pc.setRemoteDescription(parsed.data)
    } catch (err) {
      this.fail(`the doorbell's answer could not be used (${(err as Error).message})`)
      return
    }
    this.takesAudio(parsed.data.sdp)
    for (const c of this.early.splice(0)) this.add(c)
  }

  private onCandidate (payload: unknown): void {
    if (this.done) return
    const parsed = StockCandidate.safeParse(payload)
    if (!parsed.success) {
      this.o.log('warn', `dropped a malformed ICE candidate from ${this.o.doorbell.name}; the call goes on (${parsed.error.issues[0]?.message ?? ''})`)
      return
    }
    if (parsed.data.candidate === '') return
    if (!this.answered) { if (this.early.length < MAX_EARLY_CANDIDATES) this.early.push(parsed.data); return }
    this.add(parsed.data)
  }

  private add (c: StockCandidate): void {
    this.pc?.addIceCandidate(c as RTCIceCandidateInit).catch((err: unknown) => {
      this.o.log('warn', `the browser refused an ICE candidate from ${this.o.doorbell.name}; the call goes on (${(err as Error).message})`)
    })
  }
}
