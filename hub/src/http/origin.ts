import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { sendJson } from './replies'

/**
 * How the hub is reached. `tls`: it serves HTTPS itself. `trustProxy`: a reverse proxy on this
 * machine (config `trustProxy`, allowed only with a loopback host) says in `X-Forwarded-Proto`
 * and `X-Forwarded-Host` which scheme and host the browser used; without it those headers are
 * anyone's to forge and are ignored.
 */
export interface Reached { tls: boolean, trustProxy: boolean }

/** A host as `Host` carries it: no path, user info, spaces or lists. */
const HOST = /^[^\s/?#@\\,]+$/

/**
 * One proxy header's value: undefined when absent (or not trusted), null when unusable (sent
 * twice, a comma list, empty). nginx's `proxy_set_header` replaces what the client sent, so a
 * list means the proxy is not set up as deployment/nginx expects.
 */
function forwarded (req: IncomingMessage, name: 'x-forwarded-proto' | 'x-forwarded-host', o: Reached): string | null | undefined {
  if (!o.trustProxy) return undefined
  const value = req.headers[name]
  if (value === undefined) return undefined
  if (Array.isArray(value) || value.includes(',') || value.trim() === '') return null
  return value.trim()
}

/** The scheme the browser used: the proxy's word when trusted, else whether the hub serves TLS; null when the proxy's word is unusable. */
export function publicScheme (req: IncomingMessage, o: Reached): 'https' | 'http' | null {
  const proto = forwarded(req, 'x-forwarded-proto', o)
  if (proto === undefined) return o.tls ? 'https' : 'http'
  const p = proto?.toLowerCase()
  return p === 'https' || p === 'http' ? p : null
}

/**
 * `scheme://host[:port]` as the browser sees the hub: from `Host` (or, behind a trusted proxy,
 * `X-Forwarded-Host` and `X-Forwarded-Proto`); undefined when there is no usable one.
 */
export function publicOrigin (req: IncomingMessage, o: Reached): string | undefined {
  const scheme = publicScheme(req, o)
  const fwdHost = forwarded(req, 'x-forwarded-host', o)
  const host = fwdHost === undefined ? req.headers.host : fwdHost
  if (scheme === null || host === undefined || host === null || !HOST.test(host)) return undefined
  try {
    return new URL(`${scheme}://${host}`).origin
  } catch {
    return undefined
  }
}

/**
 * Whether the request comes from a page of the hub's own origin. A request without `Origin`
 * counts as same-origin: browsers send `Origin` on every cross-origin request and on every
 * WebSocket handshake, so its absence means a device, a script or a same-origin navigation.
 * (`Origin: null`, from sandboxed frames and files, is foreign.)
 */
export function isSameOrigin (req: IncomingMessage, o: Reached): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  const own = publicOrigin(req, o)
  if (own === undefined) return false
  try {
    return new URL(origin).origin === own
  } catch {
    return false
  }
}

const CROSS_ORIGIN_REFUSED = { error: 'cross-origin requests are refused' }

/**
 * CORS limited to the hub's own origin: a page elsewhere may not write (a cross-site POST needs no
 * preflight, so refusing it here, before any route or body parser runs, is what stops CSRF) and
 * gets no `Access-Control-Allow-Origin`, so it cannot read either. Preflights are answered here.
 * Our own hook rather than @fastify/cors: that plugin answers a foreign preflight without the
 * allow header but does not refuse the write that follows, which is the part that matters.
 */
export function installSameOriginOnly (app: FastifyInstance, reached: Reached): void {
  app.addHook('onRequest', async (request, reply) => {
    const sameOrigin = isSameOrigin(request.raw, reached)
    if (request.method === 'OPTIONS') {
      if (!sameOrigin) return sendJson(reply, 403, CROSS_ORIGIN_REFUSED)
      const own = publicOrigin(request.raw, reached)
      if (own !== undefined) reply.header('Access-Control-Allow-Origin', own)
      return reply.code(204).headers({
        'Access-Control-Allow-Methods': 'GET, POST, DELETE',
        'Access-Control-Allow-Headers': 'authorization, content-type',
        Vary: 'Origin'
      }).send()
    }
    if (!sameOrigin && request.method !== 'GET' && request.method !== 'HEAD') return sendJson(reply, 403, CROSS_ORIGIN_REFUSED)
  })
}
