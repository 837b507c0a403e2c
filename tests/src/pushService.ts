import assert from 'node:assert/strict'
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A Web Push service stand-in on loopback (the browser vendors' push services are on the
 * internet, out of reach here). It plays both ends a real one joins: it hands out subscriptions
 * as a browser would (its own P-256 key pair and auth secret per screen), and takes the hub's
 * pushes to them as the push service would, checking what RFC 8030 and 8292 require (the VAPID
 * token's ES256 signature with the key in `k`, its audience and expiry, TTL, the content coding)
 * and then decrypting the aes128gcm body (RFC 8291/8188) with the screen's private key, as the
 * browser does. Written from the RFCs, independently of the hub's code.
 */

export interface ReceivedPush {
  screen: string
  /** The decrypted payload. */
  json: unknown
  bodyBytes: number
  ttl: number
  urgency: string | null
  /** The VAPID key that signed it (base64url), and the token's claims. */
  vapidKey: string
  claims: { aud: string, exp: number, sub?: string }
}

export interface StandInScreen {
  name: string
  /** What a browser's `PushSubscription.toJSON()` gives. */
  subscription: { endpoint: string, expirationTime: null, keys: { p256dh: string, auth: string } }
}

export interface PushServiceStandIn {
  url: string
  received: ReceivedPush[]
  /** Refusals it answered, with why (a bad token, a bad body...). */
  refused: Array<{ screen: string, status: number, reason: string }>
  screen: (name: string) => StandInScreen
  /** The push service forgets this screen: its pushes get 410 Gone from now on. */
  forget: (name: string) => void
  close: () => Promise<void>
}

class Refused extends Error { constructor (readonly status: number, message: string) { super(message) } }

export async function startPushService (): Promise<PushServiceStandIn> {
  const screens = new Map<string, { ecdh: ReturnType<typeof createECDH>, auth: Buffer, gone: boolean }>()
  const received: ReceivedPush[] = []
  const refused: PushServiceStandIn['refused'] = []
  let origin = ''

  const take = (req: IncomingMessage, body: Buffer, name: string): ReceivedPush => {
    const s = screens.get(name)
    if (!s) throw new Refused(404, 'no such subscription')
    if (s.gone) throw new Refused(410, 'this subscription expired')
    // RFC 8292 §3: Authorization: vapid t=<JWT>, k=<key>.
    const m = /^vapid t=([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+), ?k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '')
    if (!m) throw new Refused(401, 'no VAPID authorization')
    const [, h, c, sig, k] = m as unknown as [string, string, string, string, string]
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string, typ?: string }
    if (header.alg !== 'ES256') throw new Refused(401, `alg ${String(header.alg)}`)
    const raw = Buffer.from(k, 'base64url')
    if (raw.length !== 65 || raw[0] !== 4) throw new Refused(401, 'k is not an uncompressed P-256 key')
    const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' })
    if (!verify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'))) throw new Refused(403, 'the VAPID signature does not verify with k')
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as ReceivedPush['claims']
    if (claims.aud !== origin) throw new Refused(403, `aud ${claims.aud}, not ${origin}`)
    const now = Date.now() / 1000
    if (!(claims.exp > now && claims.exp <= now + 24 * 3600)) throw new Refused(403, `exp ${claims.exp} is not within 24 h from now`)
    if (!/^\d+$/.test(String(req.headers.ttl ?? ''))) throw new Refused(400, 'no TTL')
    if (req.headers['content-encoding'] !== 'aes128gcm') throw new Refused(415, 'not aes128gcm')
    if (body.length > 4096) throw new Refused(413, `${body.length} bytes`)
    return { screen: name, json: JSON.parse(decrypt(body, s.ecdh, s.auth).toString('utf8')), bodyBytes: body.length, ttl: Number(req.headers.ttl), urgency: (req.headers.urgency as string | undefined) ?? null, vapidKey: k, claims }
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (b: Buffer) => chunks.push(b))
    req.on('end', () => {
      const name = decodeURIComponent(new URL(req.url ?? '/', origin).pathname.replace(/^\/push\//, ''))
      try {
        if (req.method !== 'POST') throw new Refused(405, 'POST only')
        received.push(take(req, Buffer.concat(chunks), name))
        res.writeHead(201, { Location: `${origin}/message/${received.length}` }).end()
      } catch (err) {
        const status = err instanceof Refused ? err.status : 400
        refused.push({ screen: name, status, reason: (err as Error).message })
        res.writeHead(status).end((err as Error).message)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url: origin,
    received,
    refused,
    screen: (name) => {
      const ecdh = createECDH('prime256v1')
      ecdh.generateKeys()
      const auth = randomBytes(16)
      screens.set(name, { ecdh, auth, gone: false })
      return { name, subscription: { endpoint: `${origin}/push/${encodeURIComponent(name)}`, expirationTime: null, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } } }
    },
    forget: (name) => { const s = screens.get(name); if (s) s.gone = true },
    close: async () => { server.closeAllConnections(); await new Promise<void>((resolve) => server.close(() => resolve())) }
  }
}

/** RFC 8291 §3.4 and RFC 8188 §2, the receiving side: one record, the sender's key in the header. */
export function decrypt (body: Buffer, ecdh: ReturnType<typeof createECDH>, auth: Buffer): Buffer {
  if (body.length < 21 + 65 + 17) throw new Refused(400, 'too short for aes128gcm')
  const salt = body.subarray(0, 16)
  const recordSize = body.readUInt32BE(16)
  const idLength = body[20]!
  if (idLength !== 65) throw new Refused(400, `key id of ${idLength} bytes, not a P-256 key`)
  const senderKey = body.subarray(21, 86)
  const sealed = body.subarray(86)
  if (sealed.length > recordSize) throw new Refused(400, 'more than one record')
  const shared = ecdh.computeSecret(senderKey)
  const info = Buffer.concat([Buffer.from('WebPush: info\0'), ecdh.getPublicKey(), senderKey])
  const ikm = Buffer.from(hkdfSync('sha256', shared, auth, info, 32))
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16))
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12))
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce)
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  let plain: Buffer
  try {
    plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()])
  } catch {
    throw new Refused(400, 'the body does not decrypt with this subscription\'s keys')
  }
  let end = plain.length - 1
  while (end >= 0 && plain[end] === 0) end--
  assert.equal(plain[end], 2, 'the last record ends with the 0x02 delimiter')
  return plain.subarray(0, end)
}
