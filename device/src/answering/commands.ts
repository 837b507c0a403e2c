import {
  CommandResult, MAX_COMMAND_BYTES, NO_CALL_SESSION, newId,
  type CommandErrorCode, type DoorAttempt, type KeptTraceList, type LockState, type Logger, type TraceChunk, type TransportPath
} from '@doorbell/core'

/**
 * One kind of signed command (open the door; the quick replies add `reply`), checked and carried
 * out once, whichever channel brought it: a call's data channel (`door.ts`, per session) or,
 * outside a call ({@link outOfCallCommands}), the hub's MQTT, the direct path's command protocol or
 * the cloud path's KVS channel. The kind parses the command, asks the
 * device's `DoorGuard`, audits the attempt (allowed or denied) and only then acts.
 */
export interface CommandKind {
  /** Never throws: every refusal is an outcome. */
  run: (raw: string, ctx: CommandContext) => Promise<CommandOutcome>
}

/** Who sent a command, as the channel that carried it knows them. */
export interface CommandContext {
  /** The call's session, or {@link NO_CALL_SESSION}: the signed claim must name it. */
  sessionId: string
  /** The sender's viewer id: from the session's admission, or the command topic (bound to the sender by the broker). */
  viewerId: string
  /** What the audit names when the command carries no readable grant. */
  viewerName: string
  log: Logger
  path: () => TransportPath | null
  /** The largest command this channel takes (the data channel: any message; MQTT: {@link MAX_COMMAND_BYTES}). */
  maxBytes?: number
}

export type CommandOutcome =
  | { ok: true, id: string, type: string, at: number, lock?: LockState, durationMs?: number, traces?: KeptTraceList, chunk?: TraceChunk }
  | { ok: false, id: string | null, code: CommandErrorCode, reason: DoorAttempt['reason'], message: string }

/** Who an audit row names: the verified grant when there was one; null: what the channel said. */
export type Audited = { id: string, name: string, role: DoorAttempt['role'] } | null

/** Records one attempt of a command kind, allowed or denied. */
export type AuditRecorder = (outcome: DoorAttempt['outcome'], reason: DoorAttempt['reason'], message: string, grant: Audited) => void

/**
 * The audit of one kind of command from one sender (a command's context, or a session's
 * identity): the grant names the member once it is verified, the channel's claim before.
 */
export function auditFor (
  o: { audit: (attempt: DoorAttempt) => void, deviceId: string, now: () => number },
  kind: NonNullable<DoorAttempt['kind']>,
  from: { viewerId: string, viewerName: string, path: () => TransportPath | null }
): AuditRecorder {
  return (outcome, reason, message, grant) => {
    o.audit({
      id: newId('a'),
      kind,
      deviceId: o.deviceId,
      at: o.now(),
      outcome,
      reason,
      message: message.slice(0, RESULT_MESSAGE_MAX),
      memberId: grant?.id ?? null,
      viewerId: from.viewerId,
      viewerName: (grant?.name ?? from.viewerName).slice(0, 64),
      role: grant?.role ?? null,
      path: from.path()
    })
  }
}

/** The command kinds a device takes outside a call, by the command's `type`. */
export type CommandKinds = Readonly<Record<string, CommandKind>>

/** A result's message is bounded by its schema; a longer reason is cut, never thrown on. */
export const RESULT_MESSAGE_MAX = 300

/**
 * Commands outside a call, as the hub's MQTT brings them to the device: each is routed by its
 * `type` to its kind, which parses it within {@link MAX_COMMAND_BYTES} (anything unreadable goes
 * to the door, which audits it as malformed, as on the data channel), and answered with a
 * {@link CommandResult} the sender matches by id.
 */
export function outOfCallCommands (o: { kinds: CommandKinds, path: TransportPath, log: Logger }): {
  take: (viewerId: string, payload: string | Uint8Array) => Promise<CommandResult>
} {
  return {
    async take (viewerId, payload) {
      const raw = typeof payload === 'string' ? payload : new TextDecoder().decode(payload)
      const type = typeOf(raw)
      // The door is the default, as on the data channel: it audits what nobody can read.
      const kind = type !== null && Object.hasOwn(o.kinds, type) ? o.kinds[type] : o.kinds.unlock
      const log = o.log.child(`command from ${viewerId}`)
      if (kind === undefined) {
        log.warn('rejected a command', { error: `no ${type ?? 'readable'} command here` })
        return refused(idOf(raw), type === 'unlock' ? 'no-door' : 'unknown-command', 'malformed', type === 'unlock' ? 'this device has no door' : `this device takes no ${JSON.stringify(type ?? '?').slice(0, 40)} command`)
      }
      const outcome = await kind.run(raw, { sessionId: NO_CALL_SESSION, viewerId, viewerName: viewerId, log, path: () => o.path, maxBytes: MAX_COMMAND_BYTES })
      return resultOf(outcome)
    }
  }
}

function refused (id: string | null, code: CommandErrorCode, reason: DoorAttempt['reason'], message: string): CommandResult {
  return { ok: false, id, error: { code, message: message.slice(0, RESULT_MESSAGE_MAX) }, reason }
}

export function resultOf (outcome: CommandOutcome): CommandResult {
  return outcome.ok
    ? { ok: true, id: outcome.id, type: outcome.type.slice(0, 32), ...(outcome.lock ? { lock: outcome.lock } : {}), ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}), ...(outcome.traces ? { traces: outcome.traces } : {}), ...(outcome.chunk ? { chunk: outcome.chunk } : {}) }
    : refused(outcome.id, outcome.code, outcome.reason, outcome.message)
}

/** The `type` of a command, if it is a JSON object with one. */
export function typeOf (raw: string): string | null {
  try {
    const t = (JSON.parse(raw) as { type?: unknown } | null)?.type
    return typeof t === 'string' ? t : null
  } catch {
    return null
  }
}

/** The id of a command that failed validation, if one can be read, so the refusal can name it. */
export function idOf (raw: string): string | null {
  try {
    const id = (JSON.parse(raw) as { id?: unknown } | null)?.id
    return typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : null
  } catch {
    return null
  }
}
