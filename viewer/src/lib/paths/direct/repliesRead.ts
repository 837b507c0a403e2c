import { lpStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import {
  MAX_FRAME_BYTES, MAX_REPLIES_FRAME_BYTES, REPLIES_PROTOCOL, REPLIES_SESSION, RepliesReadAnswer, RepliesReadRequest,
  readFrame, signViewClaim, writeFrame,
  type SigningKey
} from '@doorbell/core'

export class RepliesReadError extends Error {
  override readonly name = 'RepliesReadError'
}

/**
 * Reads the quick replies a doorbell plays while the hub is down (core/src/repliesRead.ts), on a
 * connection already open to it: a signed request (a ViewClaim for REPLIES_SESSION), answered with
 * the list, parsed by its schema; a refusal (no talk right) says why.
 */
export async function readRepliesDirect (connection: Connection, o: { homeId: string, viewerId: string, credential: string, key: SigningKey, deviceId: string, timeoutMs?: number }): Promise<string[]> {
  const stream = await connection.newStream(REPLIES_PROTOCOL)
  const io = lpStream(stream, { maxDataLength: Math.max(MAX_FRAME_BYTES, MAX_REPLIES_FRAME_BYTES) })
  try {
    const proof = await signViewClaim({ key: o.key, home: o.homeId, device: o.deviceId, session: REPLIES_SESSION })
    await writeFrame(io, RepliesReadRequest, { homeId: o.homeId, viewerId: o.viewerId, credential: o.credential, proof })
    const answer = await readFrame(io, RepliesReadAnswer, 'quick replies', o.timeoutMs ?? 5000, MAX_REPLIES_FRAME_BYTES)
    if (!answer.ok) throw new RepliesReadError(`the doorbell sent a bad answer: ${answer.error.message}`)
    if (answer.value.kind === 'refused') throw new RepliesReadError(`the doorbell refused: ${answer.value.message}`)
    return answer.value.replies
  } finally {
    await stream.close().catch(() => {})
  }
}
