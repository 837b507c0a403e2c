import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'
import { SigV4RequestSigner } from 'amazon-kinesis-video-streams-webrtc'
import { CredentialStore, verifyHeaderSigned, verifyPresignedUrl, type AwsCredential, type SigV4Result } from '../src/cloud/sigv4'

/**
 * SigV4 verification against signatures made by real signers: the KVS WebRTC SDK's own
 * SigV4RequestSigner (presigned WebSocket URLs, token signed in) and @smithy/signature-v4 (the AWS
 * SDK v3 signer: presigned URLs with the token signed in or appended after, and header auth).
 * Requests from a real AWS SDK v3 client are covered by kvs-emulator.test.ts.
 */

const HOST = '127.0.0.1:8443'
const REGION = 'us-east-1'
const ARN = 'arn:aws:kinesisvideo:us-east-1:123456789012:channel/front-door/1700000000000'
const longTerm: AwsCredential = { accessKeyId: 'AKIDLONGTERM0001', secretAccessKey: 'secret/with+odd=chars', principal: 'user/device' }
const temporary: AwsCredential = { accessKeyId: 'ASIATEMPORARY001', secretAccessKey: 'temp-secret', sessionToken: 'FwoGZXIvYXdzE+token/with=chars', expiresAt: Date.now() + 3_600_000, principal: 'role/viewer' }

function storeWith (...credentials: AwsCredential[]): CredentialStore {
  const store = new CredentialStore()
  for (const c of credentials) store.add(c)
  return store
}

function refused (result: SigV4Result, status: number, code: string): void {
  assert.equal(result.ok, false, 'expected a refusal')
  if (result.ok) return
  assert.equal(result.code, code, result.message)
  assert.equal(result.status, status)
}

async function kvsSignedUrl (c: AwsCredential, date = new Date(), query: Record<string, string> = { 'X-Amz-ChannelARN': ARN, 'X-Amz-ClientId': 'viewer-1' }): Promise<URL> {
  const signer = new SigV4RequestSigner(REGION, { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) })
  return new URL(await signer.getSignedURL(`wss://${HOST}`, query, date))
}

/** Presigns with the AWS SDK v3 signer; `tokenAfter` signs without the token and appends it, as AWS IoT's browser scheme does. */
async function smithySignedUrl (c: AwsCredential, o: { service: string, path: string, tokenAfter?: boolean, date?: Date, expiresIn?: number }): Promise<URL> {
  const [hostname, port] = HOST.split(':') as [string, string]
  const signer = new SignatureV4({
    service: o.service,
    region: REGION,
    sha256: Sha256,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken && !o.tokenAfter ? { sessionToken: c.sessionToken } : {}) }
  })
  const signed = await signer.presign(
    { method: 'GET', protocol: 'wss:', hostname, port: Number(port), path: o.path, query: {}, headers: { host: HOST } },
    { ...(o.date ? { signingDate: o.date } : {}), ...(o.expiresIn ? { expiresIn: o.expiresIn } : {}) }
  )
  const query = new URLSearchParams(signed.query as Record<string, string>)
  if (o.tokenAfter && c.sessionToken) query.set('X-Amz-Security-Token', c.sessionToken)
  return new URL(`wss://${HOST}${o.path}?${query.toString().replace(/\+/g, '%20')}`)
}

async function headerSigned (c: AwsCredential, o: { body?: string, query?: Record<string, string>, date?: Date, unsignedPayload?: boolean } = {}): Promise<{ method: string, rawPath: string, rawQuery: string, headers: Record<string, string>, body: Buffer }> {
  const signer = new SignatureV4({ service: 'kinesisvideo', region: REGION, sha256: Sha256, credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}) } })
  const body = o.body ?? '{"ChannelName":"front-door"}'
  const headers: Record<string, string> = { host: HOST, 'content-type': 'application/json', 'x-amz-user-agent': 'aws-sdk-js/3  extra  spaces ' }
  if (o.unsignedPayload) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'
  const signed = await signer.sign(
    { method: 'POST', protocol: 'https:', hostname: '127.0.0.1', port: 8443, path: '/describeSignalingChannel', query: o.query ?? {}, headers, body },
    o.date ? { signingDate: o.date } : {}
  )
  const lower = Object.fromEntries(Object.entries(signed.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]))
  const rawQuery = new URLSearchParams(signed.query as Record<string, string>).toString().replace(/\+/g, '%20')
  return { method: 'POST', rawPath: signed.path, rawQuery, headers: lower, body: Buffer.from(body) }
}

/** The same URL with one query parameter's value replaced. */
function withParam (url: URL, name: string, value: string | undefined): URL {
  const copy = new URL(url)
  if (value === undefined) copy.searchParams.delete(name)
  else copy.searchParams.set(name, value)
  return copy
}

describe('SigV4 presigned URLs', () => {
  it('accepts URLs signed by the KVS SDK, with a long-term key and with a signed-in session token', async () => {
    const store = storeWith(longTerm, temporary)
    for (const c of [longTerm, temporary]) {
      const result = verifyPresignedUrl(await kvsSignedUrl(c), HOST, store, { service: 'kinesisvideo' })
      assert.ok(result.ok, result.ok ? '' : result.message)
      assert.equal(result.credential.principal, c.principal)
      assert.equal(result.region, REGION)
      assert.equal(result.service, 'kinesisvideo')
    }
    // The master connects without X-Amz-ClientId.
    assert.ok(verifyPresignedUrl(await kvsSignedUrl(longTerm, new Date(), { 'X-Amz-ChannelARN': ARN }), HOST, store).ok)
  })

  it('accepts URLs presigned by @smithy/signature-v4, token signed in or appended after signing', async () => {
    const store = storeWith(temporary)
    for (const tokenAfter of [false, true]) {
      const url = await smithySignedUrl(temporary, { service: 'iotdevicegateway', path: '/mqtt', tokenAfter })
      const result = verifyPresignedUrl(url, HOST, store, { service: 'iotdevicegateway' })
      assert.ok(result.ok, `tokenAfter=${tokenAfter}: ${result.ok ? '' : result.message}`)
    }
  })

  it('refuses a URL with any byte changed', async () => {
    const store = storeWith(temporary)
    const url = await kvsSignedUrl(temporary)
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-ClientId', 'viewer-2'), HOST, store), 403, 'InvalidSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-ChannelARN', ARN.replace('front', 'back')), HOST, store), 403, 'InvalidSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Expires', '300'), HOST, store), 403, 'InvalidSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'Extra', '1'), HOST, store), 403, 'InvalidSignatureException')
    const signature = url.searchParams.get('X-Amz-Signature')!
    const flipped = signature.slice(0, -1) + (signature.endsWith('0') ? '1' : '0')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Signature', flipped), HOST, store), 403, 'InvalidSignatureException')
    const elsewhere = new URL(url)
    elsewhere.pathname = '/other'
    refused(verifyPresignedUrl(elsewhere, HOST, store), 403, 'InvalidSignatureException')
    // The Host header is signed: the same URL sent to another host does not verify.
    refused(verifyPresignedUrl(url, '127.0.0.1:8444', store), 403, 'InvalidSignatureException')
  })

  it('refuses a wrong secret, an unknown key and a credential scoped to another service', async () => {
    const store = storeWith(longTerm)
    refused(verifyPresignedUrl(await kvsSignedUrl({ ...longTerm, secretAccessKey: 'not-the-secret' }), HOST, store), 403, 'InvalidSignatureException')
    refused(verifyPresignedUrl(await kvsSignedUrl({ ...longTerm, accessKeyId: 'AKIDUNKNOWN' }), HOST, store), 403, 'UnrecognizedClientException')
    refused(verifyPresignedUrl(await kvsSignedUrl(longTerm), HOST, store, { service: 'iotdevicegateway' }), 403, 'InvalidSignatureException')
  })

  it('refuses a missing, wrong or unexpected session token and an expired credential', async () => {
    const store = storeWith(temporary, longTerm)
    const url = await kvsSignedUrl(temporary)
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Security-Token', undefined), HOST, store), 403, 'UnrecognizedClientException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Security-Token', 'another-token'), HOST, store), 403, 'UnrecognizedClientException')
    refused(verifyPresignedUrl(withParam(await kvsSignedUrl(longTerm), 'X-Amz-Security-Token', 'stray'), HOST, store), 403, 'UnrecognizedClientException')
    refused(verifyPresignedUrl(url, HOST, store, { now: temporary.expiresAt! + 1 }), 403, 'ExpiredTokenException')
  })

  it('refuses an expired URL and one dated too far ahead, accepts small clock differences', async () => {
    const store = storeWith(longTerm)
    const signedAt = Date.UTC(2026, 0, 1, 12, 0, 0)
    // The KVS SDK signs with X-Amz-Expires=299.
    const url = await kvsSignedUrl(longTerm, new Date(signedAt))
    assert.equal(url.searchParams.get('X-Amz-Expires'), '299')
    assert.ok(verifyPresignedUrl(url, HOST, store, { now: signedAt + 298_000 }).ok)
    refused(verifyPresignedUrl(url, HOST, store, { now: signedAt + 300_000 }), 403, 'InvalidSignatureException')
    assert.ok(verifyPresignedUrl(url, HOST, store, { now: signedAt - 4 * 60_000 }).ok)
    refused(verifyPresignedUrl(url, HOST, store, { now: signedAt - 6 * 60_000 }), 403, 'InvalidSignatureException')
  })

  it('refuses URLs without or with malformed authentication', async () => {
    const store = storeWith(longTerm)
    refused(verifyPresignedUrl(new URL(`wss://${HOST}/?X-Amz-ChannelARN=x`), HOST, store), 403, 'MissingAuthenticationTokenException')
    const url = await kvsSignedUrl(longTerm)
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Date', '2026-01-01T00:00:00Z'), HOST, store), 400, 'IncompleteSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Credential', 'AKIDLONGTERM0001/20260101'), HOST, store), 400, 'IncompleteSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Algorithm', 'AWS4-HMAC-SHA1'), HOST, store), 400, 'IncompleteSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Signature', undefined), HOST, store), 400, 'IncompleteSignatureException')
    refused(verifyPresignedUrl(withParam(url, 'X-Amz-Expires', '604801'), HOST, store), 400, 'IncompleteSignatureException')
    refused(verifyPresignedUrl(new URL(`${url.href}&bad=%zz`), HOST, store), 400, 'IncompleteSignatureException')
  })
})

describe('SigV4 header auth', () => {
  it('accepts requests signed by @smithy/signature-v4, with and without a session token, query and UNSIGNED-PAYLOAD', async () => {
    const store = storeWith(longTerm, temporary)
    for (const req of [
      await headerSigned(longTerm),
      await headerSigned(temporary),
      await headerSigned(longTerm, { query: { b: 'two words', a: "it's/*" } }),
      await headerSigned(longTerm, { unsignedPayload: true })
    ]) {
      const result = verifyHeaderSigned(req, store, { service: 'kinesisvideo' })
      assert.ok(result.ok, result.ok ? '' : result.message)
    }
  })

  it('refuses a changed body, header, path or query', async () => {
    const store = storeWith(longTerm)
    const req = await headerSigned(longTerm)
    refused(verifyHeaderSigned({ ...req, body: Buffer.from('{"ChannelName":"back-door"}') }, store), 403, 'InvalidSignatureException')
    refused(verifyHeaderSigned({ ...req, headers: { ...req.headers, 'content-type': 'text/plain' } }, store), 403, 'InvalidSignatureException')
    refused(verifyHeaderSigned({ ...req, rawPath: '/deleteSignalingChannel' }, store), 403, 'InvalidSignatureException')
    refused(verifyHeaderSigned({ ...req, rawQuery: 'a=1' }, store), 403, 'InvalidSignatureException')
    // The AWS SDK signs x-amz-content-sha256 in: a body that no longer matches it is refused too.
    assert.match(req.headers['x-amz-content-sha256']!, /^[0-9a-f]{64}$/)
    refused(verifyHeaderSigned({ ...req, headers: { ...req.headers, 'x-amz-content-sha256': '0'.repeat(64) } }, store), 403, 'InvalidSignatureException')
  })

  it('refuses a wrong secret, an unknown key, a missing or wrong token, an expired credential', async () => {
    const store = storeWith(temporary)
    refused(verifyHeaderSigned(await headerSigned({ ...temporary, secretAccessKey: 'nope' }), store), 403, 'InvalidSignatureException')
    refused(verifyHeaderSigned(await headerSigned({ ...temporary, accessKeyId: 'ASIAUNKNOWN' }), store), 403, 'UnrecognizedClientException')
    const req = await headerSigned(temporary)
    const { 'x-amz-security-token': _token, ...withoutToken } = req.headers
    refused(verifyHeaderSigned({ ...req, headers: withoutToken }, store), 403, 'UnrecognizedClientException')
    refused(verifyHeaderSigned({ ...req, headers: { ...req.headers, 'x-amz-security-token': 'other' } }, store), 403, 'UnrecognizedClientException')
    refused(verifyHeaderSigned(req, store, { now: temporary.expiresAt! }), 403, 'ExpiredTokenException')
  })

  it('refuses a request dated more than 5 minutes away', async () => {
    const store = storeWith(longTerm)
    const signedAt = Date.UTC(2026, 0, 1, 12, 0, 0)
    const req = await headerSigned(longTerm, { date: new Date(signedAt) })
    assert.ok(verifyHeaderSigned(req, store, { now: signedAt + 4 * 60_000 }).ok)
    assert.ok(verifyHeaderSigned(req, store, { now: signedAt - 4 * 60_000 }).ok)
    refused(verifyHeaderSigned(req, store, { now: signedAt + 6 * 60_000 }), 403, 'InvalidSignatureException')
    refused(verifyHeaderSigned(req, store, { now: signedAt - 6 * 60_000 }), 403, 'InvalidSignatureException')
  })

  it('refuses requests without or with malformed authentication', async () => {
    const store = storeWith(longTerm)
    const req = await headerSigned(longTerm)
    const { authorization, ...unauthenticated } = req.headers
    refused(verifyHeaderSigned({ ...req, headers: unauthenticated }, store), 403, 'MissingAuthenticationTokenException')
    refused(verifyHeaderSigned({ ...req, headers: { ...req.headers, authorization: authorization!.replace(/, Signature=\w+/, '') } }, store), 400, 'IncompleteSignatureException')
    refused(verifyHeaderSigned({ ...req, headers: { ...req.headers, authorization: authorization!.replace('AWS4-HMAC-SHA256', 'AWS3') } }, store), 400, 'IncompleteSignatureException')
    const { 'x-amz-date': _date, ...undated } = req.headers
    refused(verifyHeaderSigned({ ...req, headers: undated }, store), 400, 'IncompleteSignatureException')
    refused(verifyHeaderSigned(req, store, { service: 'iot' }), 403, 'InvalidSignatureException')
  })
})
