import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'

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

const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin'
}

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...SECURITY_HEADERS })
  res.end(JSON.stringify(body))
}

/** The hub's web server: the API first, then the built viewer (a single-page app). */
export function createWebServer (opts: { viewerDir?: string, tls?: { key: string, cert: string }, api: ApiRoute }): Server {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (opts.api(req, res)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' })
      return
    }
    void serveStatic(opts.viewerDir, req, res)
  }
  return opts.tls ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createHttpServer(handler)
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
    'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...SECURITY_HEADERS
  })
  if (req.method === 'HEAD') { res.end(); return }
  createReadStream(file).pipe(res)
}
