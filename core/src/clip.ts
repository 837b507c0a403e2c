import { z } from 'zod'
import { Id } from './ids'
import { base64Bytes } from './snapshot'

/**
 * The optional clip of a ring (docs/history.md, "The clip"): the first seconds after the press,
 * cut by the doorbell from the video it already sends (no second encode: the RTP it holds is
 * unpacked and remuxed with `ffmpeg -c copy`, H.264 into MP4, VP8 into WebM). It goes to the hub
 * in parts on `doorbell/{home}/{device}/clip` (QoS 1, the device itself only, no screen reads it);
 * the hub puts the parts together, checks the whole against its SHA-256, and keeps it with the
 * ring's event. A clip that could not be made says why (`clip-failed`), and the ring is untouched.
 */

/** How long a clip is: the owner's doorbell config (`camera.clipSeconds`), 10 s unless set. */
export const CLIP_SECONDS = { min: 2, max: 30, default: 10 } as const
/** A clip's size at most (a longer recording stops early at it); a hub refuses anything bigger. */
export const MAX_CLIP_BYTES = 16 * 1024 * 1024
/** One part's bytes: its base64 stays well under the broker's message bound for the topic. */
export const CLIP_PART_BYTES = 48 * 1024
export const MAX_CLIP_PARTS = Math.ceil(MAX_CLIP_BYTES / CLIP_PART_BYTES)
/** A clip message at most: one part in base64, and room for the rest of the JSON. */
export const MAX_CLIP_MESSAGE_BYTES = Math.ceil(CLIP_PART_BYTES / 3) * 4 + 1024

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

export const ClipContainer = z.enum(['mp4', 'webm'])
export type ClipContainer = z.infer<typeof ClipContainer>
export const clipMimeType = (c: ClipContainer): string => c === 'mp4' ? 'video/mp4' : 'video/webm'

export const ClipPart = z.strictObject({
  type: z.literal('clip'),
  deviceId: Id,
  ringId: Id,
  container: ClipContainer,
  /** The clip's length as recorded. */
  seconds: z.number().positive().max(CLIP_SECONDS.max + 5),
  /** The whole clip's size and hash: the hub keeps it only when every part adds up to them. */
  bytes: z.number().int().min(1).max(MAX_CLIP_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 is 64 lowercase hex digits'),
  part: z.number().int().min(0).max(MAX_CLIP_PARTS - 1),
  parts: z.number().int().min(1).max(MAX_CLIP_PARTS),
  data: z.string()
    .max(Math.ceil(CLIP_PART_BYTES / 3) * 4, `a clip part is at most ${CLIP_PART_BYTES} bytes`)
    .refine((s) => s.length > 0 && s.length % 4 === 0 && BASE64.test(s), 'a clip part is base64')
}).refine((p) => p.part < p.parts, 'part is below parts')
  .refine((p) => p.parts === Math.ceil(p.bytes / CLIP_PART_BYTES), 'parts is the clip\'s bytes in parts')
  .refine((p) => base64Bytes(p.data) === (p.part === p.parts - 1 ? p.bytes - CLIP_PART_BYTES * (p.parts - 1) : CLIP_PART_BYTES), 'a part holds its share of the clip\'s bytes')
export type ClipPart = z.infer<typeof ClipPart>

/** The clip of this ring could not be made (the camera down, the disk full, ffmpeg failed): why. */
export const ClipFailed = z.strictObject({
  type: z.literal('clip-failed'),
  deviceId: Id,
  ringId: Id,
  reason: z.string().min(1).max(200)
})
export type ClipFailed = z.infer<typeof ClipFailed>

export const ClipMessage = z.union([ClipPart, ClipFailed])
export type ClipMessage = z.infer<typeof ClipMessage>

/** What an event says of its clip (`HistoryEvent.clip`): there, at `/api/events/{id}/clip`, or why not. */
export const EventClip = z.union([
  z.strictObject({ type: z.enum(['video/mp4', 'video/webm']), bytes: z.number().int().positive(), seconds: z.number().positive() }),
  z.strictObject({ failed: z.string().max(200) })
])
export type EventClip = z.infer<typeof EventClip>

/** The owner's request (`PUT /api/devices/:id/clip`): record a clip with each ring of that doorbell. */
export const ClipSettingRequest = z.strictObject({ clip: z.boolean() })
export type ClipSettingRequest = z.infer<typeof ClipSettingRequest>

/** `GET /api/events/:id/clip-url`: a short-lived address a `<video>` can play (and seek) without the member's token. */
export const ClipUrl = z.strictObject({ url: z.string().startsWith('/api/events/').max(1000), expiresAt: z.number().int() })
export type ClipUrl = z.infer<typeof ClipUrl>
