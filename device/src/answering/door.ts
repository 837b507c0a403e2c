import { DoorCommand, decode, newId, type DoorAttempt, type DoorGuard, type LockState, type Reply } from '@doorbell/core'
import type { ChannelData, SessionIdentity } from './session'

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
 * A door behind a lock: each session reports the lock's state on its channel, and an open-door
 * command moves the lock only after the device's own check, whatever path carried the call.
 * Every attempt, allowed or denied, is audited.
 */
export function lockDoor (o: LockDoorOptions): Door {
  const now = o.now ?? Date.now
  return {
    session (s) {
      const stopLockReports = o.lock.subscribe((lock) => { s.reply({ type: 'lock', lock }) })
      const record = (outcome: DoorAttempt['outcome'], reason: DoorAttempt['reason'], message: string, grant: { id: string, name: string, role: DoorAttempt['role'] } | null): void => {
        o.audit({
          id: newId('a'),
          kind: 'open-door',
          deviceId: o.deviceId,
          at: now(),
          outcome,
          reason,
          message: message.slice(0, 300),
          memberId: grant?.id ?? null,
          viewerId: s.viewerId,
          viewerName: grant?.name ?? s.viewerName,
          role: grant?.role ?? null,
          path: s.path()
        })
      }
      return {
        opened () { s.reply({ type: 'lock', lock: o.lock.state() }) },
        async command (data) {
          const raw = text(data)
          const parsed = decode(DoorCommand, raw, `data channel of ${s.viewerName}`)
          if (!parsed.ok) {
            s.log.warn('rejected a command', { error: parsed.error.message })
            record('denied', 'malformed', parsed.error.message, null)
            s.reply({ type: 'nack', id: idOf(raw), error: { code: 'invalid-command', message: parsed.error.message.slice(0, NACK_MESSAGE_MAX) } })
            return
          }
          const command = parsed.value
          // The device's own check, whatever path carried the call: the lock moves only after it.
          const verdict = await o.guard.check(command, { sessionId: s.sessionId, viewerId: s.viewerId })
          if (!verdict.ok) {
            s.log.warn('open-door refused', { viewer: s.viewerName, reason: verdict.reason, message: verdict.message })
            record('denied', verdict.reason, verdict.message, verdict.grant)
            s.reply({ type: 'nack', id: command.id, error: { code: 'denied', message: verdict.message.slice(0, NACK_MESSAGE_MAX) } })
            return
          }
          const who = verdict.grant
          s.log.info('open-door requested', { viewer: who.name, role: who.role })
          const result = await o.lock.unlock(who.name)
          if (result.ok) {
            record('allowed', 'ok', `opened by ${who.name}`, who)
            s.unlocked(now())
            s.reply({ type: 'ack', id: command.id, lock: result.lock })
          } else {
            record('denied', result.code, result.message, who)
            s.reply({ type: 'nack', id: command.id, error: { code: result.code, message: result.message.slice(0, NACK_MESSAGE_MAX) } })
          }
        },
        stop () { stopLockReports() }
      }
    }
  }
}

/** The id of a command that failed validation, if one can be read, so the nack can name it. */
function idOf (raw: string): string | null {
  try {
    const id = (JSON.parse(raw) as { id?: unknown }).id
    return typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : null
  } catch {
    return null
  }
}
