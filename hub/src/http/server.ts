import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { Logger } from '@doorbell/core'
import { DEFAULT_BODY_LIMIT, bodyRefusal, installBodies } from './bodies'
import { installSecurityHeaders, securityHeaders } from './headers'
import { installSameOriginOnly, type Reached } from './origin'
import { sendJson } from './replies'
import { OUTSIDE_THE_VIEWER, installViewer } from './static'

export interface WebServerOptions {
  /** The built viewer (viewer/dist); without it pages are a 404 saying how to build it. */
  viewerDir?: string
  /** Serve HTTPS with this key and certificate; plain HTTP without. */
  tls?: { key: string, cert: string }
  /** The routes (the hub's API), a Fastify plugin registered after the hooks below. */
  api: FastifyPluginAsync
  /** Origins beyond the hub the page may call (the cloud config's KVS hosts), for the CSP. */
  connectTo?: string[]
  /** Believe the proxy's X-Forwarded-Proto and X-Forwarded-Host (see `Reached`). */
  trustProxy?: boolean
  log?: Logger
}

/**
 * The hub's web server on Fastify, in the order a request meets it: security headers (every
 * answer), the same-origin rule (cross-origin writes refused before any route), JSON bodies
 * (parsed and checked by the route's zod schema), the API, the built viewer. Not listening yet:
 * the caller listens, and may attach the MQTT WebSocket to `app.server` first.
 */
export async function createWebServer (opts: WebServerOptions): Promise<FastifyInstance> {
  const reached: Reached = { tls: opts.tls !== undefined, trustProxy: opts.trustProxy ?? false }
  const headers = securityHeaders(opts.connectTo ?? [], reached)
  const options = {
    logger: false,
    bodyLimit: DEFAULT_BODY_LIMIT,
    // GET routes answer GET; HEAD is for the viewer's files (@fastify/static registers it itself).
    exposeHeadRoutes: false,
    // Stopping the hub ends keep-alive connections too, as before.
    forceCloseConnections: true,
    // Node's own defaults, which the hub had before Fastify (Fastify's are 72 s and none).
    keepAliveTimeout: 5000,
    requestTimeout: 300_000,
    // A URL Fastify cannot decode never reaches a hook: give it the headers here.
    frameworkErrors: (_err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      headers(request, reply)
      void sendJson(reply, 400, { error: 'bad path' })
    }
  } satisfies FastifyServerOptions
  const app = (opts.tls ? Fastify({ ...options, https: { key: opts.tls.key, cert: opts.tls.cert } }) : Fastify(options)) as unknown as FastifyInstance

  installSecurityHeaders(app, headers)
  installSameOriginOnly(app, reached)
  installBodies(app)
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const refused = bodyRefusal(err, request)
    if (refused) return sendJson(reply, refused.statusCode, { error: refused.message })
    const status = err.statusCode ?? 500
    if (err.code === 'FST_STATIC_FORBIDDEN_PATH') return sendJson(reply, 403, OUTSIDE_THE_VIEWER)
    if (status < 500) return sendJson(reply, status, { error: err.message })
    opts.log?.error('request failed', { method: request.method, url: request.url, error: err.message })
    return sendJson(reply, 500, { error: 'the hub could not do that; see its log' })
  })

  await app.register(opts.api)
  const spa = await installViewer(app, opts.viewerDir)
  app.setNotFoundHandler(async (request, reply) => {
    const path = new URL(request.url, 'http://hub').pathname
    if (path.startsWith('/api/')) return sendJson(reply, 404, { error: `no such endpoint: ${request.method} ${path}` })
    if (request.method !== 'GET' && request.method !== 'HEAD') return sendJson(reply, 405, { error: 'method not allowed' })
    return await spa(request, reply)
  })
  return app
}
