import { createServer, type Server } from 'node:http'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/**
 * The stock KVS pages a test drives in Chromium, served on http://127.0.0.1 (a secure context, as
 * getUserMedia needs): `viewer.html` (a stock KVS viewer) and the unmodified KVS WebRTC SDK's own
 * browser build (`dist/kvs-webrtc.js` from node_modules) at /kvs-webrtc.js.
 */
export interface StockPages { url: string, stop: () => Promise<void> }

const require = createRequire(import.meta.url)
const SDK = require.resolve('amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.js')
const FILES: Record<string, { path: string, type: string }> = {
  '/viewer.html': { path: fileURLToPath(new URL('./viewer.html', import.meta.url)), type: 'text/html; charset=utf-8' },
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
