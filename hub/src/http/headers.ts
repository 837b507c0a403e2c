import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { publicScheme, type Reached } from './origin'

/**
 * The built viewer comes from this origin only. It talks to the hub over WebSocket on the same
 * host (`ws:`/`wss:`: CSP's `'self'` does not cover them in every browser), sets inline style
 * attributes, plays `blob:` video and may compile WebAssembly. Away from home it also calls KVS's
 * control plane over HTTPS: only the hosts of the home's cloud config (its region's, or the
 * stand-ins' it names), so that a script injected into the page could not post the resident's
 * AWS keys to any other host.
 */
export function contentSecurityPolicy (connectTo: string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    ["connect-src 'self' ws: wss:", ...connectTo].join(' '),
    // mqtt.js 5 sends its keepalive pings from a blob: worker; without it Aedes drops every browser client after 90 s.
    "worker-src 'self' blob:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'"
  ].join('; ')
}

export const HSTS = 'max-age=31536000'

export type SecurityHeaders = (request: FastifyRequest, reply: FastifyReply) => void

/**
 * The headers every answer carries (pages, API answers, refusals, 404s), and HSTS when the
 * browser came over HTTPS (the hub's own TLS, or a trusted proxy's word). A hook of our own, not
 * @fastify/helmet: helmet joins CSP directives with `;` and no space, sends HSTS whatever the
 * scheme (and with includeSubDomains), and adds headers the hub never sent; these are exactly
 * the ones the hub has always sent.
 */
export function securityHeaders (connectTo: string[], reached: Reached): SecurityHeaders {
  const fixed: Record<string, string> = {
    'Content-Security-Policy': contentSecurityPolicy(connectTo),
    'Permissions-Policy': 'camera=(self), microphone=(self), geolocation=()',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin'
  }
  return (request, reply) => {
    reply.headers(fixed)
    if (publicScheme(request.raw, reached) === 'https') reply.header('Strict-Transport-Security', HSTS)
  }
}

/** Sets the headers first thing on every request, so every later answer has them. */
export function installSecurityHeaders (app: FastifyInstance, apply: SecurityHeaders): void {
  app.addHook('onRequest', async (request, reply) => { apply(request, reply) })
}
