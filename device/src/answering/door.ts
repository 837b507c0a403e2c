import { DoorCommand, NO_CALL_SESSION, decode, type DoorAttempt, type DoorGuard, type LockState, type Reply } from '@doorbell/core'
import type { ChannelData, SessionIdentity } from './session'
import { auditFor, idOf, type CommandContext, type CommandKind, type CommandKinds, type CommandOutcome } from './commands'

/** A nack's message is bounded by the Reply schema; a longer reason (a schema error, a forged name) is cut, never thrown on. */
export const NACK_MESSAGE_MAX = 300

/** What a session gives its door. */
export interface DoorSessionInput extends SessionIdentity {
  /** Sends on the session's control channel (dropped when it is not open). */
  reply: (message: Reply) => void
  /** The door opened for this session's viewer (the call record lists it). */
  unlocked: (at: number) => void
}

/** The door commands of one session. */
export interface DoorSession {
  /** The control channel opened. */
  opened: () => void
  /** A message on the control channel. Never throws. */
  command: (data: ChannelData) => Promise<void>
  stop: () => void
}

/** What a device does with door commands: the doorbell's lock, or a camera node's "no door". */
export interface Door {
  session: (s: DoorSessionInput) => DoorSession
  /** The command kinds this door takes outside a call (the doorbell: `unlock`); absent: none (a camera node). */
  commands?: CommandKinds
}

export type UnlockResult = { ok: true, lock: LockState } | { ok: false, code: 'lock-fault' | 'busy', message: string, lock: LockState }

/** The lock as the door commands need it (the doorbell's LockControl). */
export interface DoorLock {
  state: () => LockState
  /**
   * Each change of the lock's state. `first`: told before the other listeners (and the lock's
   * log line): a call's data channel, where a resident waits for "Door open".
   */
  subscribe: (listener: (lock: LockState) => void, o?: { first?: boolean }) => () => void
  /** Resolves once the door is confirmed open, or says why it is not. */
  unlock: (by: string) => Promise<UnlockResult>
}

export interface LockDoorOptions {
  lock: DoorLock
  /** Checks every open-door command (credential, role, signature, freshness, nonce, rate). */
  guard: Pick<DoorGuard, 'check'>
  /** Where each attempt, allowed or denied, is recorded (the audit outbox). */
  audit: (attempt: DoorAttempt) => void
  deviceId: string
  now?: () => number
}

/**
 * When each step of one opening on a call's data channel ended (`performance.now()`, ms), filled
 * in as it goes: the session logs them as one `open-door timing` line once the ack is sent, so
 * the line costs the resident nothing (the `call` bench reads it, docs/performance.md).
 */
export interface OpenSteps {
  received: number
  parsed?: number
  checked?: number
  unlocked?: number
}

/** Milliseconds between two steps, to the hundredth (null: a step that did not happen). */
const span = (from: number | undefined, to: number | undefined): number | null =>
  from === undefined || to === undefined || to < from ? null : Math.round((to - from) * 100) / 100

const text = (data: ChannelData): string => typeof data === 'string'
  ? data
  : new TextDecoder().decode(data instanceof ArrayBuffer ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength))

/** The open-door kind: a call's session passes `steps` to learn where the time went. */
export interface OpenDoorKind extends CommandKind {
  run: (raw: string, ctx: CommandContext & { steps?: OpenSteps }) => Promise<CommandOutcome>
}

/**
 * The open-door command, whichever channel carried it (a call's data channel, or the hub's MQTT
 * outside a call): parsed, checked by the guard (grant, door right, signature, device, session,
 * freshness, nonce, rate), and only then given to the lock. Every attempt, allowed or denied, is
 * audited with the channel's path.
 */
export function openDoorCommand (o: LockDoorOptions): OpenDoorKind {
  const now = o.now ?? Date.now
  return {
    async run (raw, ctx) {
      const steps = ctx.steps
      const record = auditFor({ ...o, now }, 'open-door', ctx)
      const parsed = decode(DoorCommand, raw, ctx.sessionId === NO_CALL_SESSION ? `command from ${ctx.viewerName}` : `data channel of ${ctx.viewerName}`, ctx.maxBytes)
      if (!parsed.ok) {
        ctx.log.warn('rejected a command', { error: parsed.error.message })
        record('denied', 'malformed', parsed.error.message, null)
        return { ok: false, id: idOf(raw), code: 'invalid-command', reason: 'malformed', message: parsed.error.message }
      }
      const command = parsed.value
      if (steps) steps.parsed = performance.now()
      // The device's own check, whatever path carried it: the lock moves only after it.
      const verdict = await o.guard.check(command, { sessionId: ctx.sessionId, viewerId: ctx.viewerId })
      if (!verdict.ok) {
        ctx.log.warn('open-door refused', { viewer: ctx.viewerName, reason: verdict.reason, message: verdict.message })
        record('denied', verdict.reason, verdict.message, verdict.grant)
        return { ok: false, id: command.id, code: 'denied', reason: verdict.reason, message: verdict.message }
      }
      const who = verdict.grant
      if (steps) steps.checked = performance.now()
      const requested = (): void => { ctx.log.info('open-door requested', { viewer: who.name, role: who.role }) }
      // On a call the line waits a turn, ahead of the lock's own lines: a write to the log (a pipe,
      // journald's socket) can wake its reader and stall this path for milliseconds, 6 openings in 40
      // in the bench, while a resident waits for "Door open" (docs/performance.md).
      if (steps) setImmediate(requested)
      else requested()
      const result = await o.lock.unlock(who.name)
      if (steps) {
        steps.unlocked = performance.now()
        // On a call the resident has just been told (the lock tells the channel first); werift
        // sends that report through a chain of promises, which waits behind every other
        // microtask. The audit record, the ack and the log lines wait a turn of the loop so the
        // report leaves first (docs/performance.md).
        await new Promise<void>((resolve) => { setImmediate(resolve) })
      }
      if (!result.ok) {
        record('denied', result.code, result.message, who)
        return { ok: false, id: command.id, code: result.code, reason: result.code, message: result.message }
      }
      record('allowed', 'ok', `opened by ${who.name}`, who)
      return { ok: true, id: command.id, type: command.type, at: now(), lock: result.lock }
    }
  }
}

/**
 * A door behind a lock: each session reports the lock's state on its channel, and an open-door
 * command ({@link openDoorCommand}) moves the lock only after the device's own check, whatever
 * path carried the call. The same command kind serves outside a call (`commands`).
 */
export function lockDoor (o: LockDoorOptions): Door {
  const unlock = openDoorCommand(o)
  return {
    commands: { unlock },
    session (s) {
      // When this viewer was last told the door is open: the report "Door open" is shown from.
      let toldOpenAt: number | undefined
      // This viewer's own open-door commands being handled: its screen says "Opening…" until the answer.
      let opening = 0
      // First: the resident is waiting on this report; the hub's retained state and the log can wait a moment.
      const stopLockReports = o.lock.subscribe((lock) => {
        // While its own command runs, the viewer is not told `unlocking`: its screen already says so
        // ("Opening…", pending), and in werift a message sent right behind another waits for that
        // one's promise steps, so `unlocked` alone leaves sooner (docs/performance.md). Every other
        // state, and every other screen (their channels, the hub's retained state), is told as before.
        if (opening > 0 && lock.status === 'unlocking') return
        s.reply({ type: 'lock', lock })
        if (lock.status === 'unlocked') toldOpenAt = performance.now()
      }, { first: true })
      return {
        opened () { s.reply({ type: 'lock', lock: o.lock.state() }) },
        async command (data) {
          const steps: OpenSteps = { received: performance.now() }
          toldOpenAt = undefined
          opening++
          let outcome: CommandOutcome
          try {
            outcome = await unlock.run(text(data), { sessionId: s.sessionId, viewerId: s.viewerId, viewerName: s.viewerName, log: s.log, path: s.path, steps })
          } finally {
            opening--
          }
          if (outcome.ok) {
            s.reply({ type: 'ack', id: outcome.id, lock: outcome.lock ?? o.lock.state() })
            const acked = performance.now()
            s.unlocked(outcome.at)
            // After the ack: the line costs the resident nothing. received → told is what the viewer waits on here.
            s.log.info('open-door timing', {
              parse: span(steps.received, steps.parsed),
              guard: span(steps.parsed, steps.checked),
              lock: span(steps.checked, steps.unlocked),
              told: span(steps.received, toldOpenAt),
              ack: span(steps.received, acked)
            })
            return
          }
          // The data channel's reply knows the door's codes only (a kind added later answers on its own terms).
          const code = outcome.code === 'unknown-command' || outcome.code === 'no-reply' || outcome.code === 'no-speaker' || outcome.code === 'no-trace' ? 'invalid-command' : outcome.code
          s.reply({ type: 'nack', id: outcome.id, error: { code, message: outcome.message.slice(0, NACK_MESSAGE_MAX) } })
        },
        stop () { stopLockReports() }
      }
    }
  }
}
