import { fromCallback, type EventObject } from 'xstate'
import { CALL_TAKEN, CONTROL_CHANNEL, CallTaken, Reply, TAKE_CALL, TALK_COMMAND_TYPES, TalkReply, describeError, encode, type Logger, type TransportPath } from '@doorbell/core'
import type { DeviceCallEvent, OpenAudio, SessionInput, SessionRouting } from '@doorbell/machines'
import type { Door } from './door'
import { noSpeaker, typeOf, type TalkFloor } from './talk'

/** A peer that has not connected by then is given up. */
export const CONNECT_TIMEOUT_MS = 20_000
/** A bye's message is bounded by the Bye schema. */
const BYE_MESSAGE_MAX = 300

/** Who a session is, as its door and its talk floor are told (the audit record names them). */
export interface SessionIdentity {
  sessionId: string
  viewerId: string
  viewerName: string
  log: Logger
  /** Which path carries this session's signaling (for the audit record). */
  path: () => TransportPath | null
}

/** What a message on the control channel carries, whatever the stack (werift: string or Buffer; a browser: string or ArrayBuffer). */
export type ChannelData = string | ArrayBuffer | ArrayBufferView

/** A data channel the viewer opened, as the session needs it. */
export interface ControlChannel {
  readonly label: string
  isOpen: () => boolean
  send: (text: string) => void
  /** Called when the channel opens, and at once if it is open already. */
  onOpen: (listener: () => void) => void
  onMessage: (listener: (data: ChannelData) => void) => void
}

/** What the platform's peer connection tells the session. */
export interface PeerEvents {
  /** 'connected', 'failed', 'closed', ... (the platform starts its media on 'connected' itself). */
  connectionState: (state: string) => void
  /** The viewer opened a data channel. */
  channel: (channel: ControlChannel) => void
  /** A step of the set-up (ICE connected, DTLS hello in, video out…): logged, for the benches' hops (optional). */
  setup?: (step: string, detail?: Record<string, string | number | boolean>) => void
}

/** One session's peer connection, made by the platform with its ICE settings. */
export interface AnsweringPeer {
  /** Takes the viewer's offer, adds this session's media, and returns the answer (DTLS server, every candidate in it). */
  answer: (offerSdp: string) => Promise<string>
  /**
   * A candidate the viewer trickled (the stock KVS protocol; our own offers carry every
   * candidate). Call after `answer` has resolved. Rejects on a candidate the stack refuses.
   */
  addCandidate?: (candidate: { candidate: string, sdpMid?: string | null | undefined, sdpMLineIndex?: number | null | undefined }) => Promise<void>
  /**
   * A preview was answered: the device's microphone goes out from now on (once connected).
   * A preview's peer sends none before this (`PeerSession.preview`); its audio line is negotiated all the same.
   */
  openAudio?: () => void
  /** Stops this session's media and closes the connection. */
  close: () => void
}

/** What the platform is told about one session when it makes its peer connection. */
export interface PeerSession extends SessionInput {
  path: TransportPath | null
  /**
   * The offer has an audio line: the answer must negotiate it (sendrecv where the platform has
   * a microphone and a speaker; recvonly or inactive where it has not), never leave it out.
   */
  audio: boolean
  /** Asked for each packet of the viewer's audio before it reaches a speaker (the talk floor). */
  mayTalk: () => boolean
  /**
   * Video and sound in one stream: for a viewer that plays the first track's stream as a whole
   * (the stock KVS viewers: `srcObject = event.streams[0]`). Our own viewers get each in a stream
   * of its own, so the browser does not hold the voice back to the video.
   */
  oneStream?: boolean
}

/** The platform's media stack: werift and ffmpeg on the doorbell, RTCPeerConnection and getUserMedia in a browser. */
export interface MediaPeers {
  /** How the viewer is told who could not answer: "doorbell", "camera". */
  readonly name: string
  /** Makes the session's peer connection (asks for its ICE settings first). */
  open: (session: PeerSession, events: PeerEvents) => Promise<AnsweringPeer>
}

const text = (data: ChannelData): string => typeof data === 'string'
  ? data
  : new TextDecoder().decode(data instanceof ArrayBuffer ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength))

/** Does an SDP offer have an audio m-line (that is not rejected with port 0)? */
export function offersAudio (sdp: string): boolean {
  return /^m=audio [1-9]\d* /m.test(sdp)
}

/** A failure whose message is what the viewer is told as is (no "could not answer" before it). */
export class SessionError extends Error {
  override readonly name = 'SessionError'
}

export interface SessionOptions {
  peers: MediaPeers
  /** The door commands: the doorbell's lock, or a camera node's "no door". */
  door: Door
  log: Logger
  connectTimeoutMs?: number
  /** Who may be heard on the speaker (the talk lease, one for every session of this side); default: no speaker. */
  talk?: TalkFloor
}

/**
 * One viewer's session on any device: the `session` actor of the answering side, which admits
 * the offer, spawns this actor and stops it. It answers the viewer's offer with the platform's
 * peer connection, takes the `control` data channel and hands its commands to the door, gives
 * up a peer that does not connect in time, and tells the viewer why a session ends.
 * Platform-free: the peer connection and the media are the platform's (`MediaPeers`).
 */
export function answeringSession (o: SessionOptions) {
  const floor = o.talk ?? noSpeaker()
  return (routing: SessionRouting) => fromCallback<EventObject, SessionInput>(({ input, sendBack, receive }) => {
    const { sessionId, viewerId, viewerName } = input
    const log = o.log.child(`session ${sessionId}`)
    let over = false
    // A preview while it rings: no audio either way until the call machine opens it (OPEN_AUDIO).
    let preview = input.preview
    let peer: AnsweringPeer | null = null
    let channel: ControlChannel | null = null
    const end = (reason: string, message?: string): void => {
      if (over) return
      over = true
      routing.signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'failed', ...(message ? { message: message.slice(0, BYE_MESSAGE_MAX) } : {}) })
      sendBack({ type: 'SESSION_ENDED', sessionId, reason } satisfies DeviceCallEvent)
    }
    const connectTimer = setTimeout(() => { end('failed', 'the connection was not established in time') }, o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS)

    const reply = (message: Reply): void => {
      if (channel?.isOpen()) channel.send(encode(Reply, message))
    }
    const callTaken = (): void => {
      if (channel?.isOpen()) channel.send(encode(CallTaken, { type: CALL_TAKEN }))
    }
    receive((event) => {
      if ((event as OpenAudio).type !== 'OPEN_AUDIO' || !preview) return
      preview = false
      // The sound and the viewer's word first, the log line after: nothing on the way to two-way audio waits for bookkeeping.
      peer?.openAudio?.()
      callTaken()
      log.info('preview answered: audio open both ways, call-taken sent')
    })
    const identity: SessionIdentity = { sessionId, viewerId, viewerName, log, path: () => routing.pathOf(sessionId) }
    const door = o.door.session({
      ...identity,
      reply,
      unlocked: (at) => { sendBack({ type: 'UNLOCKED', sessionId, at } satisfies DeviceCallEvent) }
    })
    const talk = floor.session({
      ...identity,
      send: (message) => { if (channel?.isOpen()) channel.send(encode(TalkReply, message)) }
    })

    const events: PeerEvents = {
      connectionState: (state) => {
        log.info('peer', { state })
        if (state === 'connected') clearTimeout(connectTimer)
        // ICE lost: the talk lease ends now, not after 2 s of silence (the session may yet recover).
        if (state === 'disconnected' || state === 'failed' || state === 'closed') floor.lost(sessionId)
        if (state === 'failed' || state === 'closed') end('failed', `connection ${state}`)
      },
      channel: (c) => {
        if (c.label !== CONTROL_CHANNEL) {
          log.warn('ignored a data channel with an unknown label', { label: c.label })
          return
        }
        channel = c
        c.onMessage((data) => {
          const raw = text(data)
          const type = typeOf(raw) ?? ''
          if (type === TAKE_CALL) {
            // Logged on receipt, before the call machine: the preview bench splits Answer's way in here.
            log.info('take-call in', { preview })
            // The resident answered on this preview: the call machine decides (the ring may be over).
            if (preview) sendBack({ type: 'TAKE_CALL', sessionId, at: Date.now() } satisfies DeviceCallEvent)
            else callTaken()
          } else if (TALK_COMMAND_TYPES.has(type)) {
            // Nobody talks on a preview: its viewer has not answered.
            if (preview) log.warn('ignored a talk command on a preview', { type })
            else void talk.command(raw)
          } else {
            void door.command(data)
          }
        })
        c.onOpen(() => { door.opened(); talk.opened() })
      },
      setup: (step, detail) => { log.info(step, detail) }
    }

    // Admitted (the grant and proof checked): the preview bench times the hops from these lines.
    log.info('admitted', { preview: input.preview })
    void (async () => {
      const opened = await o.peers.open({ ...input, path: routing.pathOf(sessionId), audio: offersAudio(input.sdp), mayTalk: () => !over && !preview && floor.mayTalk(sessionId) }, events)
      if (over) {
        opened.close()
        return
      }
      peer = opened
      // Answered while the peer was being made: open its audio now.
      if (input.preview && !preview) opened.openAudio?.()
      const sdp = await opened.answer(input.sdp)
      if (over) return
      routing.signal(viewerId, sessionId, { type: 'answer', sessionId, sdp })
      log.info('answer sent')
    })().catch((err: unknown) => {
      // werift throws some parse failures without a message (a TypeError on a missing line): say what it was.
      const why = describeError(err)
      log.error('could not answer the offer', { viewer: viewerName, error: why })
      end('failed', err instanceof SessionError ? err.message : `the ${o.peers.name} could not answer: ${why}`)
    })

    return () => {
      clearTimeout(connectTimer)
      door.stop()
      talk.stop()
      floor.left(sessionId)
      if (!over) {
        // Stopped by the call machine: the viewer hung up (bye) or the device ended the call.
        over = true
        routing.signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'device-ended' })
      }
      peer?.close()
    }
  })
}
