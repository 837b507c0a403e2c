import { lpStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import {
  CommandResult, DIRECT_COMMAND_PROTOCOL, DirectCommandRequest, MAX_DIRECT_COMMAND_BYTES, MAX_DIRECT_RESULT_BYTES,
  encode, readFrame, writeFrame,
  type Logger
} from '@doorbell/core'
import type { MeshNode } from '@doorbell/mesh'
import { senderLimiter, type SenderLimit, type SenderLimiter } from '../senderLimit'

export interface DirectCommandsOptions {
  homeId: string
  log: Logger
  /** The device's commands outside a call on this path (`AnsweringSide.takeCommand`): checked and audited as from the hub. */
  take: (viewerId: string, payload: string) => Promise<CommandResult>
  requestTimeoutMs?: number
  /** Commands one peer may send in `windowMs` (default 20 in 10 s: the config's `commandsPerScreen`); past it, refused unread. */
  perPeer?: SenderLimit | undefined
  /** The limiter the doorbell's other direct requests share (hubDown.ts); absent: one of its own from `perPeer`. */
  limiter?: SenderLimiter
  now?: () => number
}

/**
 * Commands outside a call on the direct path (core/src/directCommand.ts): one request per stream,
 * parsed as the broker's gate parses a command, then handed to the same `outOfCallCommands` as one
 * from the hub, and answered with its result. A request that fails its schema, or names another
 * home, is answered `invalid-command` and reaches no command kind.
 */
export async function serveDirectCommands (node: MeshNode, o: DirectCommandsOptions): Promise<() => Promise<void>> {
  // Any peer on the LAN can open this protocol: each gets a few commands a window (../senderLimit.ts).
  const limiter = o.limiter ?? senderLimiter({ limit: o.perPeer, now: o.now, log: o.log, what: 'commands' })
  const serve = async (stream: Stream, connection: Connection): Promise<void> => {
    const io = lpStream(stream, { maxDataLength: Math.max(MAX_DIRECT_COMMAND_BYTES, MAX_DIRECT_RESULT_BYTES) })
    const answer = async (result: CommandResult): Promise<void> => { await writeFrame(io, CommandResult, result) }
    try {
      const request = await readFrame(io, DirectCommandRequest, 'direct command', o.requestTimeoutMs ?? 5000, MAX_DIRECT_COMMAND_BYTES)
      if (!request.ok) {
        o.log.warn('rejected a direct command', { error: request.error.message })
        await answer({ ok: false, id: null, error: { code: 'invalid-command', message: request.error.message.slice(0, 300) }, reason: 'malformed' })
        return
      }
      const r = request.value
      if (!limiter.admit(connection.remotePeer.toString())) {
        await answer({ ok: false, id: r.command.id, error: { code: 'busy', message: limiter.busyMessage } })
        return
      }
      if (r.homeId !== o.homeId) {
        const message = `this doorbell belongs to another home than ${r.homeId}`
        o.log.warn('rejected a direct command', { error: message })
        await answer({ ok: false, id: r.command.id, error: { code: 'invalid-command', message }, reason: 'malformed' })
        return
      }
      await answer(await o.take(r.viewerId, encode(DirectCommandRequest.shape.command, r.command)))
    } catch (err) {
      o.log.warn('a direct command failed', { error: (err as Error).message })
    } finally {
      await stream.close().catch(() => {})
    }
  }
  await node.handle(DIRECT_COMMAND_PROTOCOL, (stream, connection) => { void serve(stream, connection) })
  return async () => { await node.unhandle(DIRECT_COMMAND_PROTOCOL).catch(() => {}) }
}
