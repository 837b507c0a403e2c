import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:https'
import type { TLSSocket } from 'node:tls'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { memoryLogger } from '@doorbell/core'
import { KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { CredentialsError, IotCredentials } from '../src/paths/cloud/credentials'
import { makePki, type TestPki } from './cloudFixtures'

interface Seen { path: string, thing: string | undefined, clientCn: string | undefined }

const HOUR = 3_600_000

function body (expiration: string, n = 1): string {
  return JSON.stringify({
    credentials: {
      accessKeyId: `ASIATESTKEY0000000${n}`,
      secretAccessKey: `secret-access-key-number-${n}-xxxxxxxxxxxx`,
      sessionToken: `session-token-${n}`,
      expiration
    }
  })
}

describe('IotCredentials (the AWS IoT credentials provider)', () => {
  let pki: TestPki
  let server: Server
  let endpoint: string
  const seen: Seen[] = []
  let respond: (req: IncomingMessage, res: ServerResponse, n: number) => void = () => {}

  before(async () => {
    pki = makePki()
    pki.client('doorbell-thing')
    server = createServer({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate()
      seen.push({ path: req.url ?? '', thing: req.headers['x-amzn-iot-thingname'] as string | undefined, clientCn: peer.subject?.CN as string | undefined })
      respond(req, res, seen.length)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    endpoint = `127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(async () => {
    await new Promise((resolve) => server.close(resolve))
    pki.cleanup()
  })

  const make = (o: { now?: () => number, caFile?: string | null, lines?: string[] } = {}): IotCredentials => {
    const client = pki.client('doorbell-thing')
    return new IotCredentials({
      credentialsEndpoint: endpoint,
      roleAlias: 'doorbell-kvs-role-alias',
      thingName: 'doorbell-thing',
      certFile: client.certFile,
      keyFile: client.keyFile,
      caFile: o.caFile === null ? undefined : (o.caFile ?? pki.caFile),
      ...(o.now ? { now: o.now } : {}),
      log: memoryLogger(o.lines ?? [], 'creds')
    })
  }

  test('GETs /role-aliases/{alias}/credentials with the thing name and the thing certificate, and parses the answer', async () => {
    seen.length = 0
    const exp = new Date(Date.now() + HOUR).toISOString()
    respond = (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(body(exp)) }
    const c = await make().get()
    assert.deepEqual(seen, [{ path: '/role-aliases/doorbell-kvs-role-alias/credentials', thing: 'doorbell-thing', clientCn: 'doorbell-thing' }])
    assert.equal(c.accessKeyId, 'ASIATESTKEY00000001')
    assert.equal(c.sessionToken, 'session-token-1')
    assert.ok(c.expiration instanceof Date)
    assert.equal(c.expiration.toISOString(), exp)
  })

  test('cached; concurrent callers share one request; the static triple for the KVS SDK', async () => {
    seen.length = 0
    respond = (_req, res, n) => { setTimeout(() => res.writeHead(200).end(body(new Date(Date.now() + HOUR).toISOString(), n)), 50) }
    const creds = make()
    const [a, b, c] = await Promise.all([creds.get(), creds.get(), creds.provider()])
    assert.equal(seen.length, 1)
    assert.equal(a, b)
    assert.equal(b, c)
    await creds.get()
    assert.equal(seen.length, 1)
    const s = await creds.getStatic()
    assert.deepEqual(Object.keys(s).sort(), ['accessKeyId', 'secretAccessKey', 'sessionToken'])
    assert.equal(seen.length, 1)
  })

  test('refreshed once within 5 minutes of expiry, not before', async () => {
    seen.length = 0
    let now = Date.parse('2030-01-01T00:00:00Z')
    respond = (_req, res, n) => { res.writeHead(200).end(body(new Date(now + 15 * 60_000).toISOString(), n)) }
    const creds = make({ now: () => now })
    const first = await creds.get()
    now += 9 * 60_000 // 6 min left
    assert.equal(await creds.get(), first)
    assert.equal(seen.length, 1)
    now += 2 * 60_000 // 4 min left
    const second = await creds.get()
    assert.equal(seen.length, 2)
    assert.notEqual(second.accessKeyId, first.accessKeyId)
  })

  test('403 → CredentialsError with the status and AWS\'s message', async () => {
    respond = (_req, res) => { res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Access Denied' })) }
    await assert.rejects(make().get(), (err: unknown) => {
      assert.ok(err instanceof CredentialsError)
      assert.equal(err.status, 403)
      assert.match(err.message, /HTTP 403: Access Denied/)
      assert.match(err.message, /role alias/)
      return true
    })
  })

  test('a body that is not credentials → CredentialsError naming what is wrong', async () => {
    const bad = [
      'not json at all',
      JSON.stringify({ credentials: { accessKeyId: 'ASIATESTKEY00000001', secretAccessKey: 'secret-access-key-xxxxxxxxx', expiration: new Date(Date.now() + HOUR).toISOString() } }),
      JSON.stringify({ credentials: { accessKeyId: 'ASIATESTKEY00000001', secretAccessKey: 'secret-access-key-xxxxxxxxx', sessionToken: 't', expiration: 'tomorrow' } }),
      body(new Date(Date.now() - 1000).toISOString())
    ]
    const expected = [/not JSON/, /sessionToken/, /expiration/, /expired/]
    for (const [i, text] of bad.entries()) {
      respond = (_req, res) => { res.writeHead(200).end(text) }
      await assert.rejects(make().get(), (err: unknown) => {
        assert.ok(err instanceof CredentialsError, String(err))
        assert.match(err.message, expected[i]!)
        return true
      })
    }
  })

  test('a failed refresh keeps the cached credentials until they expire, with a warning', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z')
    const lines: string[] = []
    respond = (_req, res) => { res.writeHead(200).end(body(new Date(now + 10 * 60_000).toISOString())) }
    const creds = make({ now: () => now, lines })
    const first = await creds.get()
    now += 7 * 60_000 // 3 min left: refresh due
    respond = (_req, res) => { res.writeHead(503).end('{"message":"Service Unavailable"}') }
    assert.equal(await creds.get(), first)
    assert.ok(lines.some((l) => l.startsWith('warn') && l.includes('using the current ones')), lines.join('\n'))
    now += 4 * 60_000 // expired
    await assert.rejects(creds.get(), /HTTP 503/)
  })

  test('a server the CA bundle does not vouch for is refused', async () => {
    respond = (_req, res) => { res.writeHead(200).end(body(new Date(Date.now() + HOUR).toISOString())) }
    await assert.rejects(make({ caFile: null }).get(), (err: unknown) => {
      assert.ok(err instanceof CredentialsError)
      assert.match(err.message, /could not reach the AWS IoT credentials provider/)
      return true
    })
  })

  test('a missing certificate file gives a clear error', async () => {
    const creds = new IotCredentials({ credentialsEndpoint: endpoint, roleAlias: 'a', thingName: 't', certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' })
    await assert.rejects(creds.get(), /could not read the thing certificate/)
  })

  test('an AWS SDK v3 client takes the provider as its credentials', async () => {
    const exp = new Date(Date.now() + HOUR).toISOString()
    respond = (_req, res) => { res.writeHead(200).end(body(exp, 7)) }
    const creds = make()
    const client = new KinesisVideoClient({ region: 'eu-west-1', credentials: creds.provider })
    try {
      const identity = await client.config.credentials()
      assert.equal(identity.accessKeyId, 'ASIATESTKEY00000007')
      assert.equal(identity.sessionToken, 'session-token-7')
      assert.equal(identity.expiration?.toISOString(), exp)
    } finally {
      client.destroy()
    }
  })
})
