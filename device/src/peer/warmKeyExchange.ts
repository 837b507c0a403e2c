import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { p256 } from '@noble/curves/p256'

/**
 * werift's DTLS computes its P-256 key exchange in JavaScript (@noble/curves), and the first
 * exchange in a process first builds noble's precomputed table for the base point: 0.2-0.8 s on
 * a busy machine. OpenSSL-based peers (libdatachannel: node-datachannel viewers) choose P-256 and
 * retransmit their server flight after 1 s; a doorbell that answered late then handled the
 * flight twice, and its first call from such a viewer connected ~1 s late. Building the table
 * at start moves that cost out of the first call (Chromium picks X25519, which has no table).
 *
 * It works only if this module's @noble/curves is werift's (npm hoists one copy; checked).
 */
export function warmKeyExchange (): { ok: true, ms: number } | { ok: false, reason: string } {
  const ours = dirname(fileURLToPath(import.meta.resolve('@noble/curves/p256')))
  let theirs: string
  try {
    const fromWerift = createRequire(createRequire(import.meta.url).resolve('werift'))
    theirs = dirname(fromWerift.resolve('@noble/curves/p256'))
  } catch (err) {
    return { ok: false, reason: `werift's @noble/curves was not found: ${(err as Error).message}` }
  }
  // Ours is the ESM build (…/@noble/curves/esm/p256.js), which werift's ESM bundle imports too;
  // resolved the CommonJS way from werift it is …/@noble/curves/p256.js: the same package folder.
  if (dirname(ours) !== theirs) return { ok: false, reason: `werift uses another @noble/curves (${theirs}, not ${ours})` }
  const started = performance.now()
  p256.utils.precompute(8)
  p256.getSharedSecret(p256.utils.randomPrivateKey(), p256.getPublicKey(p256.utils.randomPrivateKey()))
  return { ok: true, ms: performance.now() - started }
}
