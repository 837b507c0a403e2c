import { asDtlsServer, describeError, gathered, type IceSettings, type Logger } from '@doorbell/core'
import { SessionError, type ControlChannel, type MediaPeers } from '@doorbell/device/answering'

/** Our protocol has no trickle: the answer carries every candidate, so gathering is waited for, this long at most. */
export const GATHER_TIMEOUT_MS = { lan: 2000, withServers: 4000 }

/** Kept for the page's imports; the one copy is core's (the viewer's calls wait the same way). */
export { gathered }

export interface BrowserPeersOptions {
  /** The camera's video track: one getUserMedia stream, shared by every session (each has its own sender). */
  track: () => MediaStreamTrack | null
  /** The microphone's track when the node is set to send sound (off by default: docs/operators.md), else null. */
  microphone?: () => MediaStreamTrack | null
  /** ICE servers and policy from the hub (`GET /api/ice`), asked for each session: TURN credentials expire. */
  ice: () => Promise<IceSettings>
  log: Logger
  /** Default: the browser's. */
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection
}

/**
 * A browser camera node's media for the shared answering session (`answeringSession` in
 * `@doorbell/device/answering`): an RTCPeerConnection per watcher that answers the watcher's
 * offer (the watcher always offers, on every path) with the camera's track on the offer's
 * video line, `a=setup:passive`, and every candidate gathered. A camera node plays no sound, and
 * sends none unless its microphone was turned on (recording public spaces is restricted in many
 * places: docs/operators.md): then the offer's first audio line carries it, sendonly; otherwise
 * an audio line is answered inactive, never left out.
 */
export function browserPeers (o: BrowserPeersOptions): MediaPeers {
  return {
    name: 'camera',
    async open (session, events) {
      // Without the hub's settings the node cannot know the home's policy (relay-only must never
      // fall back to revealing its addresses): the call ends, saying why; the watcher calls again.
      const ice = await o.ice().catch((err: unknown) => {
        o.log.warn('no ICE settings from the hub', { error: describeError(err) })
        throw new SessionError(`the camera could not get its connection settings from the hub: ${describeError(err)}`)
      })
      const config: RTCConfiguration = { iceServers: ice.iceServers, iceTransportPolicy: ice.iceTransportPolicy, bundlePolicy: 'max-bundle' }
      const pc = o.createPeerConnection ? o.createPeerConnection(config) : new RTCPeerConnection(config)
      pc.ondatachannel = ({ channel }) => {
        channel.binaryType = 'arraybuffer'
        const control: ControlChannel = {
          label: channel.label,
          isOpen: () => channel.readyState === 'open',
          send: (text) => { channel.send(text) },
          onOpen: (listener) => {
            channel.addEventListener('open', listener)
            if (channel.readyState === 'open') listener()
          },
          onMessage: (listener) => { channel.addEventListener('message', (ev: MessageEvent) => { listener(ev.data as string | ArrayBuffer) }) }
        }
        events.channel(control)
      }
      pc.onconnectionstatechange = () => { events.connectionState(pc.connectionState) }
      // The line that carries the node's microphone (when on), swapped in when a preview is answered.
      let audioSender: { sender: RTCRtpSender, track: MediaStreamTrack } | null = null
      return {
        async answer (sdp) {
          await pc.setRemoteDescription({ type: 'offer', sdp })
          const video = pc.getTransceivers().find((t) => t.receiver.track.kind === 'video' && t.currentDirection !== 'stopped')
          if (!video) throw new Error('the offer asks for no video')
          const track = o.track()
          if (!track || track.readyState !== 'live') throw new Error('the camera is off')
          // The offer's recvonly video line becomes our sendonly one, with this session's own sender.
          video.direction = 'sendonly'
          await video.sender.replaceTrack(track)
          const sound = o.microphone?.() ?? null
          let sending = false
          for (const t of pc.getTransceivers()) {
            if (t === video || t.receiver.track.kind !== 'audio' || t.currentDirection === 'stopped') continue
            if (!sending && sound?.readyState === 'live') {
              t.direction = 'sendonly'
              // A preview sends no sound until its viewer answers (openAudio).
              await t.sender.replaceTrack(session.preview ? null : sound)
              audioSender = { sender: t.sender, track: sound }
              sending = true
            } else {
              t.direction = 'inactive'
            }
          }
          const answer = await pc.createAnswer()
          await pc.setLocalDescription(asDtlsServer({ type: answer.type, sdp: answer.sdp ?? '' }))
          await gathered(pc, ice.iceServers.length > 0 ? GATHER_TIMEOUT_MS.withServers : GATHER_TIMEOUT_MS.lan)
          const local = pc.localDescription?.sdp
          if (!local) throw new Error('the browser produced no answer')
          return local
        },
        openAudio () {
          if (audioSender) void audioSender.sender.replaceTrack(audioSender.track).catch(() => {})
        },
        close () { pc.close() }
      }
    }
  }
}
