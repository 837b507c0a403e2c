import type { IncomingMessage } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyRequest, FastifyTypeProvider } from 'fastify'
import { z } from 'zod'

/**
 * Request bodies: JSON only, at most `bodyLimit` bytes (16 KiB unless a route asks for another),
 * parsed by the route's zod schema (`schema: { body: SomeRequest }`, the schemas in
 * core/src/api.ts) before the handler runs. Fastify reads the body and enforces the limit
 * (a declared Content-Length over it is refused before anything is read, a chunked body as soon
 * as it passes it); what is ours is the refusals' wording, JSON-only, and what happens to the
 * rest of a refused body.
 */

/** Bodies larger than this are refused with 413 unless a route sets its own `bodyLimit`. */
export const DEFAULT_BODY_LIMIT = 16 * 1024
/**
 * After refusing a body the hub still reads (and throws away) up to this much of it, so the
 * client, still sending, gets to read the answer; past it the connection is closed.
 */
const DISCARD_LIMIT = 1024 * 1024

/** A body the hub would not take: 400, 413 or 415, with the reason the client is told. */
export class BodyRefused extends Error {
  override readonly name = 'BodyRefused'
  constructor (readonly statusCode: 400 | 413 | 415, message: string) {
    super(message)
  }
}

/** Types a route's `request.body` from its zod schema (`app.withTypeProvider<ZodBodies>()`). */
export interface ZodBodies extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown
}

const mediaTypeOf = (req: IncomingMessage): string => (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
const hasBodySchema = (request: FastifyRequest): boolean => request.routeOptions.schema?.body !== undefined

/** `name: Invalid input…; pin.0: Too small…`, the first three issues. */
function describeIssues (issues: z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 3).map((issue) => {
    const path = issue.path.map(String).join('.')
    return `${path === '' ? '(body)' : path}: ${issue.message}`
  })
  const more = issues.length - shown.length
  return shown.join('; ') + (more > 0 ? ` (and ${more} more)` : '')
}

const notJson = (err: unknown): BodyRefused => new BodyRefused(400, `the body is not valid JSON: ${(err as Error).message}`)

/** Fastify's own refusals, in the hub's words; null for errors that are not about the body. */
export function bodyRefusal (err: FastifyError, request: FastifyRequest): BodyRefused | null {
  if (err instanceof BodyRefused) return err
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new BodyRefused(413, `the body is larger than ${request.routeOptions.bodyLimit} bytes`)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new BodyRefused(415, 'send the body as Content-Type: application/json')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return new BodyRefused(400, 'the body was cut short')
  }
  return null
}

/**
 * Throws away the rest of a body nobody read (refused, or a route that needs none). Closing at
 * once would make the kernel reset the connection while the client is still sending, and the
 * client would lose the answer; reading for ever would let a client hold the hub's bandwidth.
 * So: read up to DISCARD_LIMIT, then close.
 */
function discardRest (req: IncomingMessage): void {
  if (req.complete || req.destroyed) return
  let discarded = 0
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length
    if (discarded > DISCARD_LIMIT) req.socket.destroy()
  })
  req.resume()
}

export function installBodies (app: FastifyInstance): void {
  // JSON and nothing else: Fastify's text/plain parser goes, so any other type is a 415.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    let json: unknown
    try {
      // JSON is UTF-8 (RFC 8259 §8.1); `fatal` refuses other bytes instead of replacing them.
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body as Buffer))
    } catch (err) {
      done(notJson(err), undefined)
      return
    }
    done(null, json)
  })
  // A route that takes no body ignores whatever comes with it (discarded below), as it always did.
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null, undefined) })

  // A route with a body schema wants JSON, unencoded: refused before a byte of it is read.
  app.addHook('preParsing', async (request) => {
    if (!hasBodySchema(request)) return
    if (mediaTypeOf(request.raw) !== 'application/json') throw new BodyRefused(415, 'send the body as Content-Type: application/json')
    const encoding = request.headers['content-encoding']
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') throw new BodyRefused(415, `Content-Encoding ${encoding} is not accepted`)
  })
  // Fastify skips parsing when there is no body at all: for JSON that is still not valid JSON.
  app.addHook('preValidation', async (request) => {
    if (!hasBodySchema(request) || request.body !== undefined) return
    try {
      JSON.parse('')
    } catch (err) {
      throw notJson(err)
    }
  })
  app.setValidatorCompiler<z.ZodType>(({ schema, httpPart }) => (data) => {
    const parsed = schema.safeParse(data)
    if (parsed.success) return { value: parsed.data }
    return { error: new BodyRefused(400, `invalid ${httpPart === 'body' ? 'body' : httpPart}: ${describeIssues(parsed.error.issues)}`) }
  })
  app.addHook('onResponse', async (request) => { discardRest(request.raw) })
}
