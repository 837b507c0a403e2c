import { RTCPeerConnection, RTCRtpCodecParameters, type RTCIceServer } from 'werift'
import { H264_FMTP } from '../camera/ffmpegArgs'

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
