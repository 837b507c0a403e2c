import {
  CloudCommandResult, KVS_PAYLOAD_MAX, OutOfCallCommand, decodeCloudCommand, encode, kvsPayloadSize, toKvsPayload,
  type CommandResult, type Logger
} from '@doorbell/core'

/** Takes the commands that ride the KVS channel (core/src/cloudCommand.ts). */
export interface KvsCommandHandler {
  command: (senderClientId: unknown, payload: unknown) => void
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
  /** Sends a payload on SDP_ANSWER to one viewer; false when it could not be sent. */
  send: (viewerId: string, payload: string) => boolean
  log: Logger
}): KvsCommandHandler {
  const answer = (viewerId: string, result: CommandResult): void => {
    const payload = toKvsPayload(CloudCommandResult.parse({ type: 'command-result', result }))
    if (kvsPayloadSize(payload) > KVS_PAYLOAD_MAX) {
      // A kept trace's chunk: too large for KVS. Said in a result that fits, never dropped silently.
      answer(viewerId, { ok: false, id: result.id, error: { code: 'invalid-command', message: `the answer is over KVS's ${KVS_PAYLOAD_MAX}-byte limit: use the home network` }, reason: 'malformed' })
      return
    }
    if (!o.send(viewerId, payload)) o.log.warn('could not answer a command over KVS', { viewer: viewerId })
  }
  return {
    command (senderClientId, payload) {
      if (typeof senderClientId !== 'string' || senderClientId === '') { o.log.warn('dropped a KVS command with no sender id'); return }
      const viewerId = senderClientId
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
