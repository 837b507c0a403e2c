import type { Offer, TransportPath } from '@doorbell/core'

/** The device call machine's types (deviceCall.ts): its input, context, events and what its supplied actions are given. */
export interface DeviceCallInput {
  ringTimeoutMs: number
  maxCallMs: number
  maxViewers: number
  /**
   * The owner's setting: screens may watch the visitor live while it rings (default true; false:
   * the snapshot only). A press may carry a newer value: it holds from that ring on.
   */
  livePreview?: boolean
  /**
   * Previews on the cloud path at most (default `KVS_MAX_PREVIEWS`, 9): each holds one of KVS's 10
   * viewer connections on the doorbell's channel, and one is kept for the screen that answers.
   */
  maxCloudPreviews?: number
}

export interface SessionInfo {
  sessionId: string
  viewerId: string
  viewerName: string
  since: number
}

export interface SessionInput extends SessionInfo {
  sdp: string
  /**
   * A preview while it rings: video only, the doorbell's microphone not sent and nothing the
   * viewer sends played, until the machine sends the session `OPEN_AUDIO` (its viewer answered).
   */
  preview: boolean
}

/** What the machine sends a preview session whose viewer answered: audio both ways from now on. */
export interface OpenAudio { type: 'OPEN_AUDIO' }

/** A session as the call knows it: who is in it, the member who owns it, the path its signaling takes. */
export interface CallSession extends SessionInfo {
  /** The member whose grant admitted the offer (null: offered without admission, as the tests do). */
  memberId: string | null
  /** The path the offer came on: its answer goes back the same way. */
  path: TransportPath | null
  /** A preview while it rings (not in the call: no audio either way, not a participant). */
  preview: boolean
}

/** An offer being admitted: its viewer (the only one who may withdraw it) and what the session needs. */
export interface Admitting {
  viewerId: string
  sdp: string
  path: TransportPath
  at: number
  preview: boolean
}

/** What the `admit` actor is given: the offer as it came, and the viewer that sent it. */
export interface AdmitInput {
  viewerId: string
  offer: Offer
}

/** What admission decides: a member (its id and name) or a refusal with the reason to tell the viewer. */
export type Admission =
  | { ok: true, memberId: string, name: string }
  | { ok: false, reason: string, message: string }


export interface RingInfo {
  ringId: string
  at: number
  count: number
}

/** A ring as announced to the screens: `livePreview: false` when they may not preview it. */
export interface AnnouncedRing extends RingInfo {
  livePreview?: false
}

export interface DeviceCallContext extends DeviceCallInput {
  livePreview: boolean
  maxCloudPreviews: number
  ring: RingInfo | null
  callStartedAt: number | null
  sessions: Record<string, CallSession>
  /** Offers whose credential is being checked, by session id. */
  admitting: Record<string, Admitting>
  answeredBy: Array<{ viewerId: string, viewerName: string }>
  unlocks: Array<{ viewerId: string, at: number }>
  lastRing: { ringId: string, at: number, outcome: 'answered' | 'missed' } | null
}

export type DeviceCallEvent =
  /** `livePreview`: the owner's setting now (absent: as before); taken by a new ring, not by a repeat press. */
  | { type: 'PRESS', ringId: string, at: number, livePreview?: boolean }
  /** An offer as it arrived on a path: admitted first (the `admit` actor), then it becomes an OFFER. */
  | { type: 'OFFER_RECEIVED', viewerId: string, offer: Offer, path: TransportPath, at: number }
  /** An admitted offer (`memberId` and `path` absent: offered without admission). */
  | { type: 'OFFER', sessionId: string, viewerId: string, viewerName: string, sdp: string, at: number, memberId?: string, path?: TransportPath, preview?: boolean }
  /** A preview session's viewer answered on it (its data channel): it becomes the call, with no new connection. */
  | { type: 'TAKE_CALL', sessionId: string, at: number }
  /** Admission refused an offer's credential (raised by the machine itself). */
  | { type: 'OFFER_REFUSED', sessionId: string, viewerId: string, path: TransportPath, reason: string, message: string }
  /** A viewer's bye as it arrived on a path: it ends the session only if that viewer owns it. */
  | { type: 'VIEWER_BYE', sessionId: string, viewerId: string, reason: string, path: TransportPath }
  /** The device's own end of a session (or a bye already checked). */
  | { type: 'BYE', sessionId: string }
  /** These members were removed from the home: their sessions end now. */
  | { type: 'REVOKED', memberIds: string[] }
  | { type: 'SESSION_ENDED', sessionId: string, reason: string }
  | { type: 'UNLOCKED', sessionId: string, at: number }
  | { type: 'END_CALL', at: number }

/** What `recordCall` is given: everything the call record needs. */
export interface CallSummary {
  ringId: string | null
  startedAt: number
  /** null: the call ends now, by the device's clock. */
  endedAt: number | null
  outcome: 'answered' | 'missed' | 'live-view'
  answeredBy: Array<{ viewerId: string, viewerName: string }>
  unlocks: Array<{ viewerId: string, at: number }>
}

/** Why an offer is refused by the call itself (its credential was fine). */
export type RejectReason = 'busy' | 'preview-off' | 'ring-over' | 'cloud-full'

/** The previews a ring's end closes, and why: answered (by whom) or missed. */
export interface PreviewsEnd {
  previews: Array<{ sessionId: string, viewerId: string }>
  why: 'answered' | 'missed'
  by: string | null
}
