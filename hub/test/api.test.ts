import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { request as requestTls } from 'node:https'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WebSocket } from 'ws'
import {
  IceSettings, IntegrationCredential, InviteResponse, PairResponse, ZonesResponse, exportPublicKey, generateSigningKey, memoryLogger, newId,
  type HubConfigInput, type InviteRequest, type Role
} from '@doorbell/core'
import { startHub, MQTT_WS_PATH, type Hub } from '../src/hub'

/**
 * The hub's API and its edges against a real hub (aedes, node:http, node:sqlite), plain HTTP on
 * 127.0.0.1: ICE settings with TURN REST credentials, zones, the reverse-proxy headers, and the
 * CONNACK a rate-limited sign-in gets.
 */

const TURN_SECRET = 'a-secret-shared-with-coturn-0123456789'
const TTL = 600

interface Reply { status: number, headers: IncomingHttpHeaders, body: string, json: unknown }

/** One request on its own connection, any header (fetch will not send Origin or X-Forwarded-*). */
async function send (hub: Hub, path: string, o: { method?: string, token?: string, headers?: Record<string, string>, body?: unknown } = {}): Promise<Reply> {
  const body = o.body === undefined ? undefined : JSON.stringify(o.body)
  const headers: Record<string, string> = {
    ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
    ...o.headers
  }
  return await new Promise((resolve, reject) => {
    const url = new URL(path.replace(/^\//, ''), hub.url)
    const opts = { method: o.method ?? 'GET', headers, agent: false as const }
    // Over HTTPS (tls 'auto'), trusting the hub's own CA and nothing else.
    const req = (url.protocol === 'https:' ? requestTls(url, { ...opts, ca: hub.tls!.caCert }, onReply) : request(url, opts, onReply))
    function onReply (res: IncomingMessage): void {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: unknown = null
        try { json = JSON.parse(text) } catch { /* not JSON */ }
        resolve({ status: res.statusCode!, headers: res.headers, body: text, json })
      })
    }
    req.on('error', reject)
    req.end(body)
  })
}

interface Paired { memberId: string, token: string, subject: string }

async function pair (hub: Hub, code: string, body: Record<string, unknown>): Promise<Paired> {
  const r = await send(hub, '/api/pair', { method: 'POST', body: { code, ...body } })
  assert.equal(r.status, 200, r.body)
  const paired = PairResponse.parse(r.json)
  return { memberId: paired.member.id, token: paired.token, subject: paired.member.subject }
}

async function pairViewer (hub: Hub, role: Role, o: { zones?: string[], name?: string } = {}): Promise<Paired> {
  const code = role === 'owner'
    ? hub.trust.setupCode()!.code
    : (await hub.trust.invite('console', { kind: 'viewer', role, zones: o.zones ?? [] }, hub.url)).code
  const keys = await generateSigningKey(false)
  return await pair(hub, code, { kind: 'viewer', id: newId('v'), name: o.name ?? role, key: await exportPublicKey(keys.publicKey) })
}

async function pairDevice (hub: Hub, deviceId: string, name: string, zone?: string): Promise<Paired> {
  const req: InviteRequest = zone === undefined ? { kind: 'device', deviceId } : { kind: 'device', deviceId, zones: [zone] }
  const { code } = await hub.trust.invite('console', req, hub.url)
  return await pair(hub, code, { kind: 'device', id: deviceId, name })
}

/** A hub of its own (own data folder, free ports, no mesh), stopped and removed by `stop`. */
async function testHub (extra: Partial<HubConfigInput> = {}): Promise<{ hub: Hub, stop: () => Promise<void>, log: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-api-'))
  const log = memoryLogger()
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false }, ...extra }, { log })
  return { hub, stop: async () => { await hub.stop(); await rm(dir, { recursive: true, force: true }) }, log: log.lines }
}

// ---------------------------------------------------------------- MQTT 3.1.1 by hand

/** A CONNECT packet (MQTT 3.1.1 §3.1): clean session, user name and password, keep-alive 60 s. */
function connectPacket (clientId: string, username: string, password: string): Buffer {
  const str = (s: string): Buffer => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]) }
  const rest = Buffer.concat([str('MQTT'), Buffer.from([4, 0x80 | 0x40 | 0x02, 0, 60]), str(clientId), str(username), str(password)])
  const length: number[] = []
  let n = rest.length
  do { let byte = n % 128; n = Math.floor(n / 128); if (n > 0) byte |= 0x80; length.push(byte) } while (n > 0)
  return Buffer.concat([Buffer.from([0x10, ...length]), rest])
}

/** The return code of a CONNACK (§3.2: 0x20 0x02 flags code). */
function connackCode (data: Buffer): number {
  assert.deepEqual([...data.subarray(0, 2)], [0x20, 0x02], `a CONNACK, not ${data.toString('hex')}`)
  return data[3]!
}

/** Signs in over MQTT/TCP and answers the CONNACK's return code. */
async function signInTcp (hub: Hub, clientId: string, username: string, password: string): Promise<number> {
  const url = new URL(hub.mqttUrl)
  return await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname)
    let got = Buffer.alloc(0)
    socket.on('connect', () => socket.write(connectPacket(clientId, username, password)))
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d])
      if (got.length >= 4) { socket.destroy(); resolve(got) }
    })
    socket.on('error', reject)
    socket.on('close', () => reject(new Error(`closed before a CONNACK (got ${got.toString('hex')})`)))
  }).then(connackCode)
}

/**
 * Opens MQTT over WebSocket as a browser would (its Origin, and what a proxy adds), then signs in:
 * the CONNACK code, or 'refused' when the hub closed the socket at the upgrade.
 */
async function signInWs (hub: Hub, who: Paired, headers: Record<string, string>): Promise<number | 'refused'> {
  const ws = new WebSocket(hub.wsUrl, 'mqtt', { headers })
  const got = await new Promise<Buffer | 'refused'>((resolve) => {
    let bytes = Buffer.alloc(0)
    ws.on('open', () => ws.send(connectPacket(`viewer-${who.subject}-${newId().slice(0, 6)}`, who.memberId, who.token)))
    // The broker's stream may send the CONNACK's four bytes in more than one message.
    ws.on('message', (data: Buffer) => {
      bytes = Buffer.concat([bytes, data])
      if (bytes.length >= 4) { ws.terminate(); resolve(bytes) }
    })
    ws.on('error', () => { resolve('refused') })
    ws.on('close', () => { resolve('refused') })
  })
  return got === 'refused' ? got : connackCode(got)
}

// ---------------------------------------------------------------- /api/ice

describe('GET /api/ice', () => {
  test('without TURN: the configured servers as they are, the policy, no expiry; never cached', async (t) => {
    const { hub, stop } = await testHub({ iceServers: [{ urls: 'stun:stun.lan:3478' }, { urls: ['turn:turn.lan:3478'], username: 'u', credential: 'c' }] })
    t.after(stop)
    const owner = await pairViewer(hub, 'owner')
    const r = await send(hub, '/api/ice', { token: owner.token })
    assert.equal(r.status, 200, r.body)
    assert.equal(r.headers['cache-control'], 'no-store')
    assert.deepEqual(IceSettings.parse(r.json), {
      iceServers: [{ urls: 'stun:stun.lan:3478' }, { urls: ['turn:turn.lan:3478'], username: 'u', credential: 'c' }],
      iceTransportPolicy: 'all',
      expiresAt: null
    })
  })

  describe('with TURN REST and relay only', () => {
    let hub: Hub
    let stop: () => Promise<void>
    before(async () => {
      ({ hub, stop } = await testHub({
        iceServers: [{ urls: 'stun:stun.lan:3478' }],
        turn: { urls: ['turn:127.0.0.1:3478?transport=udp', 'turns:turn.lan:5349'], secret: TURN_SECRET, ttlSeconds: TTL },
        iceTransportPolicy: 'relay'
      }))
    })
    after(async () => { await stop() })

    /** Fetches /api/ice as `who` and checks the TURN credential the way coturn's use-auth-secret does. */
    const fetchAndVerify = async (who: Paired): Promise<IceSettings> => {
      const from = Date.now()
      const r = await send(hub, '/api/ice', { token: who.token })
      const to = Date.now()
      assert.equal(r.status, 200, r.body)
      assert.equal(r.headers['cache-control'], 'no-store')
      assert.ok(!r.body.includes(TURN_SECRET), 'the secret itself never leaves the hub')
      const ice = IceSettings.parse(r.json)
      assert.equal(ice.iceTransportPolicy, 'relay')
      assert.deepEqual(ice.iceServers[0], { urls: 'stun:stun.lan:3478' }, 'the static servers come first, unchanged')
      const turn = ice.iceServers[1]
      assert.ok(turn, 'a TURN server is added')
      assert.deepEqual(turn.urls, ['turn:127.0.0.1:3478?transport=udp', 'turns:turn.lan:5349'])
      const [expiry, user] = (turn.username ?? '').split(':')
      assert.equal(user, who.memberId, 'the credential names the member')
      const seconds = Number(expiry)
      assert.ok(seconds >= Math.floor(from / 1000) + TTL && seconds <= Math.floor(to / 1000) + TTL, `expiry ${seconds} is now + ${TTL} s`)
      assert.equal(ice.expiresAt, seconds * 1000)
      assert.equal(turn.credential, createHmac('sha1', TURN_SECRET).update(turn.username!).digest('base64'), 'HMAC-SHA1 of the user name with the shared secret')
      return ice
    }

    test('every viewer role gets a credential of its own that coturn would accept', async () => {
      const owner = await pairViewer(hub, 'owner')
      await fetchAndVerify(owner)
      for (const role of ['resident', 'guest', 'operator'] as const) await fetchAndVerify(await pairViewer(hub, role, role === 'operator' ? { zones: ['CBD-NORTH'] } : {}))
    })

    test('a device member (a Node doorbell or a browser camera node) gets one too', async () => {
      const camera = await pairDevice(hub, 'cam-browser', 'Browser camera', 'CBD-NORTH')
      await fetchAndVerify(camera)
    })

    test('no token, a bad token or a removed member: 401 and no credential', async () => {
      const resident = await pairViewer(hub, 'resident')
      for (const token of [undefined, 'nonsense', `${resident.memberId}.${'A'.repeat(43)}`]) {
        const r = await send(hub, '/api/ice', token === undefined ? {} : { token })
        assert.equal(r.status, 401, r.body)
        assert.ok(!r.body.includes('credential'), r.body)
      }
      const admin = hub.trust.members().find((m) => m.role === 'owner')!
      await hub.trust.revoke(admin, resident.memberId)
      const r = await send(hub, '/api/ice', { token: resident.token })
      assert.equal(r.status, 401)
      assert.match((r.json as { error: string }).error, /no longer a member/)
    })
  })
})

// ---------------------------------------------------------------- /api/zones

describe('GET /api/zones', () => {
  let hub: Hub
  let stop: () => Promise<void>
  let owner: Paired
  let north: Paired
  let empty: Paired
  let gate: Paired

  const zones = async (who: Paired): Promise<ZonesResponse> => {
    const r = await send(hub, '/api/zones', { token: who.token })
    assert.equal(r.status, 200, r.body)
    return ZonesResponse.parse(r.json)
  }

  before(async () => {
    ({ hub, stop } = await testHub())
    owner = await pairViewer(hub, 'owner')
    gate = await pairDevice(hub, 'cam-gate', 'North gate', 'CBD-NORTH')
    await pairDevice(hub, 'cam-alley', 'Alley', 'CBD-NORTH')
    await pairDevice(hub, 'cam-south', 'South junction', 'CBD-SOUTH')
    await pairDevice(hub, 'front-door', 'Front door')
    north = await pairViewer(hub, 'operator', { zones: ['CBD-NORTH'] })
    empty = await pairViewer(hub, 'operator', { zones: ['CBD-EMPTY'] })
  })
  after(async () => { await stop() })

  test('the owner sees every zone (devices\' and granted ones), sorted by zone then device name', async () => {
    assert.deepEqual(await zones(owner), {
      zones: [
        { zone: 'CBD-EMPTY', devices: [] },
        { zone: 'CBD-NORTH', devices: [{ deviceId: 'cam-alley', name: 'Alley' }, { deviceId: 'cam-gate', name: 'North gate' }] },
        { zone: 'CBD-SOUTH', devices: [{ deviceId: 'cam-south', name: 'South junction' }] },
        { zone: 'home', devices: [{ deviceId: 'front-door', name: 'Front door' }] }
      ]
    })
  })

  test('an operator sees exactly the zones granted, a zone without devices yet as an empty list', async () => {
    assert.deepEqual(await zones(north), {
      zones: [{ zone: 'CBD-NORTH', devices: [{ deviceId: 'cam-alley', name: 'Alley' }, { deviceId: 'cam-gate', name: 'North gate' }] }]
    })
    assert.deepEqual(await zones(empty), { zones: [{ zone: 'CBD-EMPTY', devices: [] }] })
  })

  test('residents, guests and devices are refused with 403 and a reason; no token is 401', async () => {
    for (const who of [await pairViewer(hub, 'resident'), await pairViewer(hub, 'guest'), gate]) {
      const r = await send(hub, '/api/zones', { token: who.token })
      assert.equal(r.status, 403, r.body)
      assert.match((r.json as { error: string }).error, /zones are for the owner and operators/)
    }
    assert.equal((await send(hub, '/api/zones')).status, 401)
  })

  test('a removed device disappears from its zone', async () => {
    const r = await send(hub, `/api/members/${gate.memberId}`, { method: 'DELETE', token: owner.token })
    assert.equal(r.status, 200, r.body)
    assert.deepEqual(await zones(north), { zones: [{ zone: 'CBD-NORTH', devices: [{ deviceId: 'cam-alley', name: 'Alley' }] }] })
    const all = await zones(owner)
    assert.ok(!all.zones.some((z) => z.devices.some((d) => d.deviceId === 'cam-gate')))
  })
})

describe('POST /api/integrations', () => {
  test('the owner gets Home Assistant\'s credential once; anyone else 403, a bad body 400; the credential itself is refused by the API', async (t) => {
    const { hub, stop } = await testHub({ homeAssistant: { enabled: true, discoveryPrefix: 'ha-test' } })
    t.after(stop)
    const owner = await pairViewer(hub, 'owner')
    const resident = await pairViewer(hub, 'resident')
    const r = await send(hub, '/api/integrations', { method: 'POST', token: owner.token, body: {} })
    assert.equal(r.status, 200, r.body)
    const cred = IntegrationCredential.parse(r.json)
    assert.deepEqual([cred.member.kind, cred.member.name, cred.member.door, cred.member.role], ['integration', 'Home Assistant', false, null])
    assert.deepEqual([cred.username, cred.clientId, cred.discoveryPrefix, cred.enabled, cred.tls], [cred.member.id, `integration-${cred.member.subject}`, 'ha-test', true, false])
    assert.equal(cred.mqttPort, Number(new URL(hub.mqttUrl).port), 'the port the broker got, not the config\'s 0')
    assert.ok(hub.trust.authenticate(cred.username, cred.password), 'the password is the MQTT password')
    assert.equal((await send(hub, '/api/integrations', { method: 'POST', token: resident.token, body: {} })).status, 403)
    assert.equal((await send(hub, '/api/integrations', { method: 'POST', token: owner.token, body: { name: 'HA', door: true } })).status, 400, 'no door right to ask for')
    assert.equal((await send(hub, '/api/integrations', { method: 'POST', body: {} })).status, 401)
    for (const path of ['/api/me', '/api/ice', '/api/devices']) {
      const refused = await send(hub, path, { token: cred.password })
      assert.equal(refused.status, 403, `${path}: ${refused.body}`)
      assert.match((refused.json as { error: string }).error, /broker only/)
    }
  })
})

// ---------------------------------------------------------------- trustProxy

const PUBLIC = 'doorbell.example.org:8443'
const PROXIED = { 'x-forwarded-proto': 'https', 'x-forwarded-host': PUBLIC }

describe('behind a reverse proxy (trustProxy)', () => {
  let hub: Hub
  let stop: () => Promise<void>
  let owner: Paired
  let direct: string
  before(async () => {
    ({ hub, stop } = await testHub({ trustProxy: true }))
    owner = await pairViewer(hub, 'owner')
    direct = new URL(hub.url).origin
  })
  after(async () => { await stop() })

  test('the MQTT WebSocket is open to the page of the proxy\'s origin, not to the hub\'s own address', async () => {
    assert.equal(await signInWs(hub, owner, { origin: `https://${PUBLIC}`, ...PROXIED }), 0)
    assert.equal(await signInWs(hub, owner, { origin: direct, ...PROXIED }), 'refused')
    assert.equal(await signInWs(hub, owner, { origin: `http://${PUBLIC}`, ...PROXIED }), 'refused', 'the scheme counts too')
    // A request the proxy did not annotate is judged by its Host, as without a proxy.
    assert.equal(await signInWs(hub, owner, { origin: direct }), 0)
  })

  test('proxy headers that are lists or nonsense make no origin: the page is refused', async () => {
    for (const bad of [
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': `${PUBLIC}, evil.example` },
      { 'x-forwarded-proto': 'gopher', 'x-forwarded-host': PUBLIC },
      { 'x-forwarded-proto': 'https', 'x-forwarded-host': `${PUBLIC}/path` }
    ]) {
      assert.equal(await signInWs(hub, owner, { origin: `https://${PUBLIC}`, ...bad }), 'refused', JSON.stringify(bad))
    }
  })

  test('invite URLs point at the proxy\'s origin; writes from that page are allowed', async () => {
    const r = await send(hub, '/api/invites', { method: 'POST', token: owner.token, headers: { origin: `https://${PUBLIC}`, ...PROXIED }, body: { kind: 'viewer', role: 'resident' } })
    assert.equal(r.status, 200, r.body)
    assert.match(InviteResponse.parse(r.json).url, new RegExp(`^https://${PUBLIC.replace(/\./g, '\\.')}/pair#code=[A-Z0-9-]+$`))
    const foreign = await send(hub, '/api/invites', { method: 'POST', token: owner.token, headers: { origin: direct, ...PROXIED }, body: { kind: 'viewer', role: 'resident' } })
    assert.equal(foreign.status, 403, 'the hub\'s own address is another origin than the one the browser uses')
  })

  test('HSTS when the browser came over HTTPS, not over HTTP', async () => {
    assert.equal((await send(hub, '/api/info', { headers: PROXIED })).headers['strict-transport-security'], 'max-age=31536000')
    assert.equal((await send(hub, '/api/info', { headers: { ...PROXIED, 'x-forwarded-proto': 'http' } })).headers['strict-transport-security'], undefined)
    assert.equal((await send(hub, '/api/info')).headers['strict-transport-security'], undefined)
  })
})

describe('without trustProxy, forged proxy headers do nothing', () => {
  let hub: Hub
  let stop: () => Promise<void>
  let owner: Paired
  let direct: string
  before(async () => {
    ({ hub, stop } = await testHub())
    owner = await pairViewer(hub, 'owner')
    direct = new URL(hub.url).origin
  })
  after(async () => { await stop() })

  test('the WebSocket stays closed to the forged origin and open to the hub\'s own', async () => {
    assert.equal(await signInWs(hub, owner, { origin: `https://${PUBLIC}`, ...PROXIED }), 'refused')
    assert.equal(await signInWs(hub, owner, { origin: direct, ...PROXIED }), 0)
  })

  test('invite URLs keep the Host the request came to; a write from the forged origin is refused', async () => {
    const r = await send(hub, '/api/invites', { method: 'POST', token: owner.token, headers: PROXIED, body: { kind: 'viewer', role: 'guest' } })
    assert.equal(r.status, 200, r.body)
    assert.ok(InviteResponse.parse(r.json).url.startsWith(`${direct}/pair#code=`), InviteResponse.parse(r.json).url)
    const forged = await send(hub, '/api/invites', { method: 'POST', token: owner.token, headers: { origin: `https://${PUBLIC}`, ...PROXIED }, body: { kind: 'viewer', role: 'guest' } })
    assert.equal(forged.status, 403)
  })

  test('no HSTS over plain HTTP, whatever X-Forwarded-Proto says', async () => {
    assert.equal((await send(hub, '/api/info', { headers: PROXIED })).headers['strict-transport-security'], undefined)
  })
})

// ---------------------------------------------------------------- sign-in rate limit

test('a sign-in refused by the failed-attempt limit answers CONNACK 3 (try later), not 4 or 5 (removed)', async (t) => {
  const { hub, stop } = await testHub()
  t.after(stop)
  const owner = await pairViewer(hub, 'owner')
  const wrong = `${owner.memberId}.${'B'.repeat(43)}`
  const codes: number[] = []
  // 20 failures are allowed at once, then one more a second: the limit shows within a few dozen tries.
  for (let i = 0; i < 200 && (codes.length === 0 || codes.at(-1) === 4); i++) {
    codes.push(await signInTcp(hub, `viewer-${owner.subject}-t${i}`, owner.memberId, wrong))
  }
  assert.deepEqual(codes.slice(0, 20), Array(20).fill(4), 'wrong credentials: 4 (bad user name or password)')
  assert.equal(codes.at(-1), 3, `then the limit: 3 (server unavailable), got ${codes.join(',')}`)
})

// ---------------------------------------------------------------- client addresses behind the proxy (X-Real-IP)

/** A well-formed code no invite has: 401 while the address has tries left, 429 after. */
const WRONG_CODE = { kind: 'device', code: 'ABCDEFGHJK', id: 'cam-stranger', name: 'Stranger' }
const tryPairing = async (hub: Hub, headers: Record<string, string> = {}): Promise<number> =>
  (await send(hub, '/api/pair', { method: 'POST', headers, body: WRONG_CODE })).status
const fromA = { 'x-real-ip': '203.0.113.7' }
const fromB = { 'x-real-ip': '2001:db8::42' }

describe('behind the proxy, rate limits key on X-Real-IP', () => {
  test('two clients have separate pairing allowances: the 11th try from A is 429, B still gets 401', async (t) => {
    const { hub, stop } = await testHub({ trustProxy: true })
    t.after(stop)
    for (let i = 0; i < 10; i++) assert.equal(await tryPairing(hub, fromA), 401, `try ${i + 1} from A`)
    const limited = await send(hub, '/api/pair', { method: 'POST', headers: fromA, body: WRONG_CODE })
    assert.equal(limited.status, 429, limited.body)
    assert.ok(Number(limited.headers['retry-after']) >= 1)
    assert.equal(await tryPairing(hub, fromB), 401, 'B has an allowance of its own')
    assert.equal(await tryPairing(hub), 401, 'so has the proxy itself (a request without X-Real-IP)')
    assert.equal(await tryPairing(hub, fromA), 429, 'A is still limited')
  })

  test('an X-Real-IP that is not one address is ignored: the socket\'s address is used, and that is logged once', async (t) => {
    const { hub, stop, log } = await testHub({ trustProxy: true })
    t.after(stop)
    const bad = ['not-an-ip', '203.0.113.7, 198.51.100.1', '', '203.0.113.300', 'localhost', '[2001:db8::1]', '203.0.113.7:5555']
    for (let i = 0; i < 10; i++) assert.equal(await tryPairing(hub, { 'x-real-ip': bad[i % bad.length]! }), 401)
    assert.equal(await tryPairing(hub), 429, 'the ten bad headers spent the socket\'s allowance')
    assert.equal(await tryPairing(hub, { 'x-real-ip': 'still-not-an-ip' }), 429)
    assert.equal(await tryPairing(hub, fromA), 401, 'a valid X-Real-IP has its own')
    const warned = log.filter((l) => l.includes('X-Real-IP that is not one IP address'))
    assert.equal(warned.length, 1, `logged once, not per request:\n${warned.join('\n')}`)
    assert.equal(log.filter((l) => l.includes('has no X-Real-IP')).length, 1, 'a missing header too, once')
  })

  test('failed bearer sign-ins: A at its limit (429) does not lock out B', async (t) => {
    const { hub, stop } = await testHub({ trustProxy: true })
    t.after(stop)
    const owner = await pairViewer(hub, 'owner')
    const statuses: number[] = []
    // 20 failures at once, then one a second: the limit shows within a few dozen tries.
    for (let i = 0; i < 200 && (statuses.length === 0 || statuses.at(-1) === 401); i++) {
      statuses.push((await send(hub, '/api/me', { token: `${owner.memberId}.${'C'.repeat(43)}`, headers: fromA })).status)
    }
    assert.equal(statuses.at(-1), 429, statuses.join(','))
    assert.equal((await send(hub, '/api/me', { token: owner.token, headers: fromB })).status, 200)
  })

  test('MQTT over WebSocket keys on X-Real-IP; MQTT over TCP keeps its socket\'s address', async (t) => {
    const { hub, stop } = await testHub({ trustProxy: true })
    t.after(stop)
    const owner = await pairViewer(hub, 'owner')
    const wrong = { ...owner, token: `${owner.memberId}.${'D'.repeat(43)}` }
    const codes: Array<number | 'refused'> = []
    for (let i = 0; i < 200 && (codes.length === 0 || codes.at(-1) === 4); i++) codes.push(await signInWs(hub, wrong, fromA))
    assert.equal(codes.at(-1), 3, `A reaches the limit: CONNACK 3, got ${codes.join(',')}`)
    assert.equal(await signInWs(hub, owner, fromB), 0, 'B signs in')
    assert.equal(await signInTcp(hub, `viewer-${owner.subject}-tcp`, owner.memberId, owner.token), 0, 'TCP (127.0.0.1) is not A')
  })
})

describe('without trustProxy, X-Real-IP changes nothing', () => {
  test('every request from the socket shares its allowance, whatever X-Real-IP says', async (t) => {
    const { hub, stop, log } = await testHub()
    t.after(stop)
    for (let i = 0; i < 10; i++) assert.equal(await tryPairing(hub, { 'x-real-ip': `203.0.113.${i + 1}` }), 401)
    assert.equal(await tryPairing(hub, fromB), 429, 'a new X-Real-IP is no new allowance')
    assert.equal(await tryPairing(hub), 429)
    assert.ok(!log.some((l) => l.includes('X-Real-IP')), 'and nothing about it is logged')
  })
})

// ---------------------------------------------------------------- the CA in invite URLs

describe('invite URLs and the home CA (tls auto)', () => {
  const invite = async (hub: Hub, token: string, headers: Record<string, string> = {}): Promise<string> => {
    const r = await send(hub, '/api/invites', { method: 'POST', token, headers, body: { kind: 'device', deviceId: `cam-${newId().slice(0, 6)}` } })
    assert.equal(r.status, 200, r.body)
    return InviteResponse.parse(r.json).url
  }

  test('reached directly: the URL names the hub\'s CA by its fingerprint', async (t) => {
    const { hub, stop } = await testHub({ tls: 'auto' })
    t.after(stop)
    const owner = await pairViewer(hub, 'owner')
    const url = await invite(hub, owner.token)
    assert.ok(url.startsWith(`${new URL(hub.url).origin}/pair#code=`), url)
    assert.ok(url.endsWith(`&ca=${hub.tls!.fingerprint}`), url)
  })

  test('behind the proxy (its own certificate): no ca=, the device trusts its CA store', async (t) => {
    const { hub, stop } = await testHub({ tls: 'auto', trustProxy: true })
    t.after(stop)
    const owner = await pairViewer(hub, 'owner')
    for (const headers of [PROXIED, {}]) {
      const url = await invite(hub, owner.token, headers)
      assert.doesNotMatch(url, /[#&]ca=/, url)
      assert.match(url, /\/pair#code=[A-Z0-9]+$/, url)
    }
    assert.ok((await invite(hub, owner.token, PROXIED)).startsWith(`https://${PUBLIC}/pair#code=`))
  })
})
