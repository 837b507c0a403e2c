import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import type { AwsCredentials } from '@doorbell/core'

/**
 * AWS IoT Core over WebSocket from a browser: a SigV4-presigned `wss://{endpoint}/mqtt` URL
 * (service `iotdevicegateway`, GET, only `host` signed, empty payload). A session token is
 * appended AFTER signing, as AWS IoT's browser scheme asks (KVS, by contrast, signs it in).
 * Works in browsers and Node: the hash is pure JS (@aws-crypto/sha256-js), no Node crypto.
 */
export interface PresignIotOptions {
  /** The account's iot:Data-ATS endpoint, host or host:port (`wss://{endpoint}/mqtt` is signed). */
  endpoint?: string
  /** A whole wss:// URL to sign instead (stand-ins): its host:port and path are signed. Wins over `endpoint`. */
  wssUrl?: string
  region: string
  credentials: AwsCredentials
  /** Signing time (default now). */
  now?: Date | number
  /** How long the URL opens a connection (default 300 s; it is only checked when the WebSocket opens). */
  expiresSeconds?: number
}

export const IOT_SERVICE = 'iotdevicegateway'
export const DEFAULT_PRESIGN_EXPIRES_SECONDS = 300

/** The URL to sign: `wss://{endpoint}/mqtt`, or the override as given. Throws on anything but wss:// without a query. */
export function iotBaseUrl (o: Pick<PresignIotOptions, 'endpoint' | 'wssUrl'>): URL {
  const text = o.wssUrl ?? (o.endpoint !== undefined ? `wss://${o.endpoint}/mqtt` : undefined)
  if (text === undefined) throw new Error('give the IoT endpoint or a wss:// URL')
  const url = new URL(text)
  if (url.protocol !== 'wss:') throw new Error(`the IoT URL must be wss:// (${url.protocol}// given)`)
  if (url.search !== '' || url.hash !== '') throw new Error('the IoT URL must not carry a query or a fragment')
  if (url.username !== '' || url.password !== '') throw new Error('the IoT URL must not carry a user name or password')
  return url
}

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const encode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

export async function presignIotUrl (o: PresignIotOptions): Promise<string> {
  const url = iotBaseUrl(o)
  // The Host header a WebSocket sends: the port only when it is not 443 (URL.host drops the default one).
  const host = url.host
  const signer = new SignatureV4({
    service: IOT_SERVICE,
    region: o.region,
    // Without the token: it is appended after signing.
    credentials: { accessKeyId: o.credentials.accessKeyId, secretAccessKey: o.credentials.secretAccessKey },
    sha256: Sha256,
    uriEscapePath: true,
    applyChecksum: false
  })
  const signed = await signer.presign({
    method: 'GET',
    protocol: 'wss:',
    hostname: url.hostname,
    ...(url.port !== '' ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: {},
    headers: { host }
  }, {
    expiresIn: o.expiresSeconds ?? DEFAULT_PRESIGN_EXPIRES_SECONDS,
    ...(o.now !== undefined ? { signingDate: new Date(o.now) } : {})
  })
  const query = Object.entries(signed.query ?? {})
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string').map((v) => `${encode(key)}=${encode(v)}`))
    .join('&')
  const token = o.credentials.sessionToken !== undefined ? `&X-Amz-Security-Token=${encode(o.credentials.sessionToken)}` : ''
  return `wss://${host}${url.pathname}?${query}${token}`
}
