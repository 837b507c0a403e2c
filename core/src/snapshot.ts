import { z } from 'zod'
import { Id } from './ids'

/**
 * The visitor's picture with a ring (docs/history.md): a JPEG the doorbell makes from its latest
 * keyframe at the press, and again a few seconds later (`seq` 2 replaces 1). It travels on its own
 * topic after the ring, so the ring itself is never delayed or made large. `jpeg: null` says the
 * picture could not be made (camera down), and `reason` why: the banner says "no picture".
 */

/** What the doorbell aims for (640 px wide); what the hub and the viewers accept at most. */
export const SNAPSHOT_TARGET_BYTES = 50 * 1024
export const MAX_SNAPSHOT_BYTES = 64 * 1024
/** Base64 of FF D8 FF, the start of every JPEG (SOI, then a marker). */
/** A snapshot message at most: the largest picture in base64, and room for the rest of the JSON. */
export const MAX_SNAPSHOT_MESSAGE_BYTES = Math.ceil(MAX_SNAPSHOT_BYTES / 3) * 4 + 1024
const JPEG_BASE64_MAGIC = '/9j/'
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Decoded size of a base64 text without decoding it. */
export function base64Bytes (b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0
  return Math.floor(b64.length / 4) * 3 - padding
}

export const SnapshotJpeg = z.string()
  // Checked before the regex: an oversize text is refused without scanning it.
  .max(Math.ceil(MAX_SNAPSHOT_BYTES / 3) * 4, `a snapshot is at most ${MAX_SNAPSHOT_BYTES} bytes`)
  .refine((s) => s.length % 4 === 0 && BASE64.test(s), 'a snapshot is base64')
  .refine((s) => s.startsWith(JPEG_BASE64_MAGIC), 'a snapshot is a JPEG (it must start with FF D8 FF)')
  .refine((s) => base64Bytes(s) <= MAX_SNAPSHOT_BYTES, `a snapshot is at most ${MAX_SNAPSHOT_BYTES} bytes`)

export const SnapshotEvent = z.strictObject({
  type: z.literal('snapshot'),
  deviceId: Id,
  /** The ring this picture belongs to. */
  ringId: Id,
  /** When the picture was taken (device clock). */
  at: z.number().int().nonnegative(),
  /** 1 at the press, 2 a few seconds later (replaces 1). */
  seq: z.number().int().min(1).max(10),
  jpeg: SnapshotJpeg.nullable(),
  /** Why there is no picture, when jpeg is null. */
  reason: z.string().max(200).optional()
}).refine((s) => s.jpeg !== null || s.reason !== undefined, 'a snapshot without a picture says why (reason)')
export type SnapshotEvent = z.infer<typeof SnapshotEvent>
