import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { cloudOrigins } from '../src/hub'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { contentSecurityPolicy, createWebServer, sendCaCertificate, sendJson, sendRateLimited, type ZodBodies } from '../src/http'
import { RateLimiter } from '../src/rateLimit'
import { ensureLocalTls, type LocalTls } from '../src/tls/localCa'

const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "media-src 'self' blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
const LIMIT = 1024
const SignIn = z.object({ name: z.string().min(1), pin: z.string().regex(/^\d{6}$/) })

interface Reply { status: number, headers: IncomingHttpHeaders, body: string, raw: Buffer }

/** One request on its own connection; `body` as an array is sent chunked (no Content-Length). */
async function send (url: string, o: { method?: string, headers?: Record<string, string>, body?: string | string[], ca?: string } = {}): Promise<Reply> {
  const target = new URL(url)
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise((resolve, reject) => {
    const req = request(target, { method: o.method ?? 'GET', headers: o.headers, agent: false, ca: o.ca }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk)).on('end', () => {
        const raw = Buffer.concat(chunks)
        resolve({ status: res.statusCode!, headers: res.headers, body: raw.toString('utf8'), raw })
      })
    })
    req.on('error', reject)
    for (const part of [o.body ?? []].flat()) req.write(part)
    req.end()
  })
}

const json = (body: unknown): Record<string, string> => ({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(JSON.stringify(body))) })

/** The hub's API in miniature, as Fastify routes: a JSON route, a rate-limited one, the CA download. */
function makeApi (o: { limiter: RateLimiter, calls: string[], ca?: LocalTls }): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<ZodBodies>()
    // The route counts as run from its first hook, before its body is read (as the pairing limit and sign-in do).
    app.post('/api/sign-in', { bodyLimit: LIMIT, schema: { body: SignIn }, onRequest: async () => { o.calls.push('/api/sign-in') } }, async (request, reply) => {
      return sendJson(reply, 200, { hello: request.body.name })
    })
    app.post('/api/pair', async (request, reply) => {
      o.calls.push('/api/pair')
      const allowed = o.limiter.take(request.raw.socket.remoteAddress ?? '')
      if (!allowed.ok) return sendRateLimited(reply, allowed.retryAfterSeconds)
      return sendJson(reply, 200, { paired: true })
    })
    const ca = o.ca
    if (ca !== undefined) app.get('/ca.crt', async (_request, reply) => sendCaCertificate(reply, ca.caDer, ca.fingerprint))
  }
}

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'doorbell-http-'))
  await mkdir(join(root, 'viewer', 'assets'), { recursive: true })
  await writeFile(join(root, 'viewer', 'index.html'), '<!doctype html><title>doorbell</title>')
  await writeFile(join(root, 'viewer', 'assets', 'app.js'), 'console.log(1)')
  await writeFile(join(root, 'secret.txt'), 'the home key')
  await writeFile(join(root, 'viewer', '.env'), 'TURN_SECRET=left-behind')
})
after(async () => { await rm(root, { recursive: true, force: true }) })

async function listen (app: FastifyInstance): Promise<number> {
  return Number(new URL(await app.listen({ port: 0, host: '127.0.0.1' })).port)
}

async function close (app: FastifyInstance): Promise<void> {
  await app.close()
}

test('the page may call KVS in the home\'s region (or the stand-ins its cloud config names), and no other HTTPS host', () => {
  const aws = { region: 'eu-west-1', iotEndpoint: 'a1-ats.iot.eu-west-1.amazonaws.com', devices: [{ deviceId: 'front-door', thingName: 't', channelName: 'c' }] }
  assert.match(contentSecurityPolicy(cloudOrigins(aws)), /connect-src 'self' ws: wss: https:\/\/kinesisvideo\.eu-west-1\.amazonaws\.com https:\/\/\*\.kinesisvideo\.eu-west-1\.amazonaws\.com;/)
  assert.match(contentSecurityPolicy(cloudOrigins({ ...aws, kvsEndpoint: 'https://127.0.0.1:9443' })), /connect-src 'self' ws: wss: https:\/\/127\.0\.0\.1:9443;/)
  assert.equal(contentSecurityPolicy(), CSP, 'no cloud: no HTTPS host beyond the hub')
})

describe('the web server over HTTP', () => {
  let server: FastifyInstance
  let base: string
  const calls: string[] = []
  const limiter = new RateLimiter({ burst: 2, refillMs: 60_000 })

  before(async () => {
    server = await createWebServer({ viewerDir: join(root, 'viewer'), api: makeApi({ limiter, calls }) })
    base = `http://127.0.0.1:${await listen(server)}`
  })
  after(async () => { await close(server) })

  const ran = async (fn: () => Promise<Reply>): Promise<{ reply: Reply, routeRan: boolean }> => {
    const before = calls.length
    const reply = await fn()
    return { reply, routeRan: calls.length > before }
  }

  test('static files, API answers and refusals all carry the security headers, HSTS none of them', async () => {
    const replies = [
      await send(`${base}/`),
      await send(`${base}/assets/app.js`),
      await send(`${base}/api/sign-in`, { method: 'POST', headers: json({ name: 'a', pin: '123456' }), body: JSON.stringify({ name: 'a', pin: '123456' }) }),
      await send(`${base}/nothing.png`),
      await send(`${base}/api/sign-in`, { method: 'POST', headers: { origin: 'https://evil.example' } })
    ]
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 404, 403])
    for (const { headers } of replies) {
      assert.equal(headers['content-security-policy'], CSP)
      assert.equal(headers['permissions-policy'], 'camera=(self), microphone=(self), geolocation=()')
      assert.equal(headers['x-content-type-options'], 'nosniff')
      assert.equal(headers['x-frame-options'], 'DENY')
      assert.equal(headers['referrer-policy'], 'no-referrer')
      assert.equal(headers['cross-origin-opener-policy'], 'same-origin')
      assert.equal(headers['strict-transport-security'], undefined)
      assert.equal(headers['access-control-allow-origin'], undefined)
    }
  })

  test('a POST from a foreign origin is refused before the route runs', async () => {
    const body = JSON.stringify({ name: 'mallory', pin: '123456' })
    for (const origin of ['https://evil.example', 'null', `${base.replace('127.0.0.1', 'localhost')}`, base.replace('http:', 'https:')]) {
      const { reply, routeRan } = await ran(async () => await send(`${base}/api/sign-in`, { method: 'POST', headers: { ...json({ name: 'mallory', pin: '123456' }), origin }, body }))
      assert.equal(reply.status, 403, origin)
      assert.deepEqual(JSON.parse(reply.body), { error: 'cross-origin requests are refused' })
      assert.equal(routeRan, false, origin)
    }
  })

  test('a POST from the own origin, or from no browser at all, reaches the route', async () => {
    const body = { name: 'alice', pin: '123456' }
    for (const headers of [{ ...json(body), origin: base }, json(body)]) {
      const { reply, routeRan } = await ran(async () => await send(`${base}/api/sign-in`, { method: 'POST', headers, body: JSON.stringify(body) }))
      assert.equal(reply.status, 200, reply.body)
      assert.deepEqual(JSON.parse(reply.body), { hello: 'alice' })
      assert.equal(routeRan, true)
    }
  })

  test('a GET from a foreign origin is served but may not be read by the page', async () => {
    const reply = await send(`${base}/`, { headers: { origin: 'https://evil.example' } })
    assert.equal(reply.status, 200)
    assert.equal(reply.headers['access-control-allow-origin'], undefined)
  })

  test('preflights: refused for a foreign origin, answered for the own origin', async () => {
    const preflight = { 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
    const foreign = await send(`${base}/api/sign-in`, { method: 'OPTIONS', headers: { ...preflight, origin: 'https://evil.example' } })
    assert.equal(foreign.status, 403)
    assert.equal(foreign.headers['access-control-allow-origin'], undefined)

    const own = await send(`${base}/api/sign-in`, { method: 'OPTIONS', headers: { ...preflight, origin: base } })
    assert.equal(own.status, 204)
    assert.equal(own.headers['access-control-allow-origin'], base)
    assert.equal(own.headers['access-control-allow-methods'], 'GET, POST, DELETE')
    assert.equal(own.headers['access-control-allow-headers'], 'authorization, content-type')
  })

  test('a body over the limit is refused with 413, declared or chunked, and the server goes on', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(LIMIT), pin: '123456' })
    const declared = await send(`${base}/api/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big })
    assert.equal(declared.status, 413)
    assert.match(JSON.parse(declared.body).error, /larger than 1024 bytes/)

    const chunks = big.match(/.{1,256}/g)!
    const chunked = await send(`${base}/api/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunks })
    assert.equal(chunked.status, 413)

    const fine = await send(`${base}/api/sign-in`, { method: 'POST', headers: json({ name: 'bob', pin: '000000' }), body: JSON.stringify({ name: 'bob', pin: '000000' }) })
    assert.equal(fine.status, 200)
  })

  test('a declared length over the limit is refused before any of the body arrives', { timeout: 5000 }, async () => {
    // Only one byte of the announced 10 MiB comes: reading first would wait for the rest.
    const reply = await send(`${base}/api/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) }, body: '{' })
    assert.equal(reply.status, 413)
  })

  test('a body that never ends is answered 413 and then cut off, not read for ever', async () => {
    // A raw socket: Node's own client stops sending once it has an answer; an attacker does not.
    // keep-alive, as browsers do: otherwise Node closes the connection after any answer anyway.
    const socket = connect(Number(new URL(base).port), '127.0.0.1')
    await once(socket, 'connect')
    let answer = ''
    socket.setEncoding('utf8').on('data', (text: string) => { answer += text })
    socket.on('error', () => {}) // the hub hangs up on us (EPIPE, ECONNRESET): that is the point
    const closed = new Promise<void>((resolve) => socket.once('close', () => { resolve() }))
    socket.write('POST /api/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n')
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 0x20), Buffer.from('\r\n')])
    const giveUpAt = 64 * 1024 * 1024
    let sent = 0
    try {
      while (sent < giveUpAt && !socket.destroyed) {
        sent += chunk.length
        if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed])
      }
      assert.match(answer, /^HTTP\/1\.1 413 /)
      assert.ok(sent < giveUpAt, `the hub read all ${sent} bytes`)
    } finally {
      socket.destroy()
    }
  })

  test('a body that is not JSON by content type is refused with 415', async () => {
    const reply = await send(`${base}/api/sign-in`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"name":"a","pin":"123456"}' })
    assert.equal(reply.status, 415)
    assert.match(JSON.parse(reply.body).error, /application\/json/)
    const charset = await send(`${base}/api/sign-in`, {
      method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"name":"a","pin":"123456"}'
    })
    assert.equal(charset.status, 200)
  })

  test('malformed JSON is refused with 400 and says so', async () => {
    const reply = await send(`${base}/api/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": "a",' })
    assert.equal(reply.status, 400)
    assert.match(JSON.parse(reply.body).error, /^the body is not valid JSON: /)
  })

  test('a body that fails the schema is refused with 400 naming the fields', async () => {
    const reply = await send(`${base}/api/sign-in`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: '', pin: 12 }) })
    assert.equal(reply.status, 400)
    const { error } = JSON.parse(reply.body) as { error: string }
    assert.match(error, /^invalid body: /)
    assert.match(error, /name: /)
    assert.match(error, /pin: /)
  })

  test('pairing is rate limited: a burst, then 429 with Retry-After', async () => {
    const pair = async (): Promise<Reply> => await send(`${base}/api/pair`, { method: 'POST' })
    assert.equal((await pair()).status, 200)
    assert.equal((await pair()).status, 200)
    const refused = await pair()
    assert.equal(refused.status, 429)
    assert.equal(refused.headers['retry-after'], '60')
    assert.deepEqual(JSON.parse(refused.body), { error: 'too many attempts; try again in 60 s' })
  })

  test('path traversal is still refused', async () => {
    for (const path of ['/%2e%2e/secret.txt', '/..%2fsecret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const reply = await send(`${base}${path}`)
      assert.ok(reply.status === 403 || reply.status === 404, `${path}: ${reply.status}`)
      assert.ok(!reply.body.includes('the home key'), path)
    }
    assert.equal((await send(`${base}/..%2fsecret.txt`)).status, 403)
  })

  test('a dotfile left in the viewer folder is not served', async () => {
    // No extension: the single-page fallback answers with the app, never the file.
    const reply = await send(`${base}/.env`)
    assert.equal(reply.status, 200)
    assert.match(reply.body, /<title>doorbell<\/title>/)
    assert.ok(!reply.body.includes('left-behind'))
  })
})

describe('the web server over TLS', () => {
  let server: FastifyInstance
  let base: string
  let tls: LocalTls
  const calls: string[] = []

  before(async () => {
    tls = await ensureLocalTls({ dir: join(root, 'tls'), hostnames: [], ips: [] })
    server = await createWebServer({
      viewerDir: join(root, 'viewer'),
      tls: { key: tls.key, cert: tls.cert },
      api: makeApi({ limiter: new RateLimiter({ burst: 1, refillMs: 1000 }), calls, ca: tls })
    })
    base = `https://127.0.0.1:${await listen(server)}`
  })
  after(async () => { await close(server) })

  test('answers carry HSTS', async () => {
    const reply = await send(`${base}/`, { ca: tls.caCert })
    assert.equal(reply.status, 200)
    assert.equal(reply.headers['strict-transport-security'], 'max-age=31536000')
    assert.equal(reply.headers['content-security-policy'], CSP)
  })

  test('the own origin is https: the http origin on the same host and port is foreign', async () => {
    const body = JSON.stringify({ name: 'alice', pin: '123456' })
    const headers = json({ name: 'alice', pin: '123456' })
    assert.equal((await send(`${base}/api/sign-in`, { method: 'POST', headers: { ...headers, origin: base }, body, ca: tls.caCert })).status, 200)
    const plain = base.replace('https:', 'http:')
    assert.equal((await send(`${base}/api/sign-in`, { method: 'POST', headers: { ...headers, origin: plain }, body, ca: tls.caCert })).status, 403)
  })

  test('the CA certificate is offered for download', async () => {
    const reply = await send(`${base}/ca.crt`, { ca: tls.caCert })
    assert.equal(reply.status, 200)
    assert.equal(reply.headers['content-type'], 'application/x-x509-ca-cert')
    assert.equal(reply.headers['content-disposition'], 'attachment; filename="doorbell-home-ca.crt"')
    assert.equal(reply.headers['cache-control'], 'no-cache')
    assert.equal(reply.headers['x-doorbell-ca-fingerprint'], tls.fingerprint)
    assert.deepEqual(reply.raw, Buffer.from(tls.caDer))
  })
})

describe('RateLimiter', () => {
  test('allows a burst, then one attempt per refill period', () => {
    let now = 1_000_000
    const limiter = new RateLimiter({ burst: 3, refillMs: 10_000, now: () => now })
    assert.deepEqual([1, 2, 3].map(() => limiter.take('10.0.0.1').ok), [true, true, true])
    assert.deepEqual(limiter.take('10.0.0.1'), { ok: false, retryAfterSeconds: 10 })
    assert.deepEqual(limiter.take('10.0.0.2'), { ok: true }, 'another key has its own bucket')
    now += 4_000
    assert.deepEqual(limiter.take('10.0.0.1'), { ok: false, retryAfterSeconds: 6 })
    now += 6_000
    assert.deepEqual(limiter.take('10.0.0.1'), { ok: true })
    assert.equal(limiter.take('10.0.0.1').ok, false)
    now += 1_000_000
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('10.0.0.1').ok), [true, true, true, false], 'the bucket never holds more than the burst')
  })

  test('remembers at most maxKeys keys, forgetting the least recently used', () => {
    const limiter = new RateLimiter({ burst: 1, refillMs: 60_000, now: () => 0, maxKeys: 2 })
    assert.equal(limiter.take('a').ok, true)
    assert.equal(limiter.take('b').ok, true)
    assert.equal(limiter.take('a').ok, false) // a is now the most recently used
    assert.equal(limiter.take('c').ok, true) // forgets b
    assert.equal(limiter.size, 2)
    assert.equal(limiter.take('a').ok, false, 'a was kept')
    assert.equal(limiter.take('b').ok, true, 'b was forgotten')
    for (let i = 0; i < 100; i++) limiter.take(`k${i}`)
    assert.equal(limiter.size, 2)
  })

  test('refuses settings that would not limit anything', () => {
    assert.throws(() => new RateLimiter({ burst: 0, refillMs: 1000 }), RangeError)
    assert.throws(() => new RateLimiter({ burst: 1, refillMs: 0 }), RangeError)
    assert.throws(() => new RateLimiter({ burst: 1, refillMs: 1000, maxKeys: 0 }), RangeError)
  })
})
