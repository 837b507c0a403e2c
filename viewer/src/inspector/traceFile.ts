import { makeTrace, parseTrace, TRACE_MAX_BYTES, TraceError, traceTooLarge, type InspectTrace, type TraceEntry } from '@doorbell/core'
import { callRange, entriesBetween } from './recording'
import type { CallSpan } from './model'
import { callLabel } from './view'

/** What to export: one call, everything recorded, or the last few minutes. */
export type ExportChoice = { kind: 'call', call: CallSpan } | { kind: 'all' } | { kind: 'last', ms: number }

/** A trace of the chosen part of the recording, payloads redacted again. */
export function traceOf (entries: readonly TraceEntry[], choice: ExportChoice, now: number): InspectTrace {
  const first = entries.reduce((m, e) => Math.min(m, e.event.at), Infinity)
  const last = entries.reduce((m, e) => Math.max(m, e.event.at), 0)
  const range = choice.kind === 'call'
    ? { ...callRange(choice.call, last), label: callLabel(choice.call) }
    : choice.kind === 'all'
      ? { from: Number.isFinite(first) ? first : 0, to: last, label: 'Everything recorded' }
      : { from: Math.max(0, last - choice.ms), to: last, label: `The last ${Math.round(choice.ms / 60000)} min` }
  return makeTrace(entriesBetween(entries, range.from, range.to), range, now)
}

/** Offers the trace as a download, named after the time it was exported. */
export function downloadTrace (trace: InspectTrace): void {
  const blob = new Blob([JSON.stringify(trace, null, 1)], { type: 'application/json' })
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = `doorbell-trace-${new Date(trace.exportedAt).toISOString().replace(/[:.]/g, '-')}.json`
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => { URL.revokeObjectURL(a.href) }, 10_000)
}

/** Reads a chosen file as a trace; a refused one throws a TraceError whose message says why. */
export async function readTraceFile (file: File): Promise<InspectTrace> {
  // The size is checked before the file is read, so a huge file is not loaded at all.
  if (file.size > TRACE_MAX_BYTES) throw traceTooLarge(file.size)
  try {
    return parseTrace(await file.text())
  } catch (err) {
    if (err instanceof TraceError) throw err
    throw new TraceError('malformed', `This file could not be read: ${(err as Error).message}`)
  }
}
