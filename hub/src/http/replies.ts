import type { FastifyReply } from 'fastify'

/**
 * Every JSON answer of the hub: `application/json` (JSON is UTF-8 by definition: Fastify would add
 * a charset to a string, not to bytes), never cached.
 */
export function sendJson (reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).headers({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).send(Buffer.from(JSON.stringify(body)))
}

/** 429 with `Retry-After`, for a caller a `RateLimiter` refused. */
export function sendRateLimited (reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds))
  reply.header('Retry-After', String(seconds))
  return sendJson(reply, 429, { error: `too many attempts; try again in ${seconds} s` })
}

/**
 * The local CA's certificate, DER, as phones want to install it (iOS offers a profile, Android
 * a CA certificate). The fingerprint travels along so a script can compare it with the one the
 * hub printed.
 */
export function sendCaCertificate (reply: FastifyReply, caDer: Uint8Array, fingerprint: string): FastifyReply {
  return reply.code(200).headers({
    'Content-Type': 'application/x-x509-ca-cert',
    'Content-Disposition': 'attachment; filename="doorbell-home-ca.crt"',
    'Cache-Control': 'no-cache',
    'X-Doorbell-CA-Fingerprint': fingerprint
  }).send(Buffer.from(caDer))
}
