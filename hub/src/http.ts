import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createReadStream } from 'node:fs'
import { isIP } from 'node:net'
import { stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { type z } from 'zod'
import type { Logger } from '@doorbell/core'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg'
}

export type ApiRoute = (req: IncomingMessage, res: ServerResponse) => boolean

/** Bodies larger than this are refused with 413 unless a route asks for another limit. */
export const DEFAULT_BODY_LIMIT = 16 * 1024
/**
 * After refusing a body the hub still reads (and throws away) up to this much of it, so the
 * client, still sending, gets to read the answer; past it the connection is closed.
 */
const DISCARD_LIMIT = 1024 * 1024

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

const securityHeaders = (connectTo: string[]): Record<string, string> => ({
  'Content-Security-Policy': contentSecurityPolicy(connectTo),
  'Permissions-Policy': 'camera=(self), microphone=(self), geolocation=()',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin'
})

const CROSS_ORIGIN_REFUSED = { error: 'cross-origin requests are refused' }

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
  res.end(JSON.stringify(body))
}

/** 429 with `Retry-After`, for a caller a `RateLimiter` refused. */
export function sendRateLimited (res: ServerResponse, retryAfterSeconds: number): void {
  const seconds = Math.max(1, Math.ceil(retryAfterSeconds))
  res.setHeader('Retry-After', String(seconds))
  sendJson(res, 429, { error: `too many attempts; try again in ${seconds} s` })
}

/**
 * The local CA's certificate, DER, as phones want to install it (iOS offers a profile, Android
 * a CA certificate). The fingerprint travels along so a script can compare it with the one the
 * hub printed.
 */
export function sendCaCertificate (res: ServerResponse, caDer: Uint8Array, fingerprint: string): void {
  res.writeHead(200, {
    'Content-Type': 'application/x-x509-ca-cert',
    'Content-Disposition': 'attachment; filename="doorbell-home-ca.crt"',
    'Content-Length': caDer.byteLength,
    'Cache-Control': 'no-cache',
    'X-Doorbell-CA-Fingerprint': fingerprint
  })
  res.end(caDer)
}

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

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (`::ffff:127.0.0.1`, how a dual-stack socket shows IPv4). */
export function isLoopbackAddress (address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(address)
}

/**
 * Who sent a request, for per-address limits. `fallback` says why the proxy's word was not taken
 * when it should have been: the header was missing, or not one IP address.
 */
export interface ClientAddress { address: string, fallback?: 'missing' | 'invalid' }

/**
 * The client's address: the socket's, or, behind a trusted proxy (`trustProxy`) and only when
 * the socket is loopback (the proxy on this machine), the one the proxy puts in `X-Real-IP`
 * (nginx: `proxy_set_header X-Real-IP $remote_addr;`). Otherwise every client would share the
 * proxy's address and so one allowance, and a stranger could use it up for everyone. Anything
 * but one IPv4 or IPv6 address (a list, a name, empty) is not believed: the socket's address
 * then, as without a proxy. A non-loopback socket did not come through the proxy, whatever it
 * sends.
 */
export function clientAddress (req: IncomingMessage, o: { trustProxy: boolean }): ClientAddress {
  const socket = req.socket.remoteAddress ?? 'unknown'
  if (!o.trustProxy || !isLoopbackAddress(socket)) return { address: socket }
  const header = req.headers['x-real-ip']
  if (header === undefined) return { address: socket, fallback: 'missing' }
  // Node joins a repeated X-Real-IP with ", ": a list, refused like any other non-address.
  const value = (Array.isArray(header) ? header.join(',') : header).trim()
  return isIP(value) === 0 ? { address: socket, fallback: 'invalid' } : { address: value.toLowerCase() }
}

/**
 * `clientAddress` for a hub: the first request of each kind whose proxy header could not be used
 * is logged (once, so a misconfigured proxy or a flood of forged headers cannot fill the log).
 */
export function clientAddressOf (o: { trustProxy: boolean, log: Logger }): (req: IncomingMessage) => string {
  const logged = new Set<'missing' | 'invalid'>()
  return (req) => {
    const found = clientAddress(req, o)
    if (found.fallback !== undefined && !logged.has(found.fallback)) {
      logged.add(found.fallback)
      o.log.warn(found.fallback === 'missing'
        ? 'a request from this machine has no X-Real-IP (a local client, or a proxy that does not set it): rate limits use the socket\'s address, behind a proxy one allowance for every client (nginx: proxy_set_header X-Real-IP $remote_addr;). Logged once.'
        : 'a request through the proxy has an X-Real-IP that is not one IP address: it is ignored and the proxy\'s address used (nginx: proxy_set_header X-Real-IP $remote_addr;). Logged once.',
      { socket: found.address })
    }
    return found.address
  }
}

export type JsonBody<T> = { ok: true, value: T } | { ok: false, status: 400 | 413 | 415, error: string }

/**
 * Reads a JSON request body and checks it against `schema`. Nothing past `limitBytes` is kept:
 * a declared `Content-Length` over the limit is refused before reading, a chunked body as soon as
 * it passes it. The caller answers with `sendJson(res, r.status, { error: r.error })`.
 */
export async function readJsonBody<S extends z.ZodType> (
  req: IncomingMessage,
  schema: S,
  opts: { limitBytes?: number } = {}
): Promise<JsonBody<z.infer<S>>> {
  const limit = opts.limitBytes ?? DEFAULT_BODY_LIMIT
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (mediaType !== 'application/json') {
    discardRest(req)
    return { ok: false, status: 415, error: 'send the body as Content-Type: application/json' }
  }
  const encoding = req.headers['content-encoding']
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    discardRest(req)
    return { ok: false, status: 415, error: `Content-Encoding ${encoding} is not accepted` }
  }
  const tooLarge = { ok: false, status: 413, error: `the body is larger than ${limit} bytes` } as const
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    discardRest(req)
    return tooLarge
  }

  const body = await readAtMost(req, limit)
  if (body === 'too large') return tooLarge
  if (body === 'cut short') return { ok: false, status: 400, error: 'the body was cut short' }
  let json: unknown
  try {
    // JSON is UTF-8 (RFC 8259 §8.1); `fatal` refuses other bytes instead of replacing them.
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body))
  } catch (err) {
    return { ok: false, status: 400, error: `the body is not valid JSON: ${(err as Error).message}` }
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) return { ok: false, status: 400, error: `invalid body: ${describeIssues(parsed.error.issues)}` }
  return { ok: true, value: parsed.data }
}

/** `name: Invalid input…; pin.0: Too small…`, the first three issues. */
function describeIssues (issues: z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 3).map((issue) => {
    const path = issue.path.map(String).join('.')
    return `${path === '' ? '(body)' : path}: ${issue.message}`
  })
  const more = issues.length - shown.length
  return shown.join('; ') + (more > 0 ? ` (and ${more} more)` : '')
}

async function readAtMost (req: IncomingMessage, limit: number): Promise<Buffer | 'too large' | 'cut short'> {
  if (req.readableEnded) return 'cut short'
  return await new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (result: Buffer | 'too large' | 'cut short'): void => {
      req.off('data', onData).off('end', onEnd).off('close', onCutShort).off('error', onCutShort)
      resolve(result)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        finish('too large')
        discardRest(req)
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => { finish(Buffer.concat(chunks)) }
    const onCutShort = (): void => { finish('cut short') }
    req.on('data', onData).on('end', onEnd).on('close', onCutShort).on('error', onCutShort)
  })
}

/**
 * Throws away the rest of a refused body. Closing at once would make the kernel reset the
 * connection while the client is still sending, and the client would lose the answer; reading
 * for ever would let a client hold the hub's bandwidth. So: read up to DISCARD_LIMIT, then close.
 */
function discardRest (req: IncomingMessage): void {
  if (req.readableEnded) return
  let discarded = 0
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length
    if (discarded > DISCARD_LIMIT) req.socket.destroy()
  })
  req.resume()
}

/**
 * The hub's web server: cross-origin writes refused, then the API, then the built viewer (a
 * single-page app). Every answer carries the security headers; HSTS too when the browser came
 * over HTTPS (the hub's own TLS, or a trusted proxy's).
 * `connectTo`: origins beyond the hub and AWS the page may call (the cloud config's endpoint overrides).
 * `trustProxy`: believe the proxy's X-Forwarded-Proto and X-Forwarded-Host (see `Reached`).
 */
export function createWebServer (opts: { viewerDir?: string, tls?: { key: string, cert: string }, api: ApiRoute, connectTo?: string[], trustProxy?: boolean }): Server {
  const headers = securityHeaders(opts.connectTo ?? [])
  const reached: Reached = { tls: opts.tls !== undefined, trustProxy: opts.trustProxy ?? false }
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
    if (publicScheme(req, reached) === 'https') res.setHeader('Strict-Transport-Security', 'max-age=31536000')
    if (!allowCrossOrigin(req, res, reached)) return
    if (opts.api(req, res)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' })
      return
    }
    void serveStatic(opts.viewerDir, req, res)
  }
  return opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createHttpServer(handler)
}

/**
 * CORS limited to the hub's own origin: a page elsewhere may not write (a cross-site POST needs no
 * preflight, so refusing it here is what stops CSRF) and gets no `Access-Control-Allow-Origin`,
 * so it cannot read either. Answers preflights itself. Returns false when it has answered.
 */
function allowCrossOrigin (req: IncomingMessage, res: ServerResponse, reached: Reached): boolean {
  const sameOrigin = isSameOrigin(req, reached)
  if (req.method === 'OPTIONS') {
    if (!sameOrigin) {
      sendJson(res, 403, CROSS_ORIGIN_REFUSED)
      return false
    }
    const own = publicOrigin(req, reached)
    if (own !== undefined) res.setHeader('Access-Control-Allow-Origin', own)
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, POST, DELETE',
      'Access-Control-Allow-Headers': 'authorization, content-type',
      Vary: 'Origin'
    })
    res.end()
    return false
  }
  if (!sameOrigin && req.method !== 'GET' && req.method !== 'HEAD') {
    sendJson(res, 403, CROSS_ORIGIN_REFUSED)
    return false
  }
  return true
}

async function serveStatic (dir: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!dir) {
    sendJson(res, 404, { error: 'the viewer is not built: run npm run build --workspace viewer' })
    return
  }
  const root = resolve(dir)
  let path: string
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
  } catch {
    sendJson(res, 400, { error: 'bad path' })
    return
  }
  let file = normalize(join(root, path))
  if (file !== root && !file.startsWith(root + sep)) {
    sendJson(res, 403, { error: 'outside the viewer' })
    return
  }
  let info = await stat(file).catch(() => null)
  if (info?.isDirectory()) {
    file = join(file, 'index.html')
    info = await stat(file).catch(() => null)
  }
  if (!info?.isFile()) {
    // Single-page app: unknown paths without an extension get the app.
    if (extname(path) !== '') {
      sendJson(res, 404, { error: 'not found' })
      return
    }
    file = join(root, 'index.html')
    info = await stat(file).catch(() => null)
    if (!info) {
      sendJson(res, 404, { error: 'the viewer is not built: run npm run build --workspace viewer' })
      return
    }
  }
  const hashed = file.includes(`${sep}assets${sep}`)
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': info.size,
    'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache'
  })
  if (req.method === 'HEAD') { res.end(); return }
  createReadStream(file).pipe(res)
}
