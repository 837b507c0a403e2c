import {
  Id, KVS_PAYLOAD_MAX, STOCK_COMMANDS_CHANNEL, StockCandidate, StockCommand, StockSdp, describeError, newId, stockPayloadSize,
  type DoorAttempt, type Logger, type StockCommandReply
} from '@doorbell/core'
import { offersAudio, type AnsweringPeer, type ChannelData, type ControlChannel, type MediaPeers } from '../../answering'
import type { DoorLock } from '../../answering/door'

/**
 * Stock KVS viewers on the doorbell's channel (AWS's KVS test page, the seed's viewer page): a
 * bare SDP offer, trickled candidates, a `commands` data channel (core/src/kvsStock.ts). Each is
 * answered with the doorbell's live video and audio by the same media as our sessions
 * (`MediaPeers`); it is never heard on the speaker (nothing says who it is, so it has no talk
 * right). Its unsigned `{"command":"OPEN_DOOR"}` is refused with a message on the channel and
 * an audit record, unless the owner turned on "accept unsigned OPEN_DOOR from KVS viewers" for this
 * doorbell (signed, from Home settings; else `acceptUnsignedOpenDoor` in its cloud config); every
 * opening then is audited as unsigned. Bad input (an oversized offer, a malformed
 * candidate, a command that is not JSON) gets a clear error and the call goes on.
 */

/** KVS allows 10 viewers on a channel; the doorbell holds no more stock sessions than that. */
export const MAX_STOCK_VIEWERS = 10
const CONNECT_TIMEOUT_MS = 20_000
/** Candidates a viewer may trickle before its peer exists. */
const MAX_PENDING_CANDIDATES = 64

export type StockAction = 'SDP_ANSWER' | 'ICE_CANDIDATE'

export interface StockViewersOptions {
  deviceId: string
  peers: MediaPeers
  lock: DoorLock
  /** Every OPEN_DOOR attempt, allowed or refused (the audit outbox). */
  audit: (attempt: DoorAttempt) => void
  /**
   * Open on an unsigned OPEN_DOOR: the owner's signed setting when there is one, else the cloud
   * config's (stockSetting.ts); asked at each command, so a change applies to calls in progress.
   */
  acceptUnsignedOpenDoor: boolean | (() => boolean)
  /** Sends to one viewer on the channel; false when it could not be sent. */
  send: (viewerId: string, action: StockAction, payload: unknown) => boolean
  log: Logger
  maxViewers?: number
  connectTimeoutMs?: number
  now?: () => number
}

interface StockSession {
  sessionId: string
  peer: AnsweringPeer | null
  /** Trickled before the answer was made. */
  pending: StockCandidate[]
  timer: ReturnType<typeof setTimeout>
  closed: boolean
}

export class StockViewers {
  private readonly sessions = new Map<string, StockSession>()
  private readonly now: () => number

  constructor (private readonly o: StockViewersOptions) {
    this.now = o.now ?? Date.now
  }

  get count (): number { return this.sessions.size }

  /** A bare SDP offer from `viewerId` (KVS's authenticated sender id). A new offer from the same viewer replaces its session. */
  offer (viewerId: unknown, payload: unknown): void {
    const log = this.o.log
    if (typeof viewerId !== 'string' || viewerId === '') { log.warn('dropped a stock KVS offer with no sender id'); return }
    const size = stockPayloadSize(payload)
    if (size > KVS_PAYLOAD_MAX) {
      log.error('refused a stock KVS offer over KVS\'s 10 KB payload limit', { viewer: viewerId, bytes: size, max: KVS_PAYLOAD_MAX })
      return
    }
    const parsed = StockSdp.safeParse(payload)
    if (!parsed.success || parsed.data.type !== 'offer') {
      log.warn('dropped a stock KVS message that is not an SDP offer', { viewer: viewerId, error: parsed.success ? `type ${parsed.data.type}` : parsed.error.issues[0]?.message })
      return
    }
    this.close(viewerId, 'a new offer from the same viewer')
    if (this.sessions.size >= (this.o.maxViewers ?? MAX_STOCK_VIEWERS)) {
      log.warn('refused a stock KVS viewer: KVS allows 10 viewers per channel', { viewer: viewerId, viewers: this.sessions.size })
      return
    }
    const session: StockSession = {
      sessionId: newId('k'),
      peer: null,
      pending: [],
      closed: false,
      timer: setTimeout(() => { this.close(viewerId, 'not connected in time') }, this.o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS)
    }
    this.sessions.set(viewerId, session)
    log.info('a stock KVS viewer offers (plain SDP, trickle ICE)', { viewer: viewerId, session: session.sessionId })
    void this.answer(viewerId, session, parsed.data.sdp).catch((err: unknown) => {
      log.error('could not answer a stock KVS viewer', { viewer: viewerId, error: describeError(err) })
      this.close(viewerId, 'could not answer')
    })
  }

  /** A trickled candidate from `viewerId`: added once its peer has answered; a malformed one is dropped with an error, the call goes on. */
  candidate (viewerId: unknown, payload: unknown): void {
    if (typeof viewerId !== 'string') return
    const session = this.sessions.get(viewerId)
    if (session === undefined) { this.o.log.warn('dropped an ICE candidate from a KVS viewer with no session', { viewer: viewerId }); return }
    const parsed = StockCandidate.safeParse(payload)
    if (!parsed.success) {
      this.o.log.warn('dropped a malformed ICE candidate from a stock KVS viewer; the call goes on', { viewer: viewerId, error: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ').slice(0, 300) })
      return
    }
    if (parsed.data.candidate === '') return // the end of candidates
    if (session.peer === null) {
      if (session.pending.length < MAX_PENDING_CANDIDATES) session.pending.push(parsed.data)
      return
    }
    this.add(viewerId, session.peer, parsed.data)
  }

  stop (): void {
    for (const viewerId of [...this.sessions.keys()]) this.close(viewerId, 'the doorbell stops')
  }

  private async answer (viewerId: string, session: StockSession, sdp: string): Promise<void> {
    const peer = await this.o.peers.open({
      sessionId: session.sessionId,
      viewerId: Id.safeParse(viewerId).success ? viewerId : session.sessionId,
      viewerName: `KVS viewer ${viewerId}`.slice(0, 64),
      since: this.now(),
      sdp,
      preview: false,
      path: 'cloud',
      audio: offersAudio(sdp),
      // Unsigned: nobody known, so never heard on the doorbell's speaker.
      mayTalk: () => false,
      // A stock viewer shows `event.streams[0]`: the picture and the sound must be in it together.
      oneStream: true
    }, {
      connectionState: (state) => {
        this.o.log.info('stock KVS viewer peer', { viewer: viewerId, state })
        if (state === 'connected') clearTimeout(session.timer)
        if (state === 'failed' || state === 'closed') this.close(viewerId, `connection ${state}`)
      },
      channel: (c) => { this.channel(viewerId, c) }
    })
    if (session.closed) { peer.close(); return }
    const answer = await peer.answer(sdp)
    if (session.closed) { peer.close(); return }
    session.peer = peer
    const payload = { type: 'answer', sdp: answer }
    if (stockPayloadSize(payload) > KVS_PAYLOAD_MAX) throw new Error(`the answer is ${stockPayloadSize(payload)} bytes, over KVS's 10 KB payload limit`)
    if (!this.o.send(viewerId, 'SDP_ANSWER', payload)) throw new Error('the KVS signaling connection is not open')
    for (const c of session.pending.splice(0)) this.add(viewerId, peer, c)
  }

  private add (viewerId: string, peer: AnsweringPeer, c: StockCandidate): void {
    if (!peer.addCandidate) return
    peer.addCandidate(c).catch((err: unknown) => {
      this.o.log.warn('the peer refused an ICE candidate from a stock KVS viewer; the call goes on', { viewer: viewerId, error: describeError(err) })
    })
  }

  private channel (viewerId: string, c: ControlChannel): void {
    if (c.label !== STOCK_COMMANDS_CHANNEL) {
      this.o.log.warn('ignored a data channel from a stock KVS viewer with an unknown label', { viewer: viewerId, label: c.label })
      return
    }
    const reply = (r: StockCommandReply): void => { if (c.isOpen()) c.send(JSON.stringify(r)) }
    c.onMessage((data) => { void this.command(viewerId, data, reply) })
  }

  private async command (viewerId: string, data: ChannelData, reply: (r: StockCommandReply) => void): Promise<void> {
    const log = this.o.log
    const raw = typeof data === 'string' ? data : new TextDecoder().decode(data instanceof ArrayBuffer ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch (err) {
      log.warn('a stock KVS viewer sent a command that is not JSON', { viewer: viewerId, error: (err as Error).message })
      reply({ result: 'error', message: `not JSON: expected {"command":"OPEN_DOOR"} (${(err as Error).message})`.slice(0, 300) })
      return
    }
    if (!StockCommand.safeParse(json).success) {
      log.warn('a stock KVS viewer sent an unknown command', { viewer: viewerId, command: raw.slice(0, 100) })
      reply({ result: 'error', message: 'unknown command: the only command is {"command":"OPEN_DOOR"}' })
      return
    }
    const record = (outcome: DoorAttempt['outcome'], reason: DoorAttempt['reason'], message: string): void => {
      this.o.audit({
        id: newId('a'),
        deviceId: this.o.deviceId,
        at: this.now(),
        outcome,
        reason,
        message: message.slice(0, 300),
        memberId: null,
        viewerId: Id.safeParse(viewerId).success ? viewerId : null,
        viewerName: `KVS viewer ${viewerId}`.slice(0, 64),
        role: null,
        path: 'cloud'
      })
    }
    const accept = typeof this.o.acceptUnsignedOpenDoor === 'function' ? this.o.acceptUnsignedOpenDoor() : this.o.acceptUnsignedOpenDoor
    if (!accept) {
      const message = 'refused: this doorbell does not accept unsigned OPEN_DOOR from KVS viewers (its owner can turn this on in Home settings)'
      log.warn('refused an unsigned OPEN_DOOR from a stock KVS viewer', { viewer: viewerId })
      record('denied', 'unsigned', message)
      reply({ result: 'refused', message })
      return
    }
    const result = await this.o.lock.unlock(`KVS viewer ${viewerId}`)
    if (result.ok) {
      log.warn('opened the door on an unsigned OPEN_DOOR from a stock KVS viewer (acceptUnsignedOpenDoor is on)', { viewer: viewerId })
      record('allowed', 'unsigned', `opened on an unsigned OPEN_DOOR from KVS viewer ${viewerId} (acceptUnsignedOpenDoor)`)
      reply({ result: 'opened', message: 'DOOR UNLOCKED' })
    } else {
      record('denied', result.code, result.message)
      reply({ result: 'refused', message: result.message.slice(0, 300) })
    }
  }

  private close (viewerId: string, why: string): void {
    const session = this.sessions.get(viewerId)
    if (session === undefined) return
    this.sessions.delete(viewerId)
    session.closed = true
    clearTimeout(session.timer)
    session.peer?.close()
    this.o.log.info('a stock KVS viewer\'s session ended', { viewer: viewerId, session: session.sessionId, why })
  }
}
