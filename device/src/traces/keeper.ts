import { mkdirSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  TRACE_MAX_BYTES, TRACE_MAX_ENTRIES, makeTrace, parseTrace,
  type InspectBatch, type InspectEvent, type Logger, type TraceEntry
} from '@doorbell/core'

/** How long after the call is idle again its trace keeps recording: the sessions' last states come late. */
export const KEPT_TAIL_MS = 1500

export interface TraceKeeperOptions {
  /** The folder the traces are kept in (dataDir/traces): a restart keeps them. */
  dir: string
  source: InspectBatch['source']
  /** At most this many calls' traces, the oldest dropped first. */
  calls: number
  /** At most this many bytes for all of them together (and for any one), the oldest dropped first. */
  maxBytes: number
  log: Logger
  now?: () => number
  tailMs?: number
}

/** What the owner's list shows of a kept trace. */
export interface KeptTraceSummary {
  id: string
  from: number
  to: number
  durationMs: number
  /** The names of the viewers that joined the call (from the admitted offers), in order. */
  who: string[]
  bytes: number
}

/** The viewers admitted to the call: the names on the OFFERs its call machine took. */
function whoOf (entries: readonly TraceEntry[]): string[] {
  const calls = new Set(entries.flatMap((e) => e.event.type === 'actor' && e.event.machine?.key === 'deviceCall' ? [e.event.actor] : []))
  const who: string[] = []
  for (const { event } of entries) {
    if (event.type !== 'event' || event.event !== 'OFFER' || !calls.has(event.to)) continue
    const name = (event.payload as { viewerName?: unknown } | undefined)?.viewerName
    if (typeof name === 'string' && !who.includes(name)) who.push(name)
  }
  return who
}

/** A call being recorded; `endAt` once its call machine is idle again, `full` once it hit its budget. */
interface Call { from: number, entries: TraceEntry[], bytes: number, full: boolean, endAt: number | null, timer: ReturnType<typeof setTimeout> | null }

/** How many events before the call machine leaves idle go into its trace (the press, an early offer). */
const LEAD_EVENTS = 20

const FILE = /^(\d{13})-(\d+)\.json$/

/**
 * The doorbell's memory of its last calls: it takes the same inspection events the live inspector
 * gets and, per call of the device's call machine (from leaving idle until idle again, plus a
 * tail), writes a trace file that any inspector loads. Each trace starts with every live actor's
 * announcement and latest state, so it replays on its own. Payloads are redacted by the recorder
 * and again by `makeTrace`, as an exported trace is. Only created when trace keeping is on.
 */
export class TraceKeeper {
  /** Every live actor's announcement and latest state: the start of each trace. */
  private readonly roster = new Map<string, { actor: InspectEvent, snapshot: InspectEvent | null }>()
  private callActors = new Set<string>()
  private current: Call | null = null
  /** The events since the call machine was last idle, while no call is being recorded. */
  private lead: InspectEvent[] = []
  private seq = 0
  private readonly now: () => number
  private readonly tailMs: number
  private readonly perTrace: number

  constructor (private readonly o: TraceKeeperOptions) {
    this.now = o.now ?? Date.now
    this.tailMs = o.tailMs ?? KEPT_TAIL_MS
    this.perTrace = Math.min(o.maxBytes, TRACE_MAX_BYTES)
    mkdirSync(o.dir, { recursive: true, mode: 0o700 })
    this.prune()
  }

  push (event: InspectEvent): void {
    if (event.type === 'actor') {
      this.roster.set(event.actor, { actor: event, snapshot: null })
      if (event.machine?.key === 'deviceCall') this.callActors.add(event.actor)
    }
    const ofCall = event.type === 'snapshot' && this.callActors.has(event.actor)
    const idle = event.type === 'snapshot' && (event.value === 'idle' || event.status !== 'active')
    // A call begins when the call machine leaves idle; the roster is still as it was just before.
    if (ofCall && !idle && !this.current) this.begin(event.at)
    if (this.current) this.add(this.current, event)
    else if (event.type === 'event') {
      // What made the call begin (the PRESS) reaches the machine before its new state does.
      this.lead.push(event)
      if (this.lead.length > LEAD_EVENTS) this.lead.shift()
    }
    if (ofCall && idle && !this.current) this.lead = []
    if (event.type === 'snapshot') {
      const entry = this.roster.get(event.actor)
      if (event.status !== 'active') this.roster.delete(event.actor)
      else if (entry) entry.snapshot = event
    }
    const call = this.current
    if (!ofCall || !call) return
    if (!idle && call.timer) {
      // Rang again within the tail: the same trace goes on.
      clearTimeout(call.timer)
      call.timer = null
      call.endAt = null
    } else if (idle && call.endAt === null) {
      call.endAt = event.at
      call.timer = setTimeout(() => { this.finish(call) }, this.tailMs)
    }
  }

  private begin (at: number): void {
    const call: Call = { from: Math.min(at, this.lead[0]?.at ?? at), entries: [], bytes: 0, full: false, endAt: null, timer: null }
    // Every actor's announcement and its state just before the call: where a replay starts.
    for (const { actor, snapshot } of this.roster.values()) {
      this.add(call, actor)
      if (snapshot) this.add(call, snapshot)
    }
    for (const event of this.lead) this.add(call, event)
    this.lead = []
    this.current = call
  }

  private add (call: Call, event: InspectEvent): void {
    if (call.full) return
    const entry: TraceEntry = { source: this.o.source, event }
    const bytes = JSON.stringify(entry).length + 1
    // A call too long for its budget keeps its start; the trace says it was cut.
    if (call.entries.length >= TRACE_MAX_ENTRIES || call.bytes + bytes > this.perTrace - 4096) {
      call.full = true
      return
    }
    call.entries.push(entry)
    call.bytes += bytes
  }

  private finish (call: Call): void {
    if (this.current === call) this.current = null
    const to = call.endAt ?? this.now()
    const when = new Date(call.from).toISOString().slice(11, 19)
    const who = whoOf(call.entries)
    const label = `${this.o.source.name} · call at ${when} UTC${who.length ? ` · ${who.join(', ')}` : ''}${call.full ? ' · cut short' : ''}`.slice(0, 128)
    const trace = makeTrace(call.entries, { from: call.from, to: to + this.tailMs, label }, this.now())
    const text = JSON.stringify(trace)
    const id = `${String(call.from).padStart(13, '0')}-${this.seq++}`
    try {
      writeFileSync(join(this.o.dir, `${id}.json`), text, { mode: 0o600 })
      this.o.log.info('kept the trace of a call', { id, entries: call.entries.length, bytes: text.length })
    } catch (err) {
      this.o.log.error('could not keep the trace of a call', { error: (err as Error).message })
    }
    this.prune()
  }

  /** Drops the oldest traces until both bounds hold. */
  private prune (): void {
    const files = this.files()
    let total = files.reduce((n, f) => n + f.bytes, 0)
    while (files.length > 0 && (files.length > this.o.calls || total > this.o.maxBytes)) {
      const oldest = files.shift()!
      total -= oldest.bytes
      try { unlinkSync(join(this.o.dir, oldest.name)) } catch {}
    }
  }

  private files (): Array<{ name: string, bytes: number }> {
    return readdirSync(this.o.dir).filter((n) => FILE.test(n)).sort().map((name) => ({ name, bytes: statSync(join(this.o.dir, name)).size }))
  }

  /** The kept traces, newest first. A file that is not a trace is skipped (and named in the log). */
  list (): KeptTraceSummary[] {
    const out: KeptTraceSummary[] = []
    for (const f of this.files().reverse()) {
      const id = f.name.slice(0, -'.json'.length)
      try {
        const text = readFileSync(join(this.o.dir, f.name), 'utf8')
        const trace = parseTrace(text)
        const to = trace.range.to - this.tailMs
        out.push({ id, from: trace.range.from, to, durationMs: Math.max(0, to - trace.range.from), who: whoOf(trace.entries), bytes: f.bytes })
      } catch (err) {
        this.o.log.warn('skipped a kept trace that cannot be read', { id, error: (err as Error).message })
      }
    }
    return out
  }

  /** A kept trace's file text, or null when there is no such trace (an id is only ever a file name of ours). */
  read (id: string): string | null {
    if (!FILE.test(`${id}.json`)) return null
    try { return readFileSync(join(this.o.dir, `${id}.json`), 'utf8') } catch { return null }
  }

  /** A call that has ended is kept now, without its tail; one still in progress is not: its trace would have no end. */
  stop (): void {
    if (this.current?.timer) {
      clearTimeout(this.current.timer)
      this.finish(this.current)
    }
    this.current = null
  }
}
