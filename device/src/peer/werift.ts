import { RTCPeerConnection, RTCRtpCodecParameters, type RTCIceServer } from 'werift'
import { H264_FMTP } from '../camera/ffmpegArgs'
import { uniqueRecordNumbers } from './dtlsRecordNumbers'
import { fasterRecovery } from './sctpRecovery'

export interface PeerOptions {
  codec: 'h264' | 'vp8'
  iceServers: RTCIceServer[]
  /** 'relay': TURN only (the doorbell's own addresses never leave it). */
  iceTransportPolicy?: 'all' | 'relay'
  iceAdditionalHostAddresses: string[]
}

const feedback = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }, { type: 'goog-remb' }]

export function videoCodec (codec: 'h264' | 'vp8'): RTCRtpCodecParameters {
  return codec === 'h264'
    ? new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, rtcpFeedback: feedback, parameters: H264_FMTP })
    : new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: feedback })
}

/** Opus as browsers offer it (48 kHz, "2 channels" in SDP whatever is sent; in-band FEC). */
export function opusCodec (): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: 'minptime=10;useinbandfec=1' })
}

export function createPeerConnection (o: PeerOptions): RTCPeerConnection {
  return new RTCPeerConnection({
    codecs: { video: [videoCodec(o.codec)], audio: [opusCodec()] },
    bundlePolicy: 'max-bundle',
    iceServers: o.iceServers,
    iceTransportPolicy: o.iceTransportPolicy ?? 'all',
    iceAdditionalHostAddresses: o.iceAdditionalHostAddresses.length > 0 ? o.iceAdditionalHostAddresses : undefined
  })
}

/**
 * werift falls back to stun.l.google.com when no STUN server is configured, and gathering
 * then waits ~5 s for it on a LAN without internet. With no STUN server of our own, clear
 * it on every ICE transport before gathering: host candidates are all a LAN call needs.
 * Call after setRemoteDescription (which creates the transports), before setLocalDescription.
 */
export function withoutDefaultStun (pc: RTCPeerConnection, iceServers: RTCIceServer[]): void {
  const hasStun = iceServers.some((s) => [s.urls].flat().some((u) => u.startsWith('stun:')))
  if (hasStun) return
  for (const transport of pc.iceTransports) {
    (transport.connection as { stunServer?: unknown }).stunServer = undefined
  }
}

/**
 * The doorbell's mends to werift's data channel on one peer, after setRemoteDescription (which
 * makes its transports): every DTLS record numbered once (dtlsRecordNumbers.ts) and a lost message
 * resent at the first report of it or after WebRTC's timeout (sctpRecovery.ts). `notApplied` is
 * told of a mend that found werift not as known (nothing of it is changed). Returns a stop for the
 * record numbers' wait, for a session closed before its DTLS starts.
 */
export function mendDataChannel (pc: RTCPeerConnection, notApplied: (step: string, reason: string) => void = () => {}): () => void {
  // With max-bundle, one DTLS transport carries the media and the data channel.
  const dtls = pc.dtlsTransports[0]
  const stop = dtls
    ? uniqueRecordNumbers(dtls, (kept) => { if (!kept) notApplied('dtls record numbers not kept', 'werift\'s record counter was not found; the viewer may drop one data record a call') })
    : () => {}
  if (pc.sctpTransport && !fasterRecovery(pc.sctpTransport.sctp)) notApplied('sctp recovery not changed', 'werift\'s association was not as known; a lost message may wait 1 s or more')
  return stop
}
