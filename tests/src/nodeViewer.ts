import { RTCPeerConnection, type RtpPacket } from 'werift'
import { Home, type HomeOptions, type PeerConnectionLike, type ReplyLink, type TalkLink } from '@doorbell/viewer/lib'
import { opusCodec, videoCodec, withoutDefaultStun } from '@doorbell/device'
import type { PairedViewer } from './trust'

export interface NodeViewer {
  home: Home
  /** The video's RTP packets. */
  rtp: RtpPacket[]
  /** The doorbell's microphone (Opus RTP). */
  audioRtp: RtpPacket[]
  alerts: string[]
  /** Each call's talk lease and quick replies, by device (the last call's). */
  talk: Map<string, TalkLink & ReplyLink>
  close: () => Promise<void>
}

/** The viewer app's own call logic (Home, callSession) running in Node on a werift peer. */
export function nodeViewer (url: string, paired: PairedViewer, codec: 'h264' | 'vp8' = 'h264', more: Pick<HomeOptions, 'onDismissed' | 'preview' | 'spare' | 'fetchCredential' | 'onCredential' | 'devices' | 'onAudioSender' | 'cloud' | 'linkTiming' | 'log'> = {}): NodeViewer {
  const rtp: RtpPacket[] = []
  const audioRtp: RtpPacket[] = []
  const alerts: string[] = []
  const talk = new Map<string, TalkLink & ReplyLink>()
  const home = new Home({
    url,
    homeId: paired.homeId,
    viewerId: paired.viewerId,
    viewerName: paired.name,
    trust: paired,
    log: more.log ?? (() => {}),
    createPeerConnection: (iceServers) => new RTCPeerConnection({
      iceServers,
      iceAdditionalHostAddresses: ['127.0.0.1'],
      bundlePolicy: 'max-bundle',
      codecs: { video: [videoCodec(codec)], audio: [opusCodec()] }
    }) as unknown as PeerConnectionLike,
    beforeGather: (pc) => { withoutDefaultStun(pc as unknown as RTCPeerConnection, (pc as unknown as RTCPeerConnection).config.iceServers) },
    onTrack: (_call, event: { track: { kind: string, onReceiveRtp: { subscribe: (f: (p: RtpPacket) => void) => void } } }) => {
      const into = event.track.kind === 'audio' ? audioRtp : rtp
      event.track.onReceiveRtp.subscribe((p) => { into.push(p) })
    },
    alert: (deviceId) => { alerts.push(deviceId) },
    onTalkLink: (call, link) => { talk.set(call.deviceId, link) },
    ...more
  })
  return { home, rtp, audioRtp, alerts, talk, close: async () => { await home.close() } }
}
