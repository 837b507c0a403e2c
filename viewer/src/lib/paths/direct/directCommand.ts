import { lpStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import {
  COMMAND_RESULT_TIMEOUT_MS, CommandResult, CommandTimeoutError, DIRECT_COMMAND_PROTOCOL, DirectCommandRequest, MAX_DIRECT_COMMAND_BYTES, MAX_DIRECT_RESULT_BYTES,
  readFrame, writeFrame,
  type OutOfCallCommand
} from '@doorbell/core'

export class DirectCommandError extends Error {
  override readonly name = 'DirectCommandError'
}

/**
 * Sends one signed command outside a call to a doorbell on a connection already open to it
 * (core/src/directCommand.ts) and reads its result, parsed by its schema and matched by id. No
 * answer in time rejects with CommandTimeoutError, as on the hub's MQTT.
 */
export async function sendDirectCommand (connection: Connection, o: { homeId: string, viewerId: string, command: OutOfCallCommand, timeoutMs?: number }): Promise<CommandResult> {
  const timeoutMs = o.timeoutMs ?? COMMAND_RESULT_TIMEOUT_MS
  const stream = await connection.newStream(DIRECT_COMMAND_PROTOCOL)
  const io = lpStream(stream, { maxDataLength: Math.max(MAX_DIRECT_COMMAND_BYTES, MAX_DIRECT_RESULT_BYTES) })
  try {
    await writeFrame(io, DirectCommandRequest, { homeId: o.homeId, viewerId: o.viewerId, command: o.command })
    let frame
    try {
      frame = await readFrame(io, CommandResult, 'direct command result', timeoutMs, MAX_DIRECT_RESULT_BYTES)
    } catch (err) {
      if (/nothing in \d+ ms/.test((err as Error).message)) throw new CommandTimeoutError(o.command.id, timeoutMs)
      throw new DirectCommandError(`the doorbell closed the command's stream: ${(err as Error).message}`)
    }
    if (!frame.ok) throw new DirectCommandError(`the doorbell sent a bad answer: ${frame.error.message}`)
    const result = frame.value
    if (result.id !== null && result.id !== o.command.id) throw new DirectCommandError('the doorbell answered another command')
    return result
  } finally {
    await stream.close().catch(() => {})
  }
}
