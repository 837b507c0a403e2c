import { createServer, type Server } from 'node:http'
import { readFile, stat } from 'node:fs/promises'
import { extname, join, normalize, sep } from 'node:path'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * The stock KVS pages a test drives in Chromium, served on http://127.0.0.1 (a secure context, as
 * getUserMedia needs): `viewer.html` (a stock KVS viewer), `master.html` (a stock KVS master: the
 * seed's doorbell stood in for) and the unmodified KVS WebRTC SDK's own browser build
 * (`dist/kvs-webrtc.js` from node_modules) at /kvs-webrtc.js.
 */
export interface StockPages { url: string, stop: () => Promise<void> }

const require = createRequire(import.meta.url)
const SDK = require.resolve('amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.js')
const FILES: Record<string, { path: string, type: string }> = {
  '/viewer.html': { path: fileURLToPath(new URL('./viewer.html', import.meta.url)), type: 'text/html; charset=utf-8' },
  '/master.html': { path: fileURLToPath(new URL('./master.html', import.meta.url)), type: 'text/html; charset=utf-8' },
  '/kvs-webrtc.js': { path: SDK, type: 'text/javascript; charset=utf-8' }
}

export async function serveStockPages (): Promise<StockPages> {
  const server: Server = createServer((req, res) => {
    const file = FILES[(req.url ?? '/').split('?')[0]!]
    if (file === undefined) { res.writeHead(404).end(); return }
    readFile(file.path).then((body) => { res.writeHead(200, { 'Content-Type': file.type }).end(body) }, () => { res.writeHead(500).end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => { resolve() })) }
  }
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.json': 'application/json', '.webmanifest': 'application/manifest+json', '.png': 'image/png'
}

/**
 * Our built viewer (viewer/dist) from a plain static server, no hub behind it: what a resident
 * with only the seed's doorbell has. A path with no extension gets index.html (a single-page app).
 */
export async function serveViewerAlone (): Promise<StockPages> {
  const root = fileURLToPath(new URL('../../../../viewer/dist', import.meta.url))
  if (!(await stat(join(root, 'index.html')).catch(() => null))?.isFile()) throw new Error(`no built viewer in ${root}: npm run build -w @doorbell/viewer`)
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const file = normalize(join(root, path === '/' || extname(path) === '' ? 'index.html' : path))
    if (!file.startsWith(root + sep)) { res.writeHead(403).end(); return }
    readFile(file).then((body) => { res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body) }, () => { res.writeHead(404).end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => { resolve() })) }
  }
}
