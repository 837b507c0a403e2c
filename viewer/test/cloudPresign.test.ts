import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { Sha256 } from '@aws-crypto/sha256-js'
import { presignIotUrl } from '../src/lib/paths/cloud/presign'

const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }
const token = 'FwoGZXIvYXdzEJr//////////wEaDM+token/with+slashes=='
const now = Date.UTC(2025, 4, 17, 9, 30, 12)

/** The query as name/value pairs, in order, decoded. */
const pairs = (url: URL): Array<[string, string]> => url.search.slice(1).split('&').map((p) => {
  const eq = p.indexOf('=')
  return [decodeURIComponent(p.slice(0, eq)), decodeURIComponent(p.slice(eq + 1))]
})

/** Re-signs what the URL says it signed with @smithy/signature-v4 (same date), and compares. */
async function resign (url: URL, secret: string): Promise<string> {
  const q = Object.fromEntries(pairs(url))
  const [, date, region, service] = q['X-Amz-Credential']!.split('/')
  const signer = new SignatureV4({ service: service!, region: region!, credentials: { accessKeyId: q['X-Amz-Credential']!.split('/')[0]!, secretAccessKey: secret }, sha256: Sha256 })
  const amzDate = q['X-Amz-Date']!
  assert.equal(amzDate.slice(0, 8), date)
  const signingDate = new Date(Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15)))
  const again = await signer.presign({ method: 'GET', protocol: 'wss:', hostname: url.hostname, path: url.pathname, query: {}, headers: { host: url.host } }, { signingDate, expiresIn: Number(q['X-Amz-Expires']) })
  return again.query!['X-Amz-Signature'] as string
}

/** The same check written from the public algorithm with node:crypto, independent of smithy. */
function byHand (url: URL, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  const q = pairs(url).filter(([k]) => k !== 'X-Amz-Signature' && k !== 'X-Amz-Security-Token')
  const canonicalQuery = q.map(([k, v]) => [enc(k), enc(v)]).sort(([a], [b]) => a! < b! ? -1 : 1).map(([k, v]) => `${k}=${v}`).join('&')
  const qs = Object.fromEntries(pairs(url))
  const [, date, region, service] = qs['X-Amz-Credential']!.split('/')
  const canonical = ['GET', url.pathname, canonicalQuery, `host:${url.host}\n`, 'host', createHash('sha256').update('').digest('hex')].join('\n')
  const scope = `${date}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', qs['X-Amz-Date'], scope, createHash('sha256').update(canonical).digest('hex')].join('\n')
  let key: Buffer = Buffer.from(`AWS4${secret}`)
  for (const part of [date!, region!, service!, 'aws4_request']) key = createHmac('sha256', key).update(part).digest()
  return createHmac('sha256', key).update(toSign).digest('hex')
}

test('presign: wss://{endpoint}/mqtt, service iotdevicegateway, host only, signature verifies (smithy and by hand)', async () => {
  const text = await presignIotUrl({ endpoint: 'a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com', region: 'eu-west-1', credentials, now })
  const url = new URL(text)
  assert.equal(url.protocol, 'wss:')
  assert.equal(url.host, 'a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com')
  assert.equal(url.pathname, '/mqtt')
  const q = Object.fromEntries(pairs(url))
  assert.equal(q['X-Amz-Algorithm'], 'AWS4-HMAC-SHA256')
  assert.equal(q['X-Amz-Credential'], 'AKIAIOSFODNN7EXAMPLE/20250517/eu-west-1/iotdevicegateway/aws4_request')
  assert.equal(q['X-Amz-Date'], '20250517T093012Z')
  assert.equal(q['X-Amz-SignedHeaders'], 'host')
  assert.equal(q['X-Amz-Expires'], '300')
  assert.equal(q['X-Amz-Security-Token'], undefined, 'no token without a session token')
  assert.match(q['X-Amz-Signature']!, /^[0-9a-f]{64}$/)
  assert.equal(await resign(url, credentials.secretAccessKey), q['X-Amz-Signature'])
  assert.equal(byHand(url, credentials.secretAccessKey), q['X-Amz-Signature'])
  assert.notEqual(byHand(url, 'another secret of some length'), q['X-Amz-Signature'], 'another secret does not verify')
})

test('presign: the session token is appended after the signature and is not signed', async () => {
  const text = await presignIotUrl({ endpoint: 'x-ats.iot.us-east-1.amazonaws.com', region: 'us-east-1', credentials: { ...credentials, sessionToken: token }, now, expiresSeconds: 60 })
  const url = new URL(text)
  const names = pairs(url).map(([k]) => k)
  assert.equal(names.at(-1), 'X-Amz-Security-Token', 'the token is last')
  assert.ok(names.indexOf('X-Amz-Signature') < names.indexOf('X-Amz-Security-Token'), 'and after the signature')
  assert.equal(Object.fromEntries(pairs(url))['X-Amz-Security-Token'], token, 'the token survives encoding (slashes, plus, equals)')
  assert.ok(!text.includes('+with+'), 'plus signs are percent-encoded')
  assert.equal(Object.fromEntries(pairs(url))['X-Amz-Expires'], '60')
  const signature = Object.fromEntries(pairs(url))['X-Amz-Signature']
  assert.equal(await resign(url, credentials.secretAccessKey), signature, 'the signature is that of the URL without the token')
  assert.equal(byHand(url, credentials.secretAccessKey), signature)
})

test('presign: an iotWssUrl override signs its own host:port and path', async () => {
  const text = await presignIotUrl({ endpoint: 'ignored.example.com', wssUrl: 'wss://127.0.0.1:8883/mqtt-standin', region: 'eu-west-1', credentials, now })
  const url = new URL(text)
  assert.equal(url.host, '127.0.0.1:8883')
  assert.equal(url.pathname, '/mqtt-standin')
  const signature = Object.fromEntries(pairs(url))['X-Amz-Signature']
  assert.equal(byHand(url, credentials.secretAccessKey), signature, 'host:port is what was signed')
  assert.equal(await resign(url, credentials.secretAccessKey), signature)
  // The default port is not part of the Host header a WebSocket sends.
  const onDefault = new URL(await presignIotUrl({ wssUrl: 'wss://iot.example.com:443/mqtt', region: 'eu-west-1', credentials, now }))
  assert.equal(onDefault.host, 'iot.example.com')
  assert.equal(byHand(onDefault, credentials.secretAccessKey), Object.fromEntries(pairs(onDefault))['X-Amz-Signature'])
})

test('presign: signing at another time gives another URL; bad URLs are refused', async () => {
  const a = await presignIotUrl({ endpoint: 'e.example.com', region: 'eu-west-1', credentials, now })
  const b = await presignIotUrl({ endpoint: 'e.example.com', region: 'eu-west-1', credentials, now: now + 1000 })
  assert.notEqual(a, b)
  await assert.rejects(presignIotUrl({ wssUrl: 'ws://127.0.0.1:1883/mqtt', region: 'eu-west-1', credentials }), /wss/)
  await assert.rejects(presignIotUrl({ wssUrl: 'wss://h/mqtt?x=1', region: 'eu-west-1', credentials }), /query/)
  await assert.rejects(presignIotUrl({ region: 'eu-west-1', credentials }), /endpoint/)
})
