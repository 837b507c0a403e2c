import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

/**
 * AWS Signature Version 4 verification, written from the public algorithm
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
 * canonical request → string to sign → HMAC chain of secret, date, region, service, "aws4_request".
 * The cloud stand-ins use it to accept exactly what AWS would accept from the same client.
 *
 * Error codes are those AWS's JSON services answer with. Query-protocol services (IAM, STS) name an
 * unknown key `InvalidClientTokenId` instead of `UnrecognizedClientException`; a caller
 * standing in for one of those maps the code itself.
 */

export interface AwsCredential { accessKeyId: string, secretAccessKey: string, sessionToken?: string, expiresAt?: number, principal: string }

/** The access keys a stand-in knows, as IAM and STS would. */
export class CredentialStore {
  private readonly byKey = new Map<string, AwsCredential>()
  add (c: AwsCredential): void { this.byKey.set(c.accessKeyId, c) }
  remove (accessKeyId: string): void { this.byKey.delete(accessKeyId) }
  get (accessKeyId: string): AwsCredential | undefined { return this.byKey.get(accessKeyId) }
}

export type SigV4Result =
  | { ok: true, credential: AwsCredential, service: string, region: string }
  | { ok: false, status: 400 | 403, code: string, message: string }

type Refusal = Extract<SigV4Result, { ok: false }>

const ALGORITHM = 'AWS4-HMAC-SHA256'
/** AWS refuses a request whose date is more than 5 minutes away from its own clock. */
const MAX_SKEW_MS = 5 * 60_000
/** A presigned URL lives at most 7 days. */
const MAX_EXPIRES_S = 7 * 86_400
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex')
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'

/**
 * A presigned URL (query auth: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 * X-Amz-SignedHeaders, X-Amz-Signature, optional X-Amz-Security-Token — which may be signed (KVS SDK)
 * or appended after signing (AWS IoT's documented browser scheme; both are accepted)). `host` is
 * the Host header the client sent. Checks clock skew (±5 min), expiry, known key, token matches, signature.
 *
 * Only `host` can be a signed header here (the URL is all this function sees); the payload hash is
 * that of an empty body unless the URL carries X-Amz-Content-Sha256.
 */
export function verifyPresignedUrl (url: URL, host: string, store: CredentialStore, o: { now?: number, service?: string } = {}): SigV4Result {
  const query = parseQuery(url.search.replace(/^\?/, ''))
  if (query === undefined) return incomplete('The query string is not validly percent-encoded.')
  const param = (name: string): string | undefined => query.find(([key]) => key === name)?.[1]

  const algorithm = param('X-Amz-Algorithm')
  const credential = param('X-Amz-Credential')
  const date = param('X-Amz-Date')
  const expires = param('X-Amz-Expires')
  const signedHeaders = param('X-Amz-SignedHeaders')
  const signature = param('X-Amz-Signature')
  const token = param('X-Amz-Security-Token')
  if (algorithm === undefined && signature === undefined && credential === undefined) {
    return { ok: false, status: 403, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' }
  }
  if (algorithm !== ALGORITHM) return incomplete(`Unsupported AWS 'algorithm': '${algorithm ?? ''}'. The only supported value is '${ALGORITHM}'.`)
  const missing = ([['X-Amz-Credential', credential], ['X-Amz-Date', date], ['X-Amz-Expires', expires], ['X-Amz-SignedHeaders', signedHeaders], ['X-Amz-Signature', signature]] as const)
    .filter(([, value]) => value === undefined || value === '').map(([name]) => name)
  if (missing.length > 0) return incomplete(`Missing ${missing.join(', ')} in the query string.`)
  if (!/^\d+$/.test(expires!) || Number(expires) < 1 || Number(expires) > MAX_EXPIRES_S) {
    return incomplete(`X-Amz-Expires must be a number of seconds between 1 and ${MAX_EXPIRES_S}.`)
  }
  const headerNames = signedHeaders!.split(';')
  if (!headerNames.includes('host')) return incomplete("X-Amz-SignedHeaders must include 'host'.")
  if (headerNames.some((name) => name !== 'host')) {
    return forbidden('InvalidSignatureException', `Only 'host' can be a signed header of a presigned URL here, not '${signedHeaders}'.`)
  }

  const scope = parseScope(credential!, date!, o.service)
  if (!scope.ok) return scope
  const who = identify(store, scope.accessKeyId, token, o.now)
  if (!who.ok) return who

  // Canonical query: every parameter except the signature. The session token is either part of it
  // (the KVS SDK signs it in) or was appended after signing (AWS IoT's browser scheme): both are tried.
  const signedParams = query.filter(([key]) => key !== 'X-Amz-Signature')
  const variants = token === undefined ? [signedParams] : [signedParams, signedParams.filter(([key]) => key !== 'X-Amz-Security-Token')]
  const payloadHash = param('X-Amz-Content-Sha256') ?? EMPTY_SHA256
  const matched = variants.some((params) => {
    const canonicalRequest = ['GET', canonicalPath(url.pathname), canonicalQuery(params), `host:${trimAll(host)}\n`, 'host', payloadHash].join('\n')
    return sameSignature(signatureOf(who.credential.secretAccessKey, date!, scope, canonicalRequest), signature!)
  })
  if (!matched) return badSignature()

  const now = o.now ?? Date.now()
  const signedAt = scope.signedAt
  if (signedAt - now > MAX_SKEW_MS) return forbidden('InvalidSignatureException', `Signature not yet current: ${date} is still later than ${amzDate(now + MAX_SKEW_MS)} (${amzDate(now)} + 5 min.)`)
  if (now > signedAt + Number(expires) * 1000) return forbidden('InvalidSignatureException', `Signature expired: ${date} is now earlier than ${amzDate(now - Number(expires) * 1000)} (${amzDate(now)} - ${expires} sec.)`)
  return { ok: true, credential: who.credential, service: scope.service, region: scope.region }
}

/**
 * Header auth (Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...), as
 * the AWS SDK v3 signs HTTP requests. rawPath and rawQuery are as received. The payload hash is the
 * x-amz-content-sha256 header when present (`UNSIGNED-PAYLOAD` included; any other value must be the
 * body's SHA-256), else the body's SHA-256.
 * The request date comes from X-Amz-Date (the `Date` header is not supported).
 */
export function verifyHeaderSigned (req: { method: string, rawPath: string, rawQuery: string, headers: IncomingHttpHeaders, body: Buffer }, store: CredentialStore, o: { now?: number, service?: string } = {}): SigV4Result {
  const authorization = header(req.headers, 'authorization')
  if (authorization === undefined) return { ok: false, status: 403, code: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' }
  const match = /^(\S+)\s+(.*)$/.exec(authorization.trim())
  if (match?.[1] !== ALGORITHM) return incomplete(`Unsupported AWS 'algorithm': '${match?.[1] ?? authorization}'. The only supported value is '${ALGORITHM}'.`)
  const fields = new Map<string, string>()
  for (const part of match[2]!.split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const credential = fields.get('Credential')
  const signedHeaders = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  const date = header(req.headers, 'x-amz-date')
  const missing = ([['Credential', credential], ['SignedHeaders', signedHeaders], ['Signature', signature]] as const)
    .filter(([, value]) => value === undefined || value === '').map(([name]) => name)
  if (missing.length > 0) return incomplete(`Authorization header requires ${missing.map((name) => `'${name}'`).join(', ')} parameter(s). Authorization=${authorization}`)
  if (date === undefined) return incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
  const headerNames = signedHeaders!.split(';')
  if (!headerNames.includes('host')) return incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")

  const scope = parseScope(credential!, date, o.service)
  if (!scope.ok) return scope
  const who = identify(store, scope.accessKeyId, header(req.headers, 'x-amz-security-token'), o.now)
  if (!who.ok) return who

  const query = parseQuery(req.rawQuery)
  if (query === undefined) return incomplete('The query string is not validly percent-encoded.')
  const declaredHash = header(req.headers, 'x-amz-content-sha256')
  const bodyHash = createHash('sha256').update(req.body).digest('hex')
  // A declared body hash that is not the body's own: the body changed after signing.
  if (declaredHash !== undefined && declaredHash !== UNSIGNED_PAYLOAD && declaredHash !== bodyHash) return badSignature()
  const canonicalHeaders = headerNames.map((name) => `${name}:${trimAll(header(req.headers, name) ?? '')}\n`).join('')
  const canonicalRequest = [
    req.method.toUpperCase(), canonicalPath(req.rawPath), canonicalQuery(query), canonicalHeaders, signedHeaders, declaredHash ?? bodyHash
  ].join('\n')
  if (!sameSignature(signatureOf(who.credential.secretAccessKey, date, scope, canonicalRequest), signature!)) return badSignature()

  const now = o.now ?? Date.now()
  if (scope.signedAt - now > MAX_SKEW_MS) return forbidden('InvalidSignatureException', `Signature not yet current: ${date} is still later than ${amzDate(now + MAX_SKEW_MS)} (${amzDate(now)} + 5 min.)`)
  if (now - scope.signedAt > MAX_SKEW_MS) return forbidden('InvalidSignatureException', `Signature expired: ${date} is now earlier than ${amzDate(now - MAX_SKEW_MS)} (${amzDate(now)} - 5 min.)`)
  return { ok: true, credential: who.credential, service: scope.service, region: scope.region }
}

interface Scope { ok: true, accessKeyId: string, shortDate: string, region: string, service: string, signedAt: number }

/** `AKID/yyyymmdd/region/service/aws4_request`, checked against the request's X-Amz-Date. */
function parseScope (credential: string, date: string, expectedService: string | undefined): Scope | Refusal {
  const parts = credential.split('/')
  if (parts.length !== 5 || parts.some((part) => part === '')) return incomplete(`Credential should be of the form 'AKID/yyyymmdd/region/service/aws4_request', not '${credential}'.`)
  const [accessKeyId, shortDate, region, service, terminator] = parts as [string, string, string, string, string]
  const signedAt = parseAmzDate(date)
  if (signedAt === undefined) return incomplete(`X-Amz-Date must be in the ISO 8601 basic format yyyyMMdd'T'HHmmss'Z', not '${date}'.`)
  if (terminator !== 'aws4_request') return forbidden('InvalidSignatureException', `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`)
  if (shortDate !== date.slice(0, 8)) return forbidden('InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${shortDate}' != '${date.slice(0, 8)}', from '${date}'.`)
  if (expectedService !== undefined && service !== expectedService) return forbidden('InvalidSignatureException', `Credential should be scoped to correct service: '${expectedService}'.`)
  return { ok: true, accessKeyId, shortDate, region, service, signedAt }
}

/** The key must be known, its session token (if it has one) presented exactly, and not expired. */
function identify (store: CredentialStore, accessKeyId: string, token: string | undefined, now = Date.now()): { ok: true, credential: AwsCredential } | Refusal {
  const credential = store.get(accessKeyId)
  if (credential === undefined || (token ?? '') !== (credential.sessionToken ?? '')) {
    return forbidden('UnrecognizedClientException', 'The security token included in the request is invalid.')
  }
  if (credential.expiresAt !== undefined && now >= credential.expiresAt) {
    return forbidden('ExpiredTokenException', 'The security token included in the request is expired')
  }
  return { ok: true, credential }
}

function signatureOf (secret: string, date: string, scope: Scope, canonicalRequest: string): string {
  const credentialScope = `${scope.shortDate}/${scope.region}/${scope.service}/aws4_request`
  const stringToSign = [ALGORITHM, date, credentialScope, sha256Hex(canonicalRequest)].join('\n')
  let key: Buffer = Buffer.from(`AWS4${secret}`, 'utf8')
  for (const part of [scope.shortDate, scope.region, scope.service, 'aws4_request']) key = createHmac('sha256', key).update(part, 'utf8').digest()
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex')
}

function sameSignature (expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8')
  const b = Buffer.from(given.toLowerCase(), 'utf8')
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * Path segments normalised (`.`, `..`, empty ones dropped) and the path as received encoded once
 * more, slashes kept: the double encoding SigV4 asks of every service but S3.
 */
function canonicalPath (rawPath: string): string {
  const segments: string[] = []
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment)
  }
  const normalized = `${rawPath.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && rawPath.endsWith('/') ? '/' : ''}`
  return uriEncode(normalized).replace(/%2F/g, '/')
}

/** Names and values decoded, then re-encoded strictly (RFC 3986 unreserved kept) and sorted. */
function canonicalQuery (params: Array<[string, string]>): string {
  return params
    .map(([key, value]) => [uriEncode(key), uriEncode(value)] as const)
    .sort(([k1, v1], [k2, v2]) => k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0)
    .map(([key, value]) => `${key}=${value}`)
    .join('&')
}

/** `a=1&b=%2F` → [['a','1'],['b','/']]; percent-decoding only (`+` stays `+`, as SigV4 clients encode a space as %20). Undefined if malformed. */
function parseQuery (raw: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = []
  try {
    for (const pair of raw.split('&')) {
      if (pair === '') continue
      const eq = pair.indexOf('=')
      out.push(eq < 0 ? [decodeURIComponent(pair), ''] : [decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1))])
    }
  } catch {
    return undefined
  }
  return out
}

function uriEncode (text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Leading and trailing spaces removed, inner runs of spaces collapsed to one. */
function trimAll (value: string): string {
  return value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim()
}

/** A header's value; repeated headers (which Node keeps as arrays only for a few names) joined by commas. */
function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()]
  return Array.isArray(value) ? value.join(',') : value
}

function parseAmzDate (date: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date)
  if (m === null) return undefined
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number]
  const at = Date.UTC(y, mo - 1, d, h, mi, s)
  // Date.UTC rolls over (month 13, second 61): such a date was never a real one.
  return amzDate(at) === date ? at : undefined
}

function amzDate (at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

function sha256Hex (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

function incomplete (message: string): Refusal {
  return { ok: false, status: 400, code: 'IncompleteSignatureException', message }
}

function forbidden (code: string, message: string): Refusal {
  return { ok: false, status: 403, code, message }
}

function badSignature (): Refusal {
  return forbidden('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.')
}
