import { lpStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import {
  KEPT_SESSION, KeptReadFrame, KeptReadRequest, MAX_KEPT_FRAME_BYTES, MAX_KEPT_READ, PROTOCOLS,
  readFrame, signViewClaim, writeFrame,
  type KeptRing, type SigningKey
} from '@doorbell/core'
import { KeptReadError, KeptRingsAnswer } from '../keptRings'

export { KeptReadError }

/**
 * Reads the rings a doorbell keeps while the hub is down (core/src/directKept.ts), on a connection
 * already open to it: a signed request (a ViewClaim for KEPT_SESSION), then its rings newest first,
 * read by the answer's one check (../keptRings.ts), which the cloud path shares.
 */
export async function readKeptRings (connection: Connection, o: { homeId: string, viewerId: string, credential: string, key: SigningKey, deviceId: string, timeoutMs?: number }): Promise<{ rings: KeptRing[], more: boolean }> {
  const stream = await connection.newStream(PROTOCOLS.kept)
  const io = lpStream(stream, { maxDataLength: MAX_KEPT_FRAME_BYTES })
  try {
    const proof = await signViewClaim({ key: o.key, home: o.homeId, device: o.deviceId, session: KEPT_SESSION })
    await writeFrame(io, KeptReadRequest, { homeId: o.homeId, viewerId: o.viewerId, credential: o.credential, proof })
    const answer = new KeptRingsAnswer(o.deviceId, MAX_KEPT_READ)
    for (;;) {
      const frame = await readFrame(io, KeptReadFrame, 'kept rings', o.timeoutMs ?? 5000, MAX_KEPT_FRAME_BYTES)
      if (!frame.ok) throw new KeptReadError(`the doorbell sent a bad answer: ${frame.error.message}`)
      const done = answer.take(frame.value)
      if (done) return done
    }
  } finally {
    await stream.close().catch(() => {})
  }
}
