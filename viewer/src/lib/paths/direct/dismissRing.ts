import { lpStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import {
  DismissDirectAnswer, DismissDirectRequest, MAX_FRAME_BYTES, PROTOCOLS,
  readFrame, signViewClaim, writeFrame,
  type SigningKey
} from '@doorbell/core'

export class DirectDismissError extends Error {
  override readonly name = 'DirectDismissError'
}

/**
 * Dismisses a ring on the doorbell itself while the hub is down (core/src/directDismiss.ts), on a
 * connection already open to it: a signed request whose proof names the ring. The doorbell notes it
 * on its kept copy, which the hub takes when it is back; a refusal says why.
 */
export async function dismissRingDirect (connection: Connection, o: { homeId: string, viewerId: string, credential: string, key: SigningKey, deviceId: string, ringId: string, timeoutMs?: number }): Promise<'ringing' | 'dismissed'> {
  const stream = await connection.newStream(PROTOCOLS.dismiss)
  const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
  try {
    const proof = await signViewClaim({ key: o.key, home: o.homeId, device: o.deviceId, session: o.ringId })
    await writeFrame(io, DismissDirectRequest, { homeId: o.homeId, viewerId: o.viewerId, credential: o.credential, proof, ringId: o.ringId })
    const answer = await readFrame(io, DismissDirectAnswer, 'dismissal', o.timeoutMs ?? 5000, MAX_FRAME_BYTES)
    if (!answer.ok) throw new DirectDismissError(`the doorbell sent a bad answer: ${answer.error.message}`)
    if (answer.value.kind === 'refused') throw new DirectDismissError(`the doorbell refused: ${answer.value.message}`)
    return answer.value.outcome
  } finally {
    await stream.close().catch(() => {})
  }
}
