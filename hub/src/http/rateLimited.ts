import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RateLimiter } from '../rateLimit'
import { sendRateLimited } from './replies'

/**
 * A route's onRequest hook that spends one attempt of `limiter` for the client's address
 * (`clientAddressOf`) and answers 429 with Retry-After when none is left, before the body is read.
 *
 * The hub keeps its own token buckets (../rateLimit.ts) rather than @fastify/rate-limit: the
 * plugin counts every request in fixed windows, while pairing is "10 at once, then one more
 * every 30 s", and sign-ins count only failures (a home's screens reconnecting together must never
 * lock each other out), with the same buckets shared by the MQTT WebSocket and MQTT over TCP,
 * which no Fastify plugin sees.
 */
export function rateLimited (limiter: RateLimiter, addressOf: (req: IncomingMessage) => string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const decision = limiter.take(addressOf(request.raw))
    if (!decision.ok) return sendRateLimited(reply, decision.retryAfterSeconds)
    return undefined
  }
}
