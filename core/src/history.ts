import { z } from 'zod'
import { Id } from './ids'
import { CallRecord, RingEvent } from './schemas'
import { MAX_SNAPSHOT_MESSAGE_BYTES, SnapshotEvent } from './snapshot'
import { EventClip } from './clip'

/**
 * The hub's event history at `/api/events` (docs/history.md): every ring (missed, answered: by
 * whom, how long) and every open-door attempt (allowed, denied), newest first, a page at a time.
 */

export const EventFilter = z.enum(['missed', 'dismissed', 'answered', 'door', 'talk'])
export type EventFilter = z.infer<typeof EventFilter>

/** A page's place: the `next` of the page before (the last event's time and id). */
export const EventCursor = z.string().regex(/^\d{1,15}-\d{1,15}$/, 'before is the `next` of the page before')

export const EventsQuery = z.strictObject({
  before: EventCursor.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  filter: EventFilter.optional(),
  device: Id.optional()
})
export type EventsQuery = z.infer<typeof EventsQuery>

export const HistoryEvent = z.strictObject({
  id: z.number().int().positive(),
  kind: z.enum(['ring', 'door', 'talk']),
  deviceId: Id,
  deviceName: z.string().max(64),
  at: z.number().int().nonnegative(),
  /**
   * A ring: ringing (not over yet), missed, dismissed (nobody answered and at least one screen
   * dismissed it), answered. A door attempt or a request to talk: allowed, denied.
   */
  outcome: z.enum(['ringing', 'missed', 'dismissed', 'answered', 'allowed', 'denied']),
  /** Who answered the ring, who dismissed it, who tried the door, or who asked to talk. */
  who: z.array(z.string().max(64)).max(64),
  /** How long an answered call lasted. */
  durationMs: z.number().int().nonnegative().nullable(),
  /** A door attempt's reason (denied: why). */
  detail: z.string().max(300).nullable(),
  ringId: Id.nullable(),
  /** A picture is at /api/events/{id}/snapshot. */
  snapshot: z.boolean(),
  /** Why there is no picture, when the doorbell said. */
  noPicture: z.string().max(200).nullable(),
  /** A missed ring this member has not seen on any of their screens. */
  unseen: z.boolean(),
  /** The ring's clip (the owner's setting, docs/history.md): there, or why not; absent: none was recorded. */
  clip: EventClip.optional(),
  /**
   * A dismissed ring: true when every member whose screen was shown it (connected when it rang)
   * dismissed it; false when some did not, or the hub does not know who was shown it.
   */
  everyoneDismissed: z.boolean().optional()
})
export type HistoryEvent = z.infer<typeof HistoryEvent>

export const EventsPage = z.strictObject({
  events: z.array(HistoryEvent).max(200),
  /** `before` for the next page; null: this is the last. */
  next: EventCursor.nullable(),
  /** Missed rings this member has not seen (all devices they may see). */
  unseen: z.number().int().nonnegative()
})
export type EventsPage = z.infer<typeof EventsPage>

/** `POST /api/events/seen`: these events (or every one up to `upTo`) were seen by the member. */
export const SeenRequest = z.strictObject({
  ids: z.array(z.number().int().positive()).max(500).optional(),
  all: z.literal(true).optional()
}).refine((r) => (r.ids !== undefined) !== (r.all !== undefined), 'give ids or all: true')
export type SeenRequest = z.infer<typeof SeenRequest>

/**
 * `POST /api/events/dismissed`: this member's screen dismissed a ring of a doorbell they may see.
 * Nobody answering, the ring is then recorded as dismissed (by whom) rather than missed.
 */
export const DismissRequest = z.strictObject({
  deviceId: Id,
  ringId: Id,
  /** Which of the member's screens dismissed it (its hub connection's client id), for "dismissed by everyone" per screen; absent (older pages): all of the member's screens. */
  screen: Id.optional()
})
export type DismissRequest = z.infer<typeof DismissRequest>

/**
 * A ring the doorbell kept on its own disk (docs/history.md, "The doorbell's own copy") and hands
 * to the hub on `…/kept`: the ring, its latest picture and how it ended (null while it has not, or
 * when the doorbell restarted during it). The hub takes it by ring id, so a copy it already has
 * changes nothing; viewers never subscribe to it (no stale ring alerts).
 */
/** The most dismissals one kept ring carries (one per member; later ones are refused by the doorbell). */
export const MAX_KEPT_DISMISSALS = 20

/**
 * A member dismissed a kept ring on the doorbell itself (the direct path, the hub down:
 * core/src/directDismiss.ts): who, from which screen, when. The hub takes it as if the screen had
 * told it (`POST /api/events/dismissed`).
 */
export const KeptDismissal = z.strictObject({
  memberId: Id,
  memberName: z.string().trim().min(1).max(64),
  viewerId: Id,
  at: z.number().int().nonnegative()
})
export type KeptDismissal = z.infer<typeof KeptDismissal>

export const KeptRing = z.strictObject({
  type: z.literal('kept'),
  deviceId: Id,
  ring: RingEvent,
  snapshot: SnapshotEvent.nullable(),
  record: CallRecord.nullable(),
  /** Absent until a screen dismissed the ring on the doorbell (an older hub refuses the field, so it is sent only then). */
  dismissals: z.array(KeptDismissal).min(1).max(MAX_KEPT_DISMISSALS).optional()
}).refine((k) => k.ring.deviceId === k.deviceId && (k.snapshot === null || (k.snapshot.deviceId === k.deviceId && k.snapshot.ringId === k.ring.ringId)) &&
  (k.record === null || (k.record.deviceId === k.deviceId && k.record.ringId === k.ring.ringId)), 'a kept ring\'s parts are of one ring of its own device')
export type KeptRing = z.infer<typeof KeptRing>

/** A kept ring's message at most: its picture's bound and room for the ring and the record. */
export const MAX_KEPT_MESSAGE_BYTES = MAX_SNAPSHOT_MESSAGE_BYTES + 16 * 1024
