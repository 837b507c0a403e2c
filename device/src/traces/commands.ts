import {
  NO_CALL_SESSION, TraceReadCommand, TracesListCommand, decode, sha256Hex, traceChunk,
  type DoorAttempt, type DoorGuard
} from '@doorbell/core'
import { auditFor, idOf, type CommandKind, type CommandKinds, type CommandOutcome } from '../answering/commands'
import type { TraceKeeper } from './keeper'

export interface TraceCommandsOptions {
  guard: DoorGuard
  /** Null when trace keeping is off: the list says so, a read finds nothing. */
  keeper: TraceKeeper | null
  audit: (attempt: DoorAttempt) => void
  deviceId: string
  now?: () => number
}

/**
 * The owner's fetch of the kept call traces over the signed command channel outside a call
 * (docs/commands.md): `traces-list` and `trace-read` (one chunk a command), owner only, checked
 * by `DoorGuard.checkTraces`. Audited as kind `traces`: every refusal, every list, and the first
 * chunk of each read (one row a download, not one a chunk).
 */
export function traceCommands (o: TraceCommandsOptions): CommandKinds {
  const now = o.now ?? Date.now
  // The trace being fetched, so its 43 chunks are not each a 4 MiB read and hash.
  let cached: { id: string, file: Uint8Array, sha256: string } | null = null

  const kind = (schema: typeof TracesListCommand | typeof TraceReadCommand): CommandKind => ({
    async run (raw, ctx): Promise<CommandOutcome> {
      const record = auditFor({ ...o, now }, 'traces', ctx)
      // Only outside a call: a trace is the owner's, not something a call's data channel carries.
      if (ctx.sessionId !== NO_CALL_SESSION) {
        const message = 'call traces are fetched from Home settings, not in a call'
        record('denied', 'wrong-session', message, null)
        return { ok: false, id: idOf(raw), code: 'denied', reason: 'wrong-session', message }
      }
      const parsed = decode(schema, raw, `command from ${ctx.viewerName}`, ctx.maxBytes)
      if (!parsed.ok) {
        record('denied', 'malformed', parsed.error.message, null)
        return { ok: false, id: idOf(raw), code: 'invalid-command', reason: 'malformed', message: parsed.error.message }
      }
      const c = parsed.value
      const verdict = await o.guard.checkTraces(c, { sessionId: ctx.sessionId, viewerId: ctx.viewerId })
      if (!verdict.ok) {
        ctx.log.warn('trace command refused', { viewer: ctx.viewerName, reason: verdict.reason, message: verdict.message })
        record('denied', verdict.reason, verdict.message, verdict.grant)
        return { ok: false, id: c.id, code: 'denied', reason: verdict.reason, message: verdict.message }
      }
      const who = verdict.grant
      if (c.type === 'traces-list') {
        const traces = o.keeper?.list() ?? []
        record('allowed', 'ok', `listed ${traces.length} kept call trace${traces.length === 1 ? '' : 's'}`, who)
        return { ok: true, id: c.id, type: c.type, at: now(), traces: { keeping: o.keeper !== null, traces } }
      }
      if (cached?.id !== c.trace || c.chunk === 0) {
        const text = o.keeper?.read(c.trace) ?? null
        if (text === null) {
          const why = o.keeper ? `no kept call trace ${c.trace} (it may have been dropped for a newer one)` : 'trace keeping is off on this doorbell'
          record('denied', 'no-trace', why, who)
          return { ok: false, id: c.id, code: 'no-trace', reason: 'no-trace', message: why }
        }
        const file = new TextEncoder().encode(text)
        cached = { id: c.trace, file, sha256: await sha256Hex(file) }
      }
      const chunk = traceChunk(c.trace, cached.file, cached.sha256, c.chunk)
      if (chunk === null) {
        const why = `trace ${c.trace} has no chunk ${c.chunk + 1}`
        record('denied', 'no-trace', why, who)
        return { ok: false, id: c.id, code: 'no-trace', reason: 'no-trace', message: why }
      }
      if (c.chunk === 0) record('allowed', 'ok', `read kept call trace ${c.trace} (${cached.file.length} bytes in ${chunk.total} chunk${chunk.total === 1 ? '' : 's'})`, who)
      return { ok: true, id: c.id, type: c.type, at: now(), chunk }
    }
  })
  return { 'traces-list': kind(TracesListCommand), 'trace-read': kind(TraceReadCommand) }
}
