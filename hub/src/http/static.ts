import { stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { sendJson } from './replies'

/** The viewer's file types, as the hub has always sent them (not `send`'s table: .js is text/javascript). */
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

const NOT_BUILT = { error: 'the viewer is not built: run npm run build --workspace viewer' }
export const OUTSIDE_THE_VIEWER = { error: 'outside the viewer' }

/** Whether a request's path, decoded, names something outside `root` (`/..%2fsecret`): null when it does not decode. */
function escapes (root: string, url: string): boolean | null {
  let path: string
  try {
    path = decodeURIComponent(new URL(url, 'http://hub').pathname)
  } catch {
    return null
  }
  const file = normalize(join(root, path))
  return file !== root && !file.startsWith(root + sep)
}

/**
 * The built viewer, a single-page app: its files by @fastify/static (no path traversal, HEAD,
 * types), hashed assets cached for a year, everything else revalidated. A path without an
 * extension that is no file gets the app (`/pair`, `/console`); one with an extension gets 404.
 * Without a viewer folder every page is a 404 that says how to build it.
 */
export async function installViewer (app: FastifyInstance, viewerDir: string | undefined): Promise<(request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>> {
  if (viewerDir === undefined) return async (_request, reply) => sendJson(reply, 404, NOT_BUILT)
  const root = resolve(viewerDir)
  await app.register(fastifyStatic, {
    root,
    wildcard: true,
    // Answers as the hub always gave them: our types and Cache-Control, no validators.
    contentType: false,
    cacheControl: false,
    etag: false,
    lastModified: false,
    // Nothing the build did not mean to publish: a dotfile in the folder is a 404, as before Fastify.
    dotfiles: 'ignore',
    setHeaders: (reply, path) => {
      reply.header('Content-Type', TYPES[extname(path)] ?? 'application/octet-stream')
      reply.header('Cache-Control', path.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache')
    }
  })
  // The single-page fallback, called by the not-found handler for GET and HEAD.
  return async (request, reply) => {
    // @fastify/static already refused to serve it; say that it was refused, not missing.
    const outside = escapes(root, request.url)
    if (outside === null) return sendJson(reply, 400, { error: 'bad path' })
    if (outside) return sendJson(reply, 403, OUTSIDE_THE_VIEWER)
    const path = new URL(request.url, 'http://hub').pathname
    if (extname(path) !== '') return sendJson(reply, 404, { error: 'not found' })
    const index = await stat(join(root, 'index.html')).catch(() => null)
    if (!index?.isFile()) return sendJson(reply, 404, NOT_BUILT)
    return reply.sendFile('index.html')
  }
}
