import { MediaStream, MediaStreamTrack, type RTCIceServer } from 'werift'
import { asDtlsServer, describeError, type TransportPath } from '@doorbell/core'
import type { ControlChannel, MediaPeers } from '../answering'
import type { Camera } from '../camera/camera'
import type { Microphone } from '../audio/microphone'
import type { Speaker } from '../audio/speaker'
import { createPeerConnection, mendDataChannel, withoutDefaultStun } from './werift'
import { observeSetup } from './setupTiming'
import { keepEarlyDtls } from './earlyDtls'
import { promptSend } from './promptSend'

export interface WeriftPeersOptions {
  camera: Camera
  /** The doorbell's microphone, sent to each connected session; its speaker, for what the viewer allowed to talk says. */
  microphone: Microphone
  speaker: Speaker
  /**
   * ICE for one session: none on a plain LAN; the doorbell's STUN/TURN (TURN REST credentials
   * minted for this call) and relay policy; the cloud's TURN for a call that came that way.
   */
  ice: (path: TransportPath | null) => Promise<{ iceServers: RTCIceServer[], iceTransportPolicy: 'all' | 'relay' }>
  iceAdditionalHostAddresses: string[]
  /** Keep a viewer's DTLS hello that comes before werift's DTLS server listens (earlyDtls.ts); default on. */
  keepEarlyDtls?: boolean
}

/** Kept here for the doorbell's callers; the one definition is core's. */
export { describeError }

/** The answer's stream ids (a=msid): one for the video, another for the sound, so a browser does not delay the sound to the video. */
export const VIDEO_STREAM = 'doorbell-video'
export const AUDIO_STREAM = 'doorbell-audio'
/** Both in one stream, for a viewer that plays the first track's stream as a whole (`oneStream`: the stock KVS viewers). */
export const ONE_STREAM = 'doorbell'

/**
 * The doorbell's media for the shared answering session (`answeringSession` in
 * `../answering`): a werift peer connection per viewer that answers the viewer's offer and
 * sends the shared camera's RTP. When the offer has audio, the answer's audio line is
 * sendrecv: the shared microphone's Opus goes out once connected (never before), and the
 * viewer's Opus goes to the speaker when the talk floor lets this session be heard.
 */
export function weriftPeers (o: WeriftPeersOptions): MediaPeers {
  return {
    name: 'doorbell',
    async open (session, events) {
      const { iceServers, iceTransportPolicy } = await o.ice(session.path)
      const pc = createPeerConnection({ codec: o.camera.codec, iceServers, iceTransportPolicy, iceAdditionalHostAddresses: o.iceAdditionalHostAddresses })
      // Video starts once the sender can encrypt, with the camera's last group of pictures, so
      // the first packet the viewer gets starts a keyframe. Each viewer has its own track:
      // werift rewrites headers per sender.
      const track = new MediaStreamTrack({ kind: 'video' })
      let closed = false
      let stopVideo: (() => void) | null = null
      let stopAudio: (() => void) | null = null
      const audio = session.audio ? new MediaStreamTrack({ kind: 'audio' }) : null
      // A preview sends no sound until its viewer answers (openAudio).
      let audioOpen = !session.preview
      const startAudio = (): void => {
        // Audio leaves the device only once connected, and in a preview only once answered.
        if (!audio || stopAudio || closed || !stopVideo || !audioOpen) return
        // The microphone's current frame at once, then each next one (no wait for the encoder's next frame).
        let first = true
        stopAudio = o.microphone.subscribe((packet) => {
          audio.writeRtp(packet)
          if (first) { first = false; events.setup?.('audio out') }
        }, { fromLast: true })
      }
      const startVideo = (): void => {
        if (stopVideo || closed) return
        // The cached group goes out inside subscribe: counted, for the set-up log.
        let replaying = true
        let replayed = 0
        stopVideo = o.camera.subscribe((packet) => { if (replaying) replayed++; track.writeRtp(packet) }, { fromKeyframe: true })
        replaying = false
        events.setup?.('video out', { replayed })
        startAudio()
      }
      // Video and sound each in a stream of its own (a=msid): a browser then plays the visitor's
      // voice as soon as it has it, instead of holding it back to line up with the video (lip sync
      // is kept for tracks of one stream, and a frame's decode, render and jitter buffer made the
      // voice wait 50-220 ms more: docs/audio.md). In a conversation at the door, the voice first.
      // A stock KVS viewer shows the first track's stream as a whole: both go in one (`oneStream`).
      const [videoStream, audioStream] = session.oneStream === true ? [ONE_STREAM, ONE_STREAM] : [VIDEO_STREAM, AUDIO_STREAM]
      const { sender } = pc.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream({ id: videoStream })] })
      if (audio) {
        const voice = pc.addTransceiver(audio, { direction: 'sendrecv', streams: [new MediaStream({ id: audioStream })] })
        voice.onTrack.subscribe((received) => {
          received.onReceiveRtp.subscribe((rtp) => {
            if (!closed && o.speaker.enabled && session.mayTalk()) o.speaker.play(session.sessionId, rtp.serialize())
          })
        })
      }
      pc.onDataChannel.subscribe((dc) => {
        const channel: ControlChannel = {
          label: dc.label,
          isOpen: () => dc.readyState === 'open',
          send: (text) => { dc.send(text) },
          onOpen: (listener) => {
            dc.stateChanged.subscribe((state) => { if (state === 'open') listener() })
            if (dc.readyState === 'open') listener()
          },
          onMessage: (listener) => { dc.onMessage.subscribe((data) => { listener(data) }) }
        }
        events.channel(channel)
      })
      pc.connectionStateChange.subscribe((state) => {
        // Any socket ICE made after the answer (a relay) sends at once too.
        if (state === 'connected') { promptSend(pc); startVideo() }
        events.connectionState(state)
      })
      let stopObserving = (): void => {}
      let stopKeeping = (): void => {}
      let stopNumbering = (): void => {}
      return {
        async answer (sdp) {
          events.setup?.('peer made')
          await pc.setRemoteDescription({ type: 'offer', sdp })
          const ice = pc.iceTransports[0]?.connection
          if (o.keepEarlyDtls !== false && ice && sender.dtlsTransport) stopKeeping = keepEarlyDtls({ ice, dtls: sender.dtlsTransport })
          // Each DTLS record numbered once (the viewer drops a repeat), a lost message resent at once (werift.ts).
          stopNumbering = mendDataChannel(pc, (step, reason) => { events.setup?.(step, { reason }) })
          if (events.setup) stopObserving = observeSetup(pc, sender.dtlsTransport, events.setup)
          // The first moment SRTP can carry video; the peer's own 'connected' comes a little later.
          sender.dtlsTransport?.onStateChange.subscribe((s) => { if (s === 'connected') startVideo() })
          withoutDefaultStun(pc, iceServers)
          const made = await pc.createAnswer()
          // The DTLS server for every viewer: browsers start the handshake the moment their ICE check
          // succeeds, and as the client werift waits 100 ms before its first flight (libdatachannel's
          // calls connected in about half the time once werift served them: docs/performance.md).
          await pc.setLocalDescription(asDtlsServer(made))
          // The host sockets exist now: what they send leaves inside send (promptSend.ts), not when
          // the doorbell has finished handling a command.
          const prompt = promptSend(pc)
          events.setup?.('answer made', prompt.prompt < prompt.sockets ? { promptSend: `${prompt.prompt} of ${prompt.sockets} sockets` } : undefined)
          const answer = pc.localDescription?.sdp
          if (!answer) throw new Error('werift produced no answer')
          return answer
        },
        async addCandidate (c) {
          await pc.addIceCandidate({ candidate: c.candidate, ...(c.sdpMid != null ? { sdpMid: c.sdpMid } : {}), ...(c.sdpMLineIndex != null ? { sdpMLineIndex: c.sdpMLineIndex } : {}) })
        },
        openAudio () {
          audioOpen = true
          startAudio()
        },
        close () {
          closed = true
          stopObserving()
          stopKeeping()
          stopNumbering()
          stopVideo?.()
          stopAudio?.()
          void pc.close().catch(() => {})
        }
      }
    }
  }
}

/** Moved to core (the browser camera node answers the same way); kept here for existing imports. */
export { asDtlsServer }
