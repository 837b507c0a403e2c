import { fromCallback, type EventObject } from 'xstate'
import { CALL_TAKEN, CONTROL_CHANNEL, CallTaken, DoorCommand, DoorRequest, Reply, TAKE_CALL, TakeCall, TalkReply, decode, encode, gathered, signDoorCommand, signViewClaim, type IceServerInit, type SigningKey, type ViewerTransport } from '@doorbell/core'
import type { CallActorCommand, CallActorInput, ViewerCallEvent } from '@doorbell/machines'
import { isTalkMessage, talkLink, type ReplyLink, type TalkLink } from './talkLink'
import type { PeerSpare } from './peerSpare'

/**
 * The subset of RTCPeerConnection the call uses. Browsers' RTCPeerConnection fits, and so does
 * werift's, which is how the Node integration test runs this very code.
 */
export interface PeerConnectionLike {
  createDataChannel: (label: string, init?: { ordered?: boolean }) => DataChannelLike
  addTransceiver: (kind: 'video' | 'audio', init: { direction: 'recvonly' | 'sendrecv' }) => { sender: AudioSenderLike, setCodecPreferences?: (codecs: CodecCapability[]) => void }
  createOffer: () => Promise<{ type: string, sdp?: string }>
  setLocalDescription: (d: any) => Promise<unknown>
  setRemoteDescription: (d: any) => Promise<unknown>
  readonly localDescription: { sdp: string } | null
  readonly iceGatheringState: string
  readonly connectionState: string
  readonly iceConnectionState: string
  onicegatheringstatechange: ((ev: any) => void) | null | undefined
  /** ICE gathering is waited for with these (core's `gathered`). */
  addEventListener: (type: 'icegatheringstatechange', listener: () => void) => void
  removeEventListener: (type: 'icegatheringstatechange', listener: () => void) => void
  onconnectionstatechange: ((ev: any) => void) | null | undefined
  oniceconnectionstatechange: ((ev: any) => void) | null | undefined
  ontrack: ((ev: any) => void) | null | undefined
  /** What it was made with (browsers): the page may add ICE servers of its own to the path's. */
  getConfiguration?: () => { iceServers?: unknown[] }
  close: () => unknown
}

/** A codec as browsers list it (`RTCRtpReceiver.getCapabilities(kind).codecs`). */
export interface CodecCapability {
  mimeType: string
  clockRate: number
  channels?: number
  sdpFmtpLine?: string
}

/**
 * The codecs worth offering to a doorbell, in the browser's order: H.264 (packetization mode 1,
 * baseline profiles: what the doorbell's encoder and an RTSP camera's passthrough send) and VP8,
 * with RTX; Opus for audio. Everything else (VP9, AV1, H.265, RED, FEC, G.711, comfort noise…)
 * only makes the offer longer: with sound added, Chromium's full list took an offer to
 * 11,072 bytes, over the 10 KiB a KVS signaling message may carry, and the cloud call failed.
 */
export function doorbellCodecs (kind: 'video' | 'audio', codecs: readonly CodecCapability[]): CodecCapability[] {
  const fmtp = (c: CodecCapability): string => c.sdpFmtpLine ?? ''
  return codecs.filter((c) => {
    const mime = c.mimeType.toLowerCase()
    if (kind === 'audio') return mime === 'audio/opus'
    if (mime === 'video/vp8' || mime === 'video/rtx') return true
    return mime === 'video/h264' && /packetization-mode=1/.test(fmtp(c)) && /profile-level-id=42/i.test(fmtp(c))
  })
}

/** Offers only the doorbell's codecs where the peer connection can say so (browsers; werift offers its own few). */
function preferDoorbellCodecs (transceiver: { setCodecPreferences?: (codecs: CodecCapability[]) => void }, kind: 'video' | 'audio'): void {
  const capabilities = (globalThis as { RTCRtpReceiver?: { getCapabilities?: (k: string) => { codecs: CodecCapability[] } | null } }).RTCRtpReceiver?.getCapabilities?.(kind)
  if (!capabilities || !transceiver.setCodecPreferences) return
  const kept = doorbellCodecs(kind, capabilities.codecs)
  // Never an empty list (that would offer the browser's defaults, or throw): keep them all then.
  if (kept.some((c) => !/rtx/i.test(c.mimeType))) transceiver.setCodecPreferences(kept)
}

/** The audio line's sender: talking swaps the microphone in and out (no renegotiation). */
export interface AudioSenderLike {
  replaceTrack: (track: any) => Promise<unknown> | unknown
}

export interface DataChannelLike {
  readonly readyState: string
  send: (data: string) => void
  onopen: ((ev: any) => void) | null | undefined
  onmessage: ((ev: any) => void) | null | undefined
  close: () => void
}

export interface CallSessionOptions {
  /** Whichever path is up (the hub, direct to the doorbell, or the cloud). */
  signaling: Pick<ViewerTransport, 'onSession' | 'sendToDevice' | 'iceServers'>
  viewerId: string
  viewerName: string
  homeId: string
  /** The grant (sent with the offer) and the key that signs each offer's proof and every open-door command. */
  trust: { credential: string, key: SigningKey }
  /** `iceServers`: what the path in use gives (none on the LAN; TURN from the cloud). */
  createPeerConnection: (iceServers: IceServerInit[]) => PeerConnectionLike
  /** Runs after the offer is made, before setLocalDescription starts gathering (werift needs its default STUN cleared). */
  beforeGather?: (pc: PeerConnectionLike) => void
  /** The remote video and audio: a browser attaches them to a <video> and an <audio>, a test counts their packets. */
  onTrack?: (call: CallActorInput, event: any, pc: PeerConnectionLike) => void
  onClosed?: (call: CallActorInput) => void
  /** The call's audio sender, sending nothing until the resident talks (a browser swaps its microphone in). */
  onAudioSender?: (call: CallActorInput, sender: AudioSenderLike) => void
  /** The call's talk lease: the signed talk commands, the device's answers, and who is talking. */
  onTalkLink?: (call: CallActorInput, link: TalkLink & ReplyLink) => void
  /** Longest wait for ICE gathering before the offer goes out with what it has. */
  gatherTimeoutMs?: number
  /** A connection made and gathered ahead of the ring (peerSpare.ts); used when its ICE servers match. */
  spare?: Pick<PeerSpare, 'take' | 'makeNext'>
}

/** A peer connection with the call's channel and lines, before any session is wired to it. */
export interface PreparedPeer {
  peer: PeerConnectionLike
  channel: DataChannelLike
  voice: { sender: AudioSenderLike }
}

/** Makes a call's peer connection: the control channel, video to receive, sound both ways. */
export function makePeer (o: Pick<CallSessionOptions, 'createPeerConnection'>, iceServers: IceServerInit[]): PreparedPeer {
  const peer = o.createPeerConnection(iceServers)
  const channel = peer.createDataChannel(CONTROL_CHANNEL, { ordered: true })
  preferDoorbellCodecs(peer.addTransceiver('video', { direction: 'recvonly' }), 'video')
  // Sound both ways from the start, with no microphone yet: talk later swaps it in with
  // replaceTrack, so starting and stopping talk never renegotiates.
  const voice = peer.addTransceiver('audio', { direction: 'sendrecv' })
  preferDoorbellCodecs(voice, 'audio')
  return { peer, channel, voice }
}

/** Makes the offer and waits for ICE gathering: after it, the local description holds every candidate. */
export async function gatherOffer (o: Pick<CallSessionOptions, 'beforeGather' | 'gatherTimeoutMs'>, peer: PeerConnectionLike, iceServers: IceServerInit[]): Promise<void> {
  const offer = await peer.createOffer()
  o.beforeGather?.(peer)
  await peer.setLocalDescription(offer)
  // TURN allocations take a round trip to the relay; host candidates take milliseconds.
  const servers = peer.getConfiguration?.().iceServers?.length ?? iceServers.length
  await gathered(peer, o.gatherTimeoutMs ?? (servers > 0 ? 4000 : 2000))
}

/** User Timing marks of a call's set-up; `npm run bench` reads them, and so can DevTools. */
export const CALL_MARKS = {
  /** The call actor started: the screen decided to connect (a preview on ring, or Answer/Join). */
  sessionStart: 'doorbell:session-start',
  /** ICE gathering done (or given up): the offer is complete and about to be signed. */
  gathered: 'doorbell:gathered',
  offerSent: 'doorbell:offer-sent',
  answerReceived: 'doorbell:answer-received',
  iceConnected: 'doorbell:ice-connected',
  /** The peer connection is 'connected': DTLS is done, SRTP can flow. */
  connected: 'doorbell:connected',
  /** The first video packet arrived (the remote video track unmuted; browsers only). */
  firstRtp: 'doorbell:first-rtp',
  /** Answer on a preview: `take-call` handed to the data channel (the preview bench splits Answer's way in here). */
  takeCallSent: 'doorbell:take-call-sent',
  /** The first packet of the doorbell's sound arrived (the remote audio track unmuted; browsers only). */
  firstAudio: 'doorbell:first-audio',
  /** A preview was answered and the doorbell said its audio is open (Answer -> two-way audio ready). */
  audioReady: 'doorbell:audio-ready',
  /** A signed open-door command left on the data channel (the hold's `doorbell:open-door` mark is before signing). */
  commandSent: 'doorbell:command-sent',
  /** A message from the doorbell's door arrived (an ack, a nack, or a lock report; the type is in its detail). */
  replyReceived: 'doorbell:reply-received'
} as const

/** An open-door command signed when the hold started; `text`, its encoded bytes, once the signature is done. */
interface PreparedCommand {
  id: string
  /** performance.now() when signing began (a monotonic clock: a stepped wall clock cannot make it look younger). */
  at: number
  signed: Promise<string>
  text: string | null
}

/**
 * A command signed at the hold's start is sent only this soon after: far inside the doorbell's
 * freshness window (core's FRESHNESS_MS, 30 s), whatever kept the hold from completing at once
 * (a page in the background pauses its animation frames). Older: signed again at the send.
 */
export const PREPARED_MAX_AGE_MS = 10_000

/**
 * The `call` actor of the viewer call machine: one session with one doorbell. The viewer makes
 * the offer (as KVS requires, and so on every path), the device answers; commands and the
 * device's replies use the data channel.
 */
export function callSession (o: CallSessionOptions) {
  return fromCallback<EventObject, CallActorInput>(({ input, sendBack, receive }) => {
    const { deviceId, sessionId } = input
    performance.mark(CALL_MARKS.sessionStart, { detail: { sessionId } })
    const send = (e: ViewerCallEvent): void => { sendBack(e) }
    let closed = false
    // Made once the path's ICE servers are known (at once on the LAN).
    let pc: PeerConnectionLike | null = null
    let dc: DataChannelLike | null = null
    // This call took the page's spare: the next may be made once it is past its Answer (peerSpare.ts), said once.
    let tookSpare = false
    const spareDone = (): void => {
      if (!tookSpare) return
      tookSpare = false
      o.spare?.makeNext()
    }
    // A preview answered before its channel opened: take the call as soon as it does.
    let taking = false
    const takeCall = (): void => {
      taking = true
      if (dc?.readyState === 'open') {
        dc.send(encode(TakeCall, { type: TAKE_CALL }))
        performance.mark(CALL_MARKS.takeCallSent, { detail: { sessionId } })
      }
    }
    const talk = talkLink({ channel: () => dc, trust: o.trust, homeId: o.homeId, deviceId, sessionId })

    /** Wires this session to a prepared connection (made now, or the spare made before the ring). */
    const open = (prepared: PreparedPeer): PeerConnectionLike => {
      const { peer, channel, voice } = prepared
      o.onAudioSender?.(input, voice.sender)
      o.onTalkLink?.(input, talk)
      pc = peer
      dc = channel

      let connected = false
      let channelOpen = false
      const maybeConnected = (): void => {
        if (!connected && channelOpen && peer.connectionState === 'connected') {
          connected = true
          send({ type: 'CONNECTED' })
        }
      }
      channel.onopen = () => {
        channelOpen = true
        if (taking) takeCall()
        maybeConnected()
      }
      channel.onmessage = (ev) => {
        const data = typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer)
        if (data.includes(`"${CALL_TAKEN}"`) && decode(CallTaken, data, 'data channel').ok) {
          performance.mark(CALL_MARKS.audioReady, { detail: { sessionId } })
          send({ type: 'CALL_TAKEN' })
          // The preview is answered and its audio open: the page's next spare may be made.
          spareDone()
          return
        }
        if (isTalkMessage(data)) {
          const t = decode(TalkReply, data, 'data channel')
          if (t.ok) talk.take(t.value)
          else console.warn(`[call] ${t.error.message}`)
          return
        }
        const r = decode(Reply, data, 'data channel')
        if (!r.ok) { console.warn(`[call] ${r.error.message}`); return }
        performance.mark(CALL_MARKS.replyReceived, { detail: { sessionId, type: r.value.type } })
        send({ type: 'REPLY', reply: r.value })
      }
      peer.onconnectionstatechange = () => {
        const state = peer.connectionState
        if (state === 'connected') {
          performance.mark(CALL_MARKS.connected, { detail: { sessionId } })
          maybeConnected()
        }
        if (state === 'failed') send({ type: 'FAILED', message: 'the connection to the doorbell was lost' })
      }
      peer.oniceconnectionstatechange = () => {
        if (peer.iceConnectionState === 'connected') performance.mark(CALL_MARKS.iceConnected, { detail: { sessionId } })
      }
      peer.ontrack = (ev) => {
        // A browser's remote track unmutes on its first packet (werift's tracks have no events).
        const track = (ev as { track?: { kind?: string, muted?: boolean, addEventListener?: (t: string, l: () => void, o: { once: boolean }) => void } }).track
        if (track?.kind === 'video' && track.muted === true) track.addEventListener?.('unmute', () => { performance.mark(CALL_MARKS.firstRtp, { detail: { sessionId } }) }, { once: true })
        // The doorbell's sound: none to a preview before Answer, so on a preview this is the first packet after it.
        if (track?.kind === 'audio' && track.muted === true) track.addEventListener?.('unmute', () => { performance.mark(CALL_MARKS.firstAudio, { detail: { sessionId } }) }, { once: true })
        o.onTrack?.(input, ev, peer)
      }
      return peer
    }

    const stopSignals = o.signaling.onSession(sessionId, (message) => {
      if (message.type === 'answer') {
        performance.mark(CALL_MARKS.answerReceived, { detail: { sessionId } })
        if (!pc) return
        pc.setRemoteDescription({ type: 'answer', sdp: message.sdp }).catch((err: Error) => {
          send({ type: 'FAILED', message: `the doorbell's answer was not usable: ${err.message}` })
        })
      } else {
        closed = true
        send({ type: 'REMOTE_BYE', reason: message.reason, ...(message.message ? { message: message.message } : {}) })
      }
    })

    // Signed for this device, this session, now, once: the device checks all of it.
    const signCommand = async (id: string): Promise<string> =>
      encode(DoorCommand, await signDoorCommand({ credential: o.trust.credential, key: o.trust.key, home: o.homeId, device: deviceId, session: sessionId, command: id }))
    // The command signed while the resident holds "Open door" (at most one): sent when the hold completes, dropped when it is released.
    let prepared: PreparedCommand | null = null

    receive((event) => {
      const e = event as CallActorCommand
      if (e.type === 'TAKE_CALL') { takeCall(); return }
      if (e.type === 'DROP_COMMAND') { prepared = null; return }
      if (e.type === 'PREPARE_COMMAND') {
        const checked = DoorRequest.safeParse(e.command)
        if (!checked.success || dc?.readyState !== 'open') { prepared = null; return }
        const entry: PreparedCommand = { id: checked.data.id, at: performance.now(), signed: signCommand(checked.data.id), text: null }
        // A failed signature is said when the command is sent (it then signs again), not here.
        entry.signed.then((text) => { entry.text = text }, () => {})
        prepared = entry
        return
      }
      if (e.type !== 'SEND_COMMAND') return
      const nack = (message: string): void => { send({ type: 'REPLY', reply: { type: 'nack', id: e.command.id, error: { code: 'invalid-command', message } } }) }
      // Parse our own request too: a bug here must not reach the door.
      const checked = DoorRequest.safeParse(e.command)
      if (!checked.success) { nack('invalid command'); return }
      const channel = dc
      if (channel?.readyState !== 'open') { nack('the call is not connected'); return }
      const sendNow = (text: string): void => {
        if (channel.readyState !== 'open') { nack('the call is not connected'); return }
        channel.send(text)
        performance.mark(CALL_MARKS.commandSent, { detail: { sessionId } })
      }
      // Used once, for its own id, while well inside the doorbell's freshness window; else signed now.
      const ready = prepared !== null && prepared.id === checked.data.id && performance.now() - prepared.at < PREPARED_MAX_AGE_MS ? prepared : null
      prepared = null
      // Signed while the resident held the button: the bytes leave now, in this turn.
      if (ready?.text) { sendNow(ready.text); return }
      // Not yet signed (a hold shorter than a signature), or not prepared: sent once it is.
      const signed = ready !== null ? ready.signed.catch(async () => await signCommand(checked.data.id)) : signCommand(checked.data.id)
      signed
        .then(sendNow)
        .catch((err: Error) => { nack(`could not sign the command: ${err.message}`) })
    })

    void (async () => {
      const iceServers = o.signaling.iceServers ? await o.signaling.iceServers(deviceId) : []
      if (closed) return
      // A connection gathered before the ring (the spare) skips ICE gathering and the DTLS
      // certificate; else one is made now, the same way.
      const spare = o.spare?.take(iceServers) ?? null
      tookSpare = spare !== null
      // Not a preview: this is the Answer, and the next spare is made a second from now (as before).
      // A preview's next waits for its Answer (or its end): the resident may press Answer at any moment of it.
      if (!input.preview) spareDone()
      const peerPrepared = spare ?? makePeer(o, iceServers)
      const peer = open(peerPrepared)
      if (!spare) await gatherOffer(o, peer, iceServers)
      performance.mark(CALL_MARKS.gathered, { detail: { sessionId, spare: spare !== null } })
      if (closed) return
      const sdp = peer.localDescription?.sdp
      if (!sdp) throw new Error('no local description')
      // Signed as it leaves (after gathering), so its timestamp is fresh: the device checks it holds the grant's key.
      const proof = await signViewClaim({ key: o.trust.key, home: o.homeId, device: deviceId, session: sessionId })
      if (closed) return
      o.signaling.sendToDevice(deviceId, sessionId, { type: 'offer', sessionId, viewerId: o.viewerId, viewerName: o.viewerName, sdp, credential: o.trust.credential, proof, ...(input.preview ? { preview: true as const } : {}) })
      performance.mark(CALL_MARKS.offerSent, { detail: { sessionId } })
    })().catch((err: Error) => { send({ type: 'FAILED', message: `could not start the call: ${err.message}` }) })

    return () => {
      stopSignals()
      if (!closed) o.signaling.sendToDevice(deviceId, sessionId, { type: 'bye', sessionId, reason: 'hang-up' })
      closed = true
      talk.close()
      try { dc?.close() } catch {}
      void pc?.close()
      spareDone()
      o.onClosed?.(input)
    }
  })
}
