import { lpStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import {
  KEPT_SESSION, KeptReadFrame, KeptReadRequest, MAX_KEPT_FRAME_BYTES, MAX_KEPT_READ, PROTOCOLS,
  readFrame, signViewClaim, writeFrame,
  type KeptRing, type SigningKey
} from '@doorbell/core'

export class KeptReadError extends Error {
  override readonly name = 'KeptReadError'
}

/**
 * Reads the rings a doorbell keeps while the hub is down (core/src/directKept.ts), on a connection
 * already open to it: a signed request (a ViewClaim for KEPT_SESSION), then its rings newest first.
 * Each is parsed by its schema and must be that doorbell's own; a refusal says why.
 */
export async function readKeptRings (connection: Connection, o: { homeId: string, viewerId: string, credential: string, key: SigningKey, deviceId: string, timeoutMs?: number }): Promise<{ rings: KeptRing[], more: boolean }> {
  const stream = await connection.newStream(PROTOCOLS.kept)
  const io = lpStream(stream, { maxDataLength: MAX_KEPT_FRAME_BYTES })
  try {
    const proof = await signViewClaim({ key: o.key, home: o.homeId, device: o.deviceId, session: KEPT_SESSION })
    await writeFrame(io, KeptReadRequest, { homeId: o.homeId, viewerId: o.viewerId, credential: o.credential, proof })
    const rings: KeptRing[] = []
    for (let i = 0; i <= MAX_KEPT_READ; i++) {
      const frame = await readFrame(io, KeptReadFrame, 'kept rings', o.timeoutMs ?? 5000, MAX_KEPT_FRAME_BYTES)
      if (!frame.ok) throw new KeptReadError(`the doorbell sent a bad answer: ${frame.error.message}`)
      const f = frame.value
      if (f.kind === 'refused') throw new KeptReadError(`the doorbell refused: ${f.message}`)
      if (f.kind === 'end') return { rings, more: f.more }
      if (f.kept.deviceId !== o.deviceId) throw new KeptReadError(`${o.deviceId} sent another doorbell's ring`)
      rings.push(f.kept)
    }
    throw new KeptReadError('the doorbell sent more rings than asked')
  } finally {
    await stream.close().catch(() => {})
  }
}
