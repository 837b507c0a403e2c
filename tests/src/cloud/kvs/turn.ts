import { createHmac, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCoturn, type Coturn } from '../../coturn'
import type { Pki } from '../pki'
import type { IceServerSpec } from './emulator'

/**
 * KVS's TURN, stood in for by the real coturn the other tests start. GetIceServerConfig on AWS
 * always answers with TURN servers (each with its own short-lived credential and a Ttl of 300 s);
 * AWS's own example page takes `IceServerList[0]` without checking, so an empty list breaks it.
 * AWS lists two, on different hosts; one coturn on one address gives one entry. Two entries for
 * the same address would not be KVS as it is: Chromium allocates on both from the same UDP socket,
 * coturn refuses the second (same 5-tuple: allocation mismatch) and Chromium's gathering never
 * completes (measured: 15 s with two entries, 0.3 s with one). Credentials are TURN REST ones (`<expiry>:<name>`, HMAC-SHA1 of it with coturn's
 * static-auth-secret), which coturn checks itself: a wrong or expired one is refused by coturn,
 * not by this file.
 */

/** What KVS documents as the credential lifetime, in seconds. */
export const KVS_TURN_TTL_SECONDS = 300

/** How many servers GetIceServerConfig lists: one per TURN address (see above). */
const SERVERS = 1

/** TURN REST credential for coturn's `use-auth-secret` (username `<unix expiry>:<name>`). */
export function turnRest (secret: string, name: string, ttlSeconds: number, now: number): { username: string, password: string } {
  const username = `${Math.floor(now / 1000) + ttlSeconds}:${name}`
  return { username, password: createHmac('sha1', secret).update(username).digest('base64') }
}

/** The IceServerList GetIceServerConfig answers with, minted now from coturn's secret. */
export function kvsIceServers (turn: Coturn, now = Date.now()): IceServerSpec[] {
  return Array.from({ length: SERVERS }, () => {
    const c = turnRest(turn.secret, `kvs-${randomBytes(6).toString('hex')}`, KVS_TURN_TTL_SECONDS, now)
    return { Uris: turn.urls, Username: c.username, Password: c.password, Ttl: KVS_TURN_TTL_SECONDS }
  })
}

/** coturn with a certificate from the stand-ins' PKI (its turns: port), in `dir`. */
export async function startKvsTurn (pki: Pki, dir: string): Promise<Coturn> {
  const issued = await pki.issueServer(['127.0.0.1', 'localhost'])
  const certPath = join(dir, 'turn-cert.pem')
  const keyPath = join(dir, 'turn-key.pem')
  await writeFile(certPath, issued.certPem)
  await writeFile(keyPath, issued.keyPem, { mode: 0o600 })
  return await startCoturn({ dir: join(dir, 'coturn'), certPath, keyPath })
}
