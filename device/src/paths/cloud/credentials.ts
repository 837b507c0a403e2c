import { request } from 'node:https'
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { z } from 'zod'
import type { Logger } from '@doorbell/core'

/**
 * Short-lived AWS credentials for KVS, got from the AWS IoT credentials provider with the thing's
 * certificate: no long-lived access key ever sits on a doorbell.
 *
 *   GET https://{credentialsEndpoint}/role-aliases/{roleAlias}/credentials
 *   x-amzn-iot-thingname: {thingName}          (mutual TLS with the thing certificate)
 *   -> {"credentials":{"accessKeyId","secretAccessKey","sessionToken","expiration"}}
 *
 * Cached, and fetched again once they are within `refreshBeforeMs` of expiring; at most one
 * request is in flight. The certificate files are read on each request, so a rotated certificate
 * is picked up without a restart.
 */

export interface IotCredentialsOptions {
  /** host or host:port of the account's iot:CredentialProvider endpoint. */
  credentialsEndpoint: string
  roleAlias: string
  thingName: string
  certFile: string
  keyFile: string
  /** CA bundle (PEM) to trust instead of the system's; for stand-ins. */
  caFile?: string | undefined
  /** Fetch new credentials this long before the cached ones expire (default 5 min). */
  refreshBeforeMs?: number
  /** A request that has not answered after this long fails (default 10 s). */
  timeoutMs?: number
  now?: () => number
  log?: Logger
}

/** What AWS SDK v3 clients take from a credential provider. */
export interface AwsTemporaryCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string
  expiration: Date
}

/** What the KVS SDK's SignalingClient takes (a static object: each new client is given fresh ones). */
export interface StaticCredentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string
}

export class CredentialsError extends Error {
  override name = 'CredentialsError'
  constructor (message: string, readonly status?: number) {
    super(message)
  }
}

const ProviderResponse = z.object({
  credentials: z.object({
    accessKeyId: z.string().min(16).max(128),
    secretAccessKey: z.string().min(16).max(128),
    sessionToken: z.string().min(1).max(8192),
    expiration: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO 8601 date')
  })
})

const DEFAULT_REFRESH_BEFORE_MS = 5 * 60_000
const DEFAULT_TIMEOUT_MS = 10_000
/** The provider's answers are a few KB; anything much larger is not one. */
const MAX_BODY = 64 * 1024

export class IotCredentials {
  private cached: AwsTemporaryCredentials | null = null
  private inFlight: Promise<AwsTemporaryCredentials> | null = null
  private readonly now: () => number
  private readonly refreshBeforeMs: number

  /** The same as get(), bound: pass it as `credentials` to an AWS SDK v3 client. */
  readonly provider: () => Promise<AwsTemporaryCredentials> = async () => await this.get()

  constructor (private readonly o: IotCredentialsOptions) {
    this.now = o.now ?? Date.now
    this.refreshBeforeMs = o.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS
  }

  /** The provider URL (no secret in it). */
  get url (): string {
    return `https://${this.o.credentialsEndpoint}/role-aliases/${encodeURIComponent(this.o.roleAlias)}/credentials`
  }

  /** The last credentials fetched, if any, whether or not they are still valid. */
  peek (): AwsTemporaryCredentials | null { return this.cached }

  /**
   * Credentials valid for at least `refreshBeforeMs` more; fetched when the cached ones are older.
   * If a refresh fails while the cached ones have not yet expired, those are returned (with a
   * warning) rather than failing a call that could still succeed.
   */
  async get (): Promise<AwsTemporaryCredentials> {
    const c = this.cached
    const now = this.now()
    if (c && c.expiration.getTime() - now > this.refreshBeforeMs) return c
    this.inFlight ??= this.fetch().finally(() => { this.inFlight = null })
    try {
      return await this.inFlight
    } catch (err) {
      if (c && c.expiration.getTime() > this.now()) {
        this.o.log?.warn('could not refresh the AWS credentials; using the current ones until they expire', {
          error: (err as Error).message, expires: c.expiration.toISOString()
        })
        return c
      }
      throw err
    }
  }

  /** For the KVS SDK's SignalingClient: the static triple of get(). */
  async getStatic (): Promise<StaticCredentials> {
    const c = await this.get()
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken }
  }

  private async fetch (): Promise<AwsTemporaryCredentials> {
    // One after the other: the first missing file is the one the error names, every time.
    const cert = await readPem(this.o.certFile, 'the thing certificate')
    const key = await readPem(this.o.keyFile, 'the thing private key')
    const ca = this.o.caFile ? await readPem(this.o.caFile, 'the CA bundle') : undefined
    const { status, body } = await this.request({ cert, key, ca })
    if (status !== 200) {
      throw new CredentialsError(`the AWS IoT credentials provider refused (HTTP ${status}${providerMessage(body)}): ${hint(status)}`, status)
    }
    let json: unknown
    try { json = JSON.parse(body) } catch { throw new CredentialsError('the AWS IoT credentials provider answered with something that is not JSON', status) }
    const parsed = ProviderResponse.safeParse(json)
    if (!parsed.success) {
      throw new CredentialsError(`the AWS IoT credentials provider's answer is not credentials: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`, status)
    }
    const c = parsed.data.credentials
    const fresh: AwsTemporaryCredentials = {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      expiration: new Date(c.expiration)
    }
    if (fresh.expiration.getTime() <= this.now()) {
      throw new CredentialsError(`the AWS IoT credentials provider gave credentials that expired at ${c.expiration} (is this machine's clock right?)`, status)
    }
    this.cached = fresh
    this.o.log?.info('got AWS credentials from the IoT credentials provider', { roleAlias: this.o.roleAlias, expires: fresh.expiration.toISOString() })
    return fresh
  }

  private async request (tls: { cert: string, key: string, ca: string | undefined }): Promise<{ status: number, body: string }> {
    const url = new URL(this.url)
    return await new Promise((resolve, reject) => {
      const req = request({
        host: url.hostname,
        port: url.port === '' ? 443 : Number(url.port),
        path: url.pathname,
        method: 'GET',
        headers: { 'x-amzn-iot-thingname': this.o.thingName, accept: 'application/json' },
        cert: tls.cert,
        key: tls.key,
        ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
        // SNI carries host names only (RFC 6066); a stand-in on 127.0.0.1 gets none.
        ...(isIP(url.hostname) === 0 ? { servername: url.hostname } : {}),
        timeout: this.o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        // A fresh TLS session each time: the provider must see the (maybe rotated) certificate.
        agent: false
      }, (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_BODY) { req.destroy(new CredentialsError('the AWS IoT credentials provider\'s answer is too large')); return }
          chunks.push(chunk)
        })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
        res.on('error', reject)
      })
      req.on('timeout', () => { req.destroy(new CredentialsError(`the AWS IoT credentials provider did not answer within ${this.o.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)) })
      req.on('error', (err) => {
        reject(err instanceof CredentialsError ? err : new CredentialsError(`could not reach the AWS IoT credentials provider at ${this.o.credentialsEndpoint}: ${err.message}`))
      })
      req.end()
    })
  }
}

async function readPem (file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new CredentialsError(`could not read ${what} (${file}): ${(err as Error).message}`)
  }
}

/** AWS answers errors as {"message": "..."}; shown when present. */
function providerMessage (body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message
    if (typeof m === 'string' && m !== '') return `: ${m.slice(0, 200)}`
  } catch {}
  return ''
}

function hint (status: number): string {
  switch (status) {
    case 400: return 'check the thing name (x-amzn-iot-thingname)'
    case 401:
    case 403: return 'the certificate is not allowed to assume this role alias (is it active, attached to the thing, and does its policy allow iot:AssumeRoleWithCertificate?)'
    case 404: return 'no such role alias'
    case 429: return 'too many requests; retrying later'
    default: return status >= 500 ? 'the provider failed; retrying later' : 'unexpected answer'
  }
}
