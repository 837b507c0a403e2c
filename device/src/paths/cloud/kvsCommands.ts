import {
  CloudCommandResult, CloudDismissResult, Id, KVS_PAYLOAD_MAX, OutOfCallCommand, decodeCloudCommand, decodeCloudDismiss, encode, kvsPayloadSize, toKvsPayload,
  type CommandResult, type DismissDirectAnswer, type DismissDirectRequest, type Logger
} from '@doorbell/core'
import type { RepliesReadAnswer, RepliesReadRequest } from '@doorbell/core'
import { senderLimiter, type SenderLimit } from '../senderLimit'
import { kvsRepliesReads } from './kvsRepliesReads'

/** Takes the commands and dismissals that ride the KVS channel (core/src/cloudCommand.ts). */
export interface KvsCommandHandler {
  command: (senderClientId: unknown, payload: unknown) => void
  dismiss: (senderClientId: unknown, payload: unknown) => void
  /** A read of the doorbell's quick replies (core/src/repliesRead.ts). */
  replies: (senderClientId: unknown, payload: unknown) => void
}

/**
 * Commands outside a call on the cloud path: each is parsed as the broker's gate parses one, then
 * handed to the same `outOfCallCommands` as a command from the hub (`take`, path `cloud`), with
 * the KVS sender id as the viewer id (KVS authenticates the sender, and the grant must be that
 * viewer's), and answered on SDP_ANSWER to that viewer alone. A payload that fails its schema is
 * answered `invalid-command` and reaches no command kind.
 */
export function kvsCommands (o: {
  take: (viewerId: string, payload: string) => Promise<CommandResult>
  /** The doorbell's dismissal handler (../dismissal.ts), the same as the direct path's; absent: dismissals are refused (no rings kept). */
  dismiss?: (request: DismissDirectRequest) => Promise<DismissDirectAnswer>
  /** The doorbell's replies-read handler (../repliesRead.ts), the same as the direct path's; absent: refused. */
  replies?: (request: RepliesReadRequest) => Promise<RepliesReadAnswer>
  /** Sends a payload on SDP_ANSWER to one viewer; false when it could not be sent. */
  send: (viewerId: string, payload: string) => boolean
  log: Logger
  /** Requests (commands, dismissals and replies reads together) one KVS client id may send in a window (the config's `commandsPerScreen`; default 20 in 10 s). */
  limit?: SenderLimit | undefined
  now?: () => number
}): KvsCommandHandler {
  // Checked before anything is parsed or verified: a flood from one viewer costs a map lookup (../senderLimit.ts).
  const limiter = senderLimiter({ limit: o.limit, now: o.now, log: o.log, what: 'requests over KVS' })
  const answer = (viewerId: string, result: CommandResult): void => {
    const payload = toKvsPayload(CloudCommandResult.parse({ type: 'command-result', result }))
    if (kvsPayloadSize(payload) > KVS_PAYLOAD_MAX) {
      // A kept trace's chunk: too large for KVS. Said in a result that fits, never dropped silently.
      answer(viewerId, { ok: false, id: result.id, error: { code: 'invalid-command', message: `the answer is over KVS's ${KVS_PAYLOAD_MAX}-byte limit: use the home network` }, reason: 'malformed' })
      return
    }
    if (!o.send(viewerId, payload)) o.log.warn('could not answer a command over KVS', { viewer: viewerId })
  }
  const answerDismissal = (viewerId: string, id: string | null, answer: DismissDirectAnswer): void => {
    if (!o.send(viewerId, toKvsPayload(CloudDismissResult.parse({ type: 'dismiss-result', id, answer })))) o.log.warn('could not answer a dismissal over KVS', { viewer: viewerId })
  }
  return {
    /**
     * A dismissal away from home (docs/history.md): the direct path's request, checked by the same
     * handler; its viewer id must be the KVS sender's (KVS authenticates the sender), as a command's grant must be.
     */
    dismiss (senderClientId, payload) {
      if (typeof senderClientId !== 'string' || senderClientId === '') { o.log.warn('dropped a KVS dismissal with no sender id'); return }
      const viewerId = senderClientId
      if (!limiter.admit(viewerId)) { answerDismissal(viewerId, readId(payload), { kind: 'refused', message: `busy: ${limiter.busyMessage}` }); return }
      const decoded = decodeCloudDismiss(payload)
      const refuse = (id: string | null, message: string): void => {
        o.log.warn('refused a cloud dismissal', { from: viewerId.slice(0, 64), error: message.slice(0, 300) })
        answerDismissal(viewerId, id, { kind: 'refused', message: message.slice(0, 200) })
      }
      if (!decoded.ok) { refuse(readId(payload), decoded.error); return }
      const { id, request } = decoded.message
      if (request.viewerId !== viewerId) { refuse(id, `this dismissal is signed for viewer ${request.viewerId}, but KVS names its sender ${viewerId}`); return }
      if (!o.dismiss) { refuse(id, 'this doorbell keeps no rings'); return }
      o.dismiss(request).then(
        (answer) => { answerDismissal(viewerId, id, answer) },
        (err: Error) => { o.log.error('a dismissal over KVS failed', { viewer: viewerId, error: err.message }) }
      )
    },
    /** A read of the doorbell's quick replies away from home (kvsRepliesReads.ts), within the same limit. */
    replies: kvsRepliesReads({ replies: o.replies, send: o.send, log: o.log, limiter, readId: (payload) => readId(payload) }),
    command (senderClientId, payload) {
      if (typeof senderClientId !== 'string' || senderClientId === '') { o.log.warn('dropped a KVS command with no sender id'); return }
      const viewerId = senderClientId
      if (!limiter.admit(viewerId)) { answer(viewerId, { ok: false, id: readId(payload, 'command'), error: { code: 'busy', message: limiter.busyMessage } }); return }
      const decoded = decodeCloudCommand(payload)
      if (!decoded.ok) {
        o.log.warn('rejected a command over KVS', { from: viewerId.slice(0, 64), error: decoded.error.slice(0, 300) })
        answer(viewerId, { ok: false, id: null, error: { code: 'invalid-command', message: decoded.error.slice(0, 300) }, reason: 'malformed' })
        return
      }
      o.take(viewerId, encode(OutOfCallCommand, decoded.message.command)).then(
        (result) => { answer(viewerId, result) },
        (err: Error) => { o.log.error('a command over KVS failed', { viewer: viewerId, error: err.message }) }
      )
    }
  }
}

/** The id of a request over KVS (or, `inside` 'command', of a command) that was not taken, when it has a readable one (so the screen hears why at once). */
export function readId (payload: unknown, inside?: 'command'): string | null {
  try {
    const message = JSON.parse(String(payload)) as { id?: unknown, command?: { id?: unknown } } | null
    const id = Id.safeParse(inside === 'command' ? message?.command?.id : message?.id)
    return id.success ? id.data : null
  } catch {
    return null
  }
}
