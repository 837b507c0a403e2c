import { z } from 'zod'
import { Id } from './ids'
import { Signed } from './trust'

/** Epoch milliseconds as set by the sender's clock. */
const Millis = z.number().int().nonnegative()
const Name = z.string().trim().min(1).max(64)

/** Session descriptions are bounded (KVS caps a message at 10 KB; ours allows more on the LAN). */
export const MAX_SDP_BYTES = 32 * 1024
export const Sdp = z
  .string()
  .max(MAX_SDP_BYTES, `an SDP is at most ${MAX_SDP_BYTES} bytes`)
  .refine((s) => s.startsWith('v=0'), 'an SDP starts with "v=0"')
  .refine((s) => /\r?\nm=(video|application) /.test(s), 'an SDP has a video or data m-line')

// ---------------------------------------------------------------- events on the home's topics

export const RingEvent = z.strictObject({
  type: z.literal('ring'),
  deviceId: Id,
  deviceName: Name,
  ringId: Id,
  at: Millis,
  /** 1 for the first press; a press while ringing re-alerts with the same ringId and count + 1. */
  count: z.number().int().min(1).max(1000),
  /** false: the owner turned live preview off for this doorbell (screens show the snapshot only; the doorbell refuses previews anyway). */
  livePreview: z.literal(false).optional()
})
export type RingEvent = z.infer<typeof RingEvent>

export const LockStatus = z.enum(['locked', 'unlocking', 'unlocked', 'relocking', 'fault'])
export type LockStatus = z.infer<typeof LockStatus>

export const LockState = z.strictObject({
  status: LockStatus,
  /** When the door relocks by itself (device clock), while unlocked. */
  relockAt: Millis.nullable(),
  /** Grows by one on every change, so a viewer keeps the newest of two paths' reports. */
  version: z.number().int().nonnegative(),
  /** Changes when the device restarts (its version count starts again). */
  boot: Id,
  error: z.string().max(200).nullable()
})
export type LockState = z.infer<typeof LockState>

export const Participant = z.strictObject({
  sessionId: Id,
  viewerId: Id,
  viewerName: Name,
  since: Millis
})
export type Participant = z.infer<typeof Participant>

export const CallStatus = z.enum(['idle', 'ringing', 'in-call'])
export type CallStatus = z.infer<typeof CallStatus>

export const RingOutcome = z.enum(['answered', 'missed'])

export const DeviceState = z.strictObject({
  deviceId: Id,
  deviceName: Name,
  call: z.strictObject({
    status: CallStatus,
    /** The ring this call belongs to; null for a live view started without a ring. */
    ringId: Id.nullable(),
    since: Millis
  }),
  participants: z.array(Participant).max(64),
  /** The door's state; null: this device has no door (a camera node). */
  lock: LockState.nullable(),
  /** How the last ring ended, so a viewer that was away can still show it as missed. */
  lastRing: z.strictObject({ ringId: Id, at: Millis, outcome: RingOutcome }).nullable(),
  at: Millis
})
export type DeviceState = z.infer<typeof DeviceState>

/** A libp2p peer id (base58btc, Ed25519 ids start with 12D3KooW). */
export const PeerIdText = z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{46,60}$/, 'not a libp2p peer id')
/** A webrtc-direct multiaddr with its certificate hash and peer id: what a browser can dial. */
export const DirectAddr = z.string().max(300).regex(
  /^\/ip[46]\/[0-9a-fA-F.:]+\/udp\/\d{1,5}\/webrtc-direct\/certhash\/[A-Za-z0-9_-]+\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/,
  'not a webrtc-direct multiaddr with certhash and peer id'
)

/** How a viewer can reach a device without the hub: learned while the hub is up, kept for when it is not. */
export const DirectReach = z.strictObject({
  peerId: PeerIdText,
  addrs: z.array(DirectAddr).min(1).max(16)
})
export type DirectReach = z.infer<typeof DirectReach>

export const Presence = z.strictObject({
  deviceId: Id,
  /** Its name, so a screen that has no state from it (it went offline) can still name it. */
  deviceName: Name.optional(),
  online: z.boolean(),
  at: Millis,
  /** Where the device listens for direct (libp2p) connections, when it does. */
  direct: DirectReach.optional()
})
export type Presence = z.infer<typeof Presence>

export const CallRecord = z.strictObject({
  deviceId: Id,
  ringId: Id.nullable(),
  startedAt: Millis,
  endedAt: Millis,
  outcome: z.enum(['answered', 'missed', 'live-view']),
  answeredBy: z.array(z.strictObject({ viewerId: Id, viewerName: Name })).max(64),
  unlocks: z.array(z.strictObject({ viewerId: Id, at: Millis })).max(1000)
})
export type CallRecord = z.infer<typeof CallRecord>

// ---------------------------------------------------------------- signaling (one session = one viewer's peer connection)

export const Offer = z.strictObject({
  type: z.literal('offer'),
  sessionId: Id,
  viewerId: Id,
  viewerName: Name,
  sdp: Sdp,
  /** The viewer's grant, signed by the home: the device shows its camera to members only. */
  credential: Signed,
  /** A ViewClaim for this session signed by the grant's key (trust.ts): the sender holds the grant. */
  proof: Signed,
  /**
   * A live preview while it rings: video only until the viewer answers on it (`take-call` on the
   * data channel); its audio line is negotiated now, so answering needs no second offer.
   */
  preview: z.literal(true).optional()
})
export const Answer = z.strictObject({ type: z.literal('answer'), sessionId: Id, sdp: Sdp })
export const ByeReason = z.enum(['hang-up', 'device-ended', 'failed', 'busy', 'rejected'])
export type ByeReason = z.infer<typeof ByeReason>
export const Bye = z.strictObject({
  type: z.literal('bye'),
  sessionId: Id,
  reason: ByeReason,
  message: z.string().max(300).optional()
})

export const SignalToDevice = z.discriminatedUnion('type', [Offer, Bye])
export type SignalToDevice = z.infer<typeof SignalToDevice>
export const SignalToViewer = z.discriminatedUnion('type', [Answer, Bye])
export type SignalToViewer = z.infer<typeof SignalToViewer>
export type Offer = z.infer<typeof Offer>
export type Answer = z.infer<typeof Answer>
export type Bye = z.infer<typeof Bye>

// ---------------------------------------------------------------- the call's data channel

export const CONTROL_CHANNEL = 'control'

/**
 * What the viewer's call machine asks for. It leaves the viewer only signed, as a DoorCommand
 * (trust.ts), which the device checks; the reply echoes the id.
 */
export const DoorRequest = z.strictObject({ type: z.literal('unlock'), id: Id })
export type DoorRequest = z.infer<typeof DoorRequest>

/** `no-door`: the device has no door to open (a camera node). */
export const ReplyErrorCode = z.enum(['invalid-command', 'lock-fault', 'busy', 'denied', 'no-door'])
export type ReplyErrorCode = z.infer<typeof ReplyErrorCode>

/** Device -> viewer on the data channel. */
export const Reply = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ack'), id: Id, lock: LockState }),
  z.strictObject({
    type: z.literal('nack'),
    id: Id.nullable(),
    error: z.strictObject({ code: ReplyErrorCode, message: z.string().max(300) })
  }),
  z.strictObject({ type: z.literal('lock'), lock: LockState })
])
export type Reply = z.infer<typeof Reply>
