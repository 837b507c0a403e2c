import { z } from 'zod'
import { KVS_PAYLOAD_MAX, fromKvs, kvsPayloadSize, toKvsPayload, type KvsDecoded } from './cloud'
import { KeptReadFrame, KeptReadRequest, MAX_KEPT_FRAME_BYTES } from './directKept'
import { Id } from './ids'

/**
 * The doorbell's own history away from home (docs/history.md, "Browsing it from away from
 * home"): a screen on the cloud path, the hub down, reads the rings the doorbell keeps on the
 * doorbell's KVS signaling channel, as dismissals and quick replies go (cloudCommand.ts). The
 * request is the direct path's `KeptReadRequest` as is (signed for KEPT_SESSION, checked by the
 * doorbell's one kept-read check), with an id; the answer is the direct path's frames (rings
 * newest first, then `end`; or `refused`), as JSON text cut into parts that each fit KVS's 10 KB
 * payload limit, sent to that viewer alone on SDP_ANSWER and joined and parsed on the screen.
 * KVS takes at most 5 SDP_ANSWER a second per connection (a hard limit), which every call's answer
 * shares: the doorbell sends parts at {@link KEPT_PARTS_PER_SECOND} and answers the newest
 * {@link MAX_CLOUD_KEPT_READ} rings only.
 */

/** The most rings one cloud read answers (newest first): each is up to ~13 parts, sent 3 a second. */
export const MAX_CLOUD_KEPT_READ = 5
/** Parts the doorbell sends a second, all reads together: KVS allows 5 SDP_ANSWER a second, 2 are left for calls and results. */
export const KEPT_PARTS_PER_SECOND = 3
/** A part's text budget, counted as KVS counts it (see partCost): with the envelope it stays under KVS_PAYLOAD_MAX. */
export const KEPT_PART_BUDGET = 7000
/** The answer's text at most: the rings' frames, `end`, and the array's commas. */
export const MAX_KEPT_ANSWER_CHARS = (MAX_CLOUD_KEPT_READ + 1) * (MAX_KEPT_FRAME_BYTES + 16)
/** The parts of one answer at most (a part carries at least a quarter of its budget). */
export const MAX_KEPT_PARTS = Math.ceil(MAX_KEPT_ANSWER_CHARS / (KEPT_PART_BUDGET / 4))

/** Viewer -> device, on SDP_OFFER. */
export const CloudKeptRead = z.strictObject({ type: z.literal('kept-read'), id: Id, request: KeptReadRequest })
export type CloudKeptRead = z.infer<typeof CloudKeptRead>

/** Device -> viewer, on SDP_ANSWER: part `part` of `parts` of the answer's text (`id` null: the request could not be read). */
export const CloudKeptPart = z.strictObject({
  type: z.literal('kept-part'),
  id: Id.nullable(),
  part: z.number().int().min(0).max(MAX_KEPT_PARTS - 1),
  parts: z.number().int().min(1).max(MAX_KEPT_PARTS),
  data: z.string().max(KEPT_PART_BUDGET)
}).refine((p) => p.part < p.parts, 'a part\'s index is below its count')
export type CloudKeptPart = z.infer<typeof CloudKeptPart>

/** The answer, joined: the direct path's frames. */
const KeptAnswerFrames = z.array(KeptReadFrame).min(1).max(MAX_CLOUD_KEPT_READ + 1)

export class KeptPartsError extends Error {
  override readonly name = 'KeptPartsError'
}

/** What a character of the text costs in KVS's count: JSON-escaped twice (in the part, then by the SDK) a quote or backslash is four. */
const partCost = (c: string): number => (c === '"' || c === '\\' ? 4 : 1)

/**
 * The KVS payloads of one answer: `frames` as ASCII-only JSON text, cut so that each part fits
 * KVS's limit. Throws KeptPartsError when the text is over the bound (the caller sends fewer rings).
 */
export function keptAnswerParts (id: string | null, frames: KeptReadFrame[]): string[] {
  const text = toKvsPayload(frames as unknown as { type: string })
  if (text.length > MAX_KEPT_ANSWER_CHARS) throw new KeptPartsError(`the answer is ${text.length} characters, over ${MAX_KEPT_ANSWER_CHARS}`)
  const pieces: string[] = []
  let start = 0
  let cost = 0
  for (let i = 0; i < text.length; i++) {
    const c = partCost(text[i]!)
    if (cost + c > KEPT_PART_BUDGET) { pieces.push(text.slice(start, i)); start = i; cost = 0 }
    cost += c
  }
  pieces.push(text.slice(start))
  if (pieces.length > MAX_KEPT_PARTS) throw new KeptPartsError(`the answer needs ${pieces.length} parts, over ${MAX_KEPT_PARTS}`)
  return pieces.map((data, part) => {
    const payload = toKvsPayload(CloudKeptPart.parse({ type: 'kept-part', id, part, parts: pieces.length, data }))
    // Never reached (the budget leaves room for the envelope); checked so a change to it cannot send what KVS refuses.
    if (kvsPayloadSize(payload) > KVS_PAYLOAD_MAX) throw new KeptPartsError(`part ${part} is over KVS's ${KVS_PAYLOAD_MAX}-byte limit`)
    return payload
  })
}

/**
 * Gathers one answer's parts (any order; a repeated part must be the same) and, once all came,
 * parses the joined text into the direct path's frames. Throws KeptPartsError on parts that do not
 * agree or text that is not frames.
 */
export class KeptParts {
  private readonly parts: Array<string | undefined>
  private got = 0
  private chars = 0

  constructor (readonly count: number) {
    this.parts = new Array<string | undefined>(count)
  }

  /** Adds a part; the frames once every part is in, else null. */
  add (p: CloudKeptPart): KeptReadFrame[] | null {
    if (p.parts !== this.count) throw new KeptPartsError(`part ${p.part} says ${p.parts} parts, an earlier one ${this.count}`)
    const held = this.parts[p.part]
    if (held !== undefined) {
      if (held !== p.data) throw new KeptPartsError(`part ${p.part} came twice, different`)
      return null
    }
    this.chars += p.data.length
    if (this.chars > MAX_KEPT_ANSWER_CHARS) throw new KeptPartsError(`the answer is over ${MAX_KEPT_ANSWER_CHARS} characters`)
    this.parts[p.part] = p.data
    if (++this.got < this.count) return null
    let json: unknown
    try { json = JSON.parse(this.parts.join('')) } catch { throw new KeptPartsError('the joined answer is not JSON') }
    const frames = KeptAnswerFrames.safeParse(json)
    if (!frames.success) throw new KeptPartsError(frames.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ').slice(0, 300))
    return frames.data
  }
}

/** Whether a KVS payload is JSON of our envelope with this `type`, before it is parsed in full. */
function hasType (payload: unknown, type: string): boolean {
  if (typeof payload !== 'string' || !payload.includes(`"${type}"`)) return false
  try {
    return (JSON.parse(payload) as { type?: unknown } | null)?.type === type
  } catch {
    return false
  }
}

/** Whether a KVS payload is a read of the kept rings; anything else is signaling or another envelope. */
export const isCloudKeptRead = (payload: unknown): boolean => hasType(payload, 'kept-read')
/** Whether a KVS payload from the doorbell is a part of a kept-rings answer. */
export const isCloudKeptPart = (payload: unknown): boolean => hasType(payload, 'kept-part')

export const decodeCloudKeptRead = (payload: unknown): KvsDecoded<CloudKeptRead> => fromKvs(CloudKeptRead, payload)
export const decodeCloudKeptPart = (payload: unknown): KvsDecoded<CloudKeptPart> => fromKvs(CloudKeptPart, payload)
