import { z } from 'zod'
import { Id } from './ids'
import { LockState, ReplyErrorCode } from './schemas'
import { DoorCommand, FRESHNESS_MS, signDoorCommand, type SigningKey } from './trust'
import { DoorAttempt } from './api'
import { ReplyCommand } from './replies'
import { KeptTraceList, TraceChunk, TraceReadCommand, TracesListCommand } from './keptTraces'

/**
 * Signed commands outside a call: a member tells a doorbell to do something (open the door; the
 * quick replies add `reply`) over the hub's MQTT, with no call up. They travel on
 * `topics.command` (member -> device) and `topics.commandResult` (device -> that member), and
 * the doorbell checks each one with the same `DoorGuard` as the call's data channel, so the hub
 * and the broker are trusted with nothing but delivery. See docs/commands.md.
 */

/**
 * The session a command outside a call names in its signed claim. No call's session has this id
 * (those are random), so a command signed for no call cannot serve in a call, nor one signed in a
 * call out of it; the nonce makes each usable once whatever carries it.
 */
export const NO_CALL_SESSION = 'no-call'

/** The largest command the broker forwards and the device parses (a grant and a proof are at most 4 KiB each). */
export const MAX_COMMAND_BYTES = 16 * 1024

/**
 * Every kind of command that may be sent outside a call, by its `type`. One union: the broker's
 * gate parses a command by it before forwarding, the device again before anything moves. A new
 * kind adds its schema here and its handler to the device's command kinds
 * (`device/src/answering/commands.ts`).
 */
export const OutOfCallCommand = z.discriminatedUnion('type', [DoorCommand, ReplyCommand, TracesListCommand, TraceReadCommand])
export type OutOfCallCommand = z.infer<typeof OutOfCallCommand>

/**
 * Why a command was refused: a reply's codes, `unknown-command` for a kind this device does not
 * take; for a quick reply, `busy` (someone is talking), `no-reply` (not in the doorbell's list).
 */
export const CommandErrorCode = z.union([ReplyErrorCode, z.enum(['unknown-command', 'no-reply', 'no-speaker', 'no-trace'])])
export type CommandErrorCode = z.infer<typeof CommandErrorCode>

/**
 * The largest result the broker forwards and a screen parses: a kept trace's chunk is 128 KiB of
 * base64 (keptTraces.ts); every other result is a few hundred bytes.
 */
export const MAX_COMMAND_RESULT_BYTES = 160 * 1024

/** What the device answers each command outside a call with, on the sender's result topic; `id` is the command's. */
export const CommandResult = z.discriminatedUnion('ok', [
  z.strictObject({
    ok: z.literal(true),
    id: Id,
    type: z.string().max(32),
    /** The lock's confirmed state after an open-door command. */
    lock: LockState.optional(),
    /** How long a quick reply plays. */
    durationMs: z.number().int().nonnegative().optional(),
    /** The kept call traces (`traces-list`, owner only). */
    traces: KeptTraceList.optional(),
    /** One chunk of a kept trace (`trace-read`, owner only). */
    chunk: TraceChunk.optional()
  }),
  z.strictObject({
    ok: z.literal(false),
    /** Null when the command was too broken to read an id from. */
    id: Id.nullable(),
    error: z.strictObject({ code: CommandErrorCode, message: z.string().max(300) }),
    /** The audit record's reason, in a word (`no-door-right`, `replay`, `malformed`...). */
    reason: DoorAttempt.shape.reason.optional()
  })
])
export type CommandResult = z.infer<typeof CommandResult>

/**
 * Signs an open-door command for no call: what a member's screen, or the hub for Home Assistant, sends.
 *
 * `validForMs`: how long the doorbell may still take it, for a sender that gives up sooner than a
 * claim's {@link FRESHNESS_MS} (a command outside a call goes QoS 1 to the doorbell's persistent
 * session, so a doorbell that is away gets it when it is back). The doorbell takes a claim while
 * its time is within FRESHNESS_MS of the claim's, so the claim is dated that much earlier: every
 * doorbell, old ones too, refuses it as stale once `validForMs` has passed. (A doorbell whose
 * clock runs more than `validForMs` ahead of the signer's refuses it at once.)
 */
export async function signOutOfCallDoorCommand (o: { credential: string, key: SigningKey, home: string, device: string, command: string, now?: number, validForMs?: number }): Promise<DoorCommand> {
  const { validForMs, ...rest } = o
  const now = o.now ?? Date.now()
  if (validForMs !== undefined && (!Number.isInteger(validForMs) || validForMs < 1 || validForMs > FRESHNESS_MS)) {
    throw new RangeError(`validForMs must be a whole number of milliseconds from 1 to ${FRESHNESS_MS}, not ${validForMs}`)
  }
  return await signDoorCommand({ ...rest, session: NO_CALL_SESSION, now: now - (FRESHNESS_MS - (validForMs ?? FRESHNESS_MS)) })
}

/** No result came for a command in time: the doorbell is away, or the result was lost. Nothing is known of what it did. */
export class CommandTimeoutError extends Error {
  override readonly name = 'CommandTimeoutError'
  constructor (readonly id: string, readonly ms: number) {
    super(`no answer from the doorbell in ${Math.round(ms / 1000)} s`)
  }
}

/** How long a sender waits for a command's result by default (beyond a signed claim's 30 s freshness, nothing can come). */
export const COMMAND_RESULT_TIMEOUT_MS = 10_000

/**
 * How much sooner than its result timeout a sender's command stops being valid
 * (`signOutOfCallDoorCommand`'s `validForMs`): a command taken at the last moment is answered
 * before the sender gives up, so it never opens after the sender said "no answer".
 */
export const COMMAND_RESULT_MARGIN_MS = 2_000
