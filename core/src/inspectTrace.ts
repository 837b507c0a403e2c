import { z } from 'zod'
import { InspectBatch, InspectEvent } from './inspect'
import { redactPayload } from './redact'

/**
 * A call trace: what an inspector recorded (for one call or a time range), saved as a file and
 * replayed later by any inspector, with no doorbell running. Versioned: a reader refuses a newer
 * version rather than misread it. Payloads are redacted again on export and on load.
 */
export const TRACE_FORMAT = 'doorbell-inspector-trace'
export const TRACE_VERSION = 1
/** A trace is a few calls' worth of events; a bigger file is refused before it is parsed. */
export const TRACE_MAX_BYTES = 4 * 1024 * 1024
export const TRACE_MAX_ENTRIES = 20_000

export const TraceEntry = z.strictObject({
  source: InspectBatch.shape.source,
  event: InspectEvent
})
export type TraceEntry = z.infer<typeof TraceEntry>

export const InspectTrace = z.strictObject({
  format: z.literal(TRACE_FORMAT),
  version: z.literal(TRACE_VERSION),
  exportedAt: z.number().int().nonnegative(),
  /** What was asked for: one call, or a time range (both ends by the recorders' clocks). */
  range: z.strictObject({ from: z.number().int().nonnegative(), to: z.number().int().nonnegative(), label: z.string().max(128) }),
  entries: z.array(TraceEntry).max(TRACE_MAX_ENTRIES)
})
export type InspectTrace = z.infer<typeof InspectTrace>

/** Why a trace file was refused; `name` is stable for callers and tests. */
export class TraceError extends Error {
  override readonly name = 'TraceError'
  constructor (readonly reason: 'too-large' | 'not-json' | 'not-a-trace' | 'newer-version' | 'malformed', message: string) {
    super(message)
  }
}

/** Every payload of the entries cleaned again (a trace may come from an older recorder). */
export function redactEntries (entries: TraceEntry[]): TraceEntry[] {
  return entries.map((e) => e.event.type === 'event' && e.event.payload !== undefined
    ? { ...e, event: { ...e.event, payload: redactPayload(e.event.payload) } }
    : e)
}

export function makeTrace (entries: TraceEntry[], range: InspectTrace['range'], now: number): InspectTrace {
  return { format: TRACE_FORMAT, version: TRACE_VERSION, exportedAt: now, range, entries: redactEntries(entries) }
}

/** The refusal of a file over TRACE_MAX_BYTES (checked on the file's size before it is read, too). */
export const traceTooLarge = (bytes: number): TraceError =>
  new TraceError('too-large', `This trace is ${(bytes / 1048576).toFixed(1)} MB; an inspector loads traces up to ${TRACE_MAX_BYTES / 1048576} MB. Export one call or a shorter time range.`)

/** Reads a trace file's text: size first, then JSON, format, version, then the whole schema. */
export function parseTrace (text: string): InspectTrace {
  const bytes = new TextEncoder().encode(text).length
  if (bytes > TRACE_MAX_BYTES) throw traceTooLarge(bytes)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new TraceError('not-json', 'This file is not a trace: it is not JSON.')
  }
  const head = z.object({ format: z.literal(TRACE_FORMAT), version: z.number().int() }).safeParse(json)
  if (!head.success) throw new TraceError('not-a-trace', `This file is not an inspector trace (no "format": "${TRACE_FORMAT}").`)
  if (head.data.version > TRACE_VERSION) {
    throw new TraceError('newer-version', `This trace is version ${head.data.version}, made by a newer inspector; this one reads version ${TRACE_VERSION}. Open it with an up-to-date viewer.`)
  }
  const parsed = InspectTrace.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new TraceError('malformed', `This trace is damaged: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'it does not match the trace format'}.`)
  }
  return { ...parsed.data, entries: redactEntries(parsed.data.entries) }
}
