import { z } from 'zod'
import { Id } from './ids'

/**
 * What the live inspector receives: a compact, schema-checked form of XState's inspection
 * events, batched per source (a device, a viewer tab). Published only when inspection is on.
 */
export interface MachineNode {
  key: string
  /** Dot-joined keys from the root ("" for the root). */
  path: string
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history'
  initial: string | null
  states: MachineNode[]
  /** Event types with a transition from this node (delayed ones as "after <delay>"). */
  on: string[]
}

export const MachineNode: z.ZodType<MachineNode> = z.lazy(() => z.strictObject({
  key: z.string().max(64),
  path: z.string().max(512),
  type: z.enum(['atomic', 'compound', 'parallel', 'final', 'history']),
  initial: z.string().max(64).nullable(),
  states: z.array(MachineNode).max(64),
  on: z.array(z.string().max(128)).max(64)
}))

const ActorKey = z.string().min(1).max(160)
const Millis = z.number().int().nonnegative()

export const InspectEvent = z.discriminatedUnion('type', [
  /** An actor started: its name, parent and, for machines, its statechart. */
  z.strictObject({
    type: z.literal('actor'),
    at: Millis,
    actor: ActorKey,
    name: z.string().max(128),
    parent: ActorKey.nullable(),
    machine: MachineNode.nullable()
  }),
  /** An event reached an actor. */
  z.strictObject({
    type: z.literal('event'),
    at: Millis,
    from: ActorKey.nullable(),
    to: ActorKey,
    event: z.string().max(128),
    /** The event's fields, redacted at record time (`redactPayload`): absent in older sources. */
    payload: z.json().optional()
  }),
  /** An actor's state after it handled an event; `value` is the machine's state value. */
  z.strictObject({
    type: z.literal('snapshot'),
    at: Millis,
    actor: ActorKey,
    event: z.string().max(128),
    status: z.enum(['active', 'done', 'error', 'stopped']),
    value: z.json().nullable()
  })
])
export type InspectEvent = z.infer<typeof InspectEvent>

export const InspectBatch = z.strictObject({
  source: z.strictObject({ kind: z.enum(['device', 'viewer', 'hub']), id: Id, name: z.string().min(1).max(64) }),
  events: z.array(InspectEvent).min(1).max(200)
})
export type InspectBatch = z.infer<typeof InspectBatch>

/**
 * Collects inspection events and hands them over in batches (at most every `intervalMs`, at
 * most 200 per batch), so a busy actor costs one message per interval, not one per event.
 * Every `rosterMs` it also re-sends each live actor (its statechart and its latest snapshot),
 * so an inspector page opened later still sees every actor. Runs only while inspection is on.
 */
const BATCH_BYTES = 48 * 1024

export class InspectionBatcher {
  private queue: InspectEvent[] = []
  private timer: ReturnType<typeof setTimeout> | null = null
  private readonly roster = new Map<string, { actor: InspectEvent, snapshot: InspectEvent | null }>()
  private readonly rosterTimer: ReturnType<typeof setInterval>

  constructor (private readonly flush: (events: InspectEvent[]) => void, private readonly intervalMs = 50, rosterMs = 3000) {
    this.rosterTimer = setInterval(() => { this.resendRoster() }, rosterMs)
  }

  push (event: InspectEvent): void {
    if (event.type === 'actor') this.roster.set(event.actor, { actor: event, snapshot: null })
    if (event.type === 'snapshot') {
      const entry = this.roster.get(event.actor)
      if (event.status !== 'active') this.roster.delete(event.actor)
      else if (entry) entry.snapshot = event
    }
    this.queue.push(event)
    if (this.queue.length >= 200) { this.drain(); return }
    this.timer ??= setTimeout(() => { this.drain() }, this.intervalMs)
  }

  private resendRoster (): void {
    for (const { actor, snapshot } of this.roster.values()) {
      this.queue.push(actor)
      if (snapshot) this.queue.push(snapshot)
    }
    this.drain()
  }

  drain (): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    // At most 200 events and about 48 KB a batch: a batch is one message, and messages stop at 64 KB.
    while (this.queue.length > 0) {
      let bytes = 0
      let n = 0
      while (n < this.queue.length && n < 200) {
        bytes += JSON.stringify(this.queue[n]).length
        if (n > 0 && bytes > BATCH_BYTES) break
        n++
      }
      this.flush(this.queue.splice(0, n))
    }
  }

  stop (): void {
    clearInterval(this.rosterTimer)
    this.drain()
  }
}
