import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'

export interface RawRequest { method: string, rawPath: string, rawQuery: string, headers: IncomingHttpHeaders, body: Buffer }
export interface Reply { status: number, headers: Record<string, string>, body: string }

const MAX_BODY = 1 << 20

export async function readRequest (req: IncomingMessage): Promise<RawRequest> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) throw new Error('request body too large')
    chunks.push(chunk as Buffer)
  }
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  return {
    method: req.method ?? 'GET',
    rawPath: q < 0 ? url : url.slice(0, q),
    rawQuery: q < 0 ? '' : url.slice(q + 1),
    headers: req.headers,
    body: Buffer.concat(chunks)
  }
}

export function json (status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID(), ...headers }, body: JSON.stringify(body) }
}

/** A REST-JSON error as AWS services send it: the code in x-amzn-errortype, the message in the body. */
export function jsonError (status: number, code: string, message: string, extra: Record<string, unknown> = {}): Reply {
  return json(status, { message, ...extra }, { 'x-amzn-errortype': code })
}

/** Path segments as received, each percent-decoded once (labels may contain encoded slashes). */
export function segments (rawPath: string): string[] | undefined {
  try {
    return rawPath.split('/').slice(1).map((s) => decodeURIComponent(s))
  } catch {
    return undefined
  }
}

export function queryParams (rawQuery: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    try {
      out.set(decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1)))
    } catch { /* a malformed pair is ignored, as a missing parameter */ }
  }
  return out
}

export function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
