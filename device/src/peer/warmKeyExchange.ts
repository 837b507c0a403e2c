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
  const same = sameCurvesAsWerift()
  if (!same.ok) return same
  const started = performance.now()
  p256.utils.precompute(8)
  p256.getSharedSecret(p256.utils.randomPrivateKey(), p256.getPublicKey(p256.utils.randomPrivateKey()))
  return { ok: true, ms: performance.now() - started }
}

/**
 * Is the @noble/curves this module imports the one werift's DTLS uses? From the repository both
 * resolve in node_modules: compare the folders. In the built doorbell (device/build.ts) both are
 * in the bundle, which holds one copy of each module, and neither resolves at run time.
 */
function sameCurvesAsWerift (): { ok: true } | { ok: false, reason: string } {
  const require = createRequire(import.meta.url)
  let ours: string
  let theirs: string
  try {
    ours = dirname(fileURLToPath(import.meta.resolve('@noble/curves/p256')))
    theirs = dirname(createRequire(require.resolve('werift')).resolve('@noble/curves/p256'))
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return { ok: true }
    return { ok: false, reason: `werift's @noble/curves was not found: ${(err as Error).message}` }
  }
  // Ours is the ESM build (…/@noble/curves/esm/p256.js), which werift's ESM bundle imports too;
  // resolved the CommonJS way from werift it is …/@noble/curves/p256.js: the same package folder.
  return dirname(ours) === theirs ? { ok: true } : { ok: false, reason: `werift uses another @noble/curves (${theirs}, not ${dirname(ours)})` }
}
