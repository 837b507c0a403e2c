import { DoorCommand, NO_CALL_SESSION, decode, type DoorAttempt, type DoorGuard, type LockState, type Reply } from '@doorbell/core'
import type { ChannelData, SessionIdentity } from './session'
import { auditFor, idOf, type CommandKind, type CommandKinds } from './commands'

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
  subscribe: (listener: (lock: LockState) => void) => () => void
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

const text = (data: ChannelData): string => typeof data === 'string'
  ? data
  : new TextDecoder().decode(data instanceof ArrayBuffer ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength))

/**
 * The open-door command, whichever channel carried it (a call's data channel, or the hub's MQTT
 * outside a call): parsed, checked by the guard (grant, door right, signature, device, session,
 * freshness, nonce, rate), and only then given to the lock. Every attempt, allowed or denied, is
 * audited with the channel's path.
 */
export function openDoorCommand (o: LockDoorOptions): CommandKind {
  const now = o.now ?? Date.now
  return {
    async run (raw, ctx) {
      const record = auditFor({ ...o, now }, 'open-door', ctx)
      const parsed = decode(DoorCommand, raw, ctx.sessionId === NO_CALL_SESSION ? `command from ${ctx.viewerName}` : `data channel of ${ctx.viewerName}`, ctx.maxBytes)
      if (!parsed.ok) {
        ctx.log.warn('rejected a command', { error: parsed.error.message })
        record('denied', 'malformed', parsed.error.message, null)
        return { ok: false, id: idOf(raw), code: 'invalid-command', reason: 'malformed', message: parsed.error.message }
      }
      const command = parsed.value
      // The device's own check, whatever path carried it: the lock moves only after it.
      const verdict = await o.guard.check(command, { sessionId: ctx.sessionId, viewerId: ctx.viewerId })
      if (!verdict.ok) {
        ctx.log.warn('open-door refused', { viewer: ctx.viewerName, reason: verdict.reason, message: verdict.message })
        record('denied', verdict.reason, verdict.message, verdict.grant)
        return { ok: false, id: command.id, code: 'denied', reason: verdict.reason, message: verdict.message }
      }
      const who = verdict.grant
      ctx.log.info('open-door requested', { viewer: who.name, role: who.role })
      const result = await o.lock.unlock(who.name)
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
      const stopLockReports = o.lock.subscribe((lock) => { s.reply({ type: 'lock', lock }) })
      return {
        opened () { s.reply({ type: 'lock', lock: o.lock.state() }) },
        async command (data) {
          const outcome = await unlock.run(text(data), { sessionId: s.sessionId, viewerId: s.viewerId, viewerName: s.viewerName, log: s.log, path: s.path })
          if (outcome.ok) {
            s.unlocked(outcome.at)
            s.reply({ type: 'ack', id: outcome.id, lock: outcome.lock ?? o.lock.state() })
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
