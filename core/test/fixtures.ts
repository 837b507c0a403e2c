import type { CallRecord, DeviceState, LockState, Presence, RingEvent } from '../src/index'

/** A trimmed browser offer: video and a data channel, CRLF line ends as browsers send them. */
export const OFFER_SDP = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=recvonly',
  'a=rtpmap:96 H264/90000',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=sctp-port:5000',
  ''
].join('\r\n')

export const AUDIO_ONLY_SDP = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'a=rtpmap:111 opus/48000/2',
  ''
].join('\r\n')

export const ring = (over: Partial<RingEvent> = {}): RingEvent => ({
  type: 'ring',
  deviceId: 'front-door',
  deviceName: 'Front door',
  ringId: 'r1',
  at: 1_700_000_000_000,
  count: 1,
  ...over
})

export const lock = (over: Partial<LockState> = {}): LockState => ({
  status: 'locked',
  relockAt: null,
  version: 2,
  boot: 'b1',
  error: null,
  ...over
})

export const deviceState = (over: Partial<DeviceState> = {}): DeviceState => ({
  deviceId: 'front-door',
  deviceName: 'Front door',
  call: { status: 'idle', ringId: null, since: 1_700_000_000_000 },
  participants: [],
  lock: lock(),
  lastRing: null,
  at: 1_700_000_000_000,
  ...over
})

export const presence = (over: Partial<Presence> = {}): Presence => ({
  deviceId: 'front-door',
  online: true,
  at: 1_700_000_000_000,
  ...over
})

export const callRecord = (over: Partial<CallRecord> = {}): CallRecord => ({
  deviceId: 'front-door',
  ringId: 'r1',
  startedAt: 1_700_000_000_000,
  endedAt: 1_700_000_030_000,
  outcome: 'answered',
  answeredBy: [{ viewerId: 'v1', viewerName: 'Alice' }],
  unlocks: [{ viewerId: 'v1', at: 1_700_000_010_000 }],
  ...over
})

/** A syntactically valid signed token (payload `{}`, a zero signature): schemas check the shape, the device's DoorGuard the signature. */
export const CREDENTIAL = 'e30.' + 'A'.repeat(86)

export const offer = (over: Record<string, unknown> = {}) => ({
  type: 'offer' as const,
  sessionId: 's1',
  viewerId: 'v1',
  viewerName: 'Alice',
  sdp: OFFER_SDP,
  credential: CREDENTIAL,
  proof: CREDENTIAL,
  ...over
})
