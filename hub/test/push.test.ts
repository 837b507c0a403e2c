import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createECDH, randomBytes } from 'node:crypto'
import jpeg from 'jpeg-js'
import { MAX_PUSH_PICTURE_BASE64, MAX_PUSH_PLAINTEXT_BYTES, MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER, PushSubscriptionInput, type Member } from '@doorbell/core'
import { encryptPush, PushPayloadError } from '../src/push/encrypt'
import { mayBeWoken } from '../src/push/ringPush'
import { checkEndpoint, PushEndpointError } from '../src/push/send'
import { PushSubscriptions } from '../src/push/subscriptions'
import { pushThumbnail } from '../src/push/thumbnail'
import { loadVapidKeys, PushKeyError, vapidAuthorization } from '../src/push/vapid'

/** The hub's Web Push parts on their own (the whole path, decrypted by a stand-in: tests/integration/push.test.ts). */

async function tempDir (t: { after: (f: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'push-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

const subscription = (n: number): PushSubscriptionInput => {
  const ecdh = createECDH('prime256v1')
  return { endpoint: `https://push.example/s/${n}`, keys: { p256dh: ecdh.generateKeys().toString('base64url'), auth: randomBytes(16).toString('base64url') } }
}

test('the VAPID key is made once, 0600, and the same after a restart; a damaged key file is a clear error', async (t) => {
  const dir = await tempDir(t)
  const a = await loadVapidKeys(join(dir, 'push'))
  assert.equal((await stat(join(dir, 'push', 'vapid.json'))).mode & 0o777, 0o600)
  const b = await loadVapidKeys(join(dir, 'push'))
  assert.deepEqual(Buffer.from(b.publicKey), Buffer.from(a.publicKey))
  assert.equal(a.publicKey.length, 65)
  const header = vapidAuthorization('https://push.example/s/1?x=1', a, 1_700_000_000_000, 'mailto:a@example.org')
  const m = /^vapid t=([^.]+)\.([^.]+)\.([^,]+), k=(\S+)$/.exec(header)
  assert.ok(m)
  assert.deepEqual(JSON.parse(Buffer.from(m[2]!, 'base64url').toString()), { aud: 'https://push.example', exp: 1_700_000_000 + 12 * 3600, sub: 'mailto:a@example.org' })
  assert.equal(Buffer.from(m[3]!, 'base64url').length, 64, 'a raw r||s signature')
  await writeFile(join(dir, 'push', 'vapid.json'), '{"kty":"RSA"}')
  await assert.rejects(loadVapidKeys(join(dir, 'push')), (e: Error) => e instanceof PushKeyError && /not a P-256 private key/.test(e.message))
  await writeFile(join(dir, 'push', 'vapid.json'), 'not json')
  await assert.rejects(loadVapidKeys(join(dir, 'push')), PushKeyError)
})

test('subscriptions: kept per member, one per endpoint, at most ten (oldest dropped), removed per member or when gone', async (t) => {
  let clock = 1000
  const subs = new PushSubscriptions(await tempDir(t), () => clock++)
  t.after(() => subs.close())
  const first = subscription(0)
  subs.add('m1', first, 'Phone')
  assert.deepEqual(subs.add('m1', first, 'Phone again'), { count: 1, dropped: 0 }, 'the same screen again replaces itself')
  assert.equal(subs.forMember('m1')[0]!.screen, 'Phone again')
  for (let i = 1; i <= MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER; i++) subs.add('m1', subscription(i), null)
  assert.equal(subs.forMember('m1').length, MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER)
  assert.ok(!subs.forMember('m1').some((s) => s.endpoint === first.endpoint), 'the oldest went')
  subs.add('m2', subscription(99), null)
  assert.equal(subs.remove('m2', subscription(1).endpoint), false, 'another member\'s screen is not theirs to remove')
  assert.equal(subs.removeEndpoint(subscription(99).endpoint), true)
  assert.equal(subs.forMember('m2').length, 0)
  assert.equal(subs.removeMember('m1'), MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER)
  assert.equal(subs.all().length, 0)
})

test('subscriptions: an endpoint another member subscribes is theirs alone (another person signed in on that browser)', async (t) => {
  let clock = 1000
  const subs = new PushSubscriptions(await tempDir(t), () => clock++)
  t.after(() => subs.close())
  const browser = subscription(0)
  subs.add('x', browser, 'Hall')
  subs.add('x', subscription(1), 'Phone')
  assert.deepEqual(subs.add('y', browser, 'Hall (night)'), { count: 1, dropped: 0 })
  assert.deepEqual(subs.all().filter((s) => s.endpoint === browser.endpoint).map((s) => [s.memberId, s.screen]), [['y', 'Hall (night)']], 'one row, the new member\'s')
  assert.deepEqual(subs.forMember('x').map((s) => s.screen), ['Phone'], 'the first member keeps their other screens')
  assert.equal(subs.remove('x', browser.endpoint), false, 'no longer the first member\'s to turn off')
  assert.equal(subs.forMember('y').length, 1)
})

test('the subscription schema refuses what a browser never sends', () => {
  const good = subscription(1)
  assert.ok(PushSubscriptionInput.safeParse(good).success)
  assert.ok(PushSubscriptionInput.safeParse({ ...good, expirationTime: null }).success)
  const bad = [
    { ...good, endpoint: 'ftp://x/y' },
    { ...good, keys: { ...good.keys, p256dh: Buffer.alloc(65, 7).toString('base64url') } },
    { ...good, keys: { ...good.keys, p256dh: Buffer.alloc(33, 2).toString('base64url') } },
    { ...good, keys: { ...good.keys, auth: Buffer.alloc(15).toString('base64url') } },
    { ...good, keys: { ...good.keys, auth: 'not base64url!' } },
    { endpoint: good.endpoint },
    { ...good, endpoint: `https://x/${'a'.repeat(2100)}` }
  ]
  for (const b of bad) assert.equal(PushSubscriptionInput.safeParse(b).success, false, JSON.stringify(b).slice(0, 80))
})

test('the hub sends only to https, or to http on loopback when the config allows it', () => {
  checkEndpoint('https://fcm.googleapis.com/fcm/send/abc', false)
  checkEndpoint('http://127.0.0.1:9/push/x', true)
  for (const [url, allow] of [['http://127.0.0.1:9/push/x', false], ['http://192.168.1.10/push', true], ['https://user:pw@push.example/x', false], ['file:///etc/passwd', true], ['https://10.1.2.3/push', true], ['https://169.254.169.254/latest', false], ['https://[fe80::1]/p', false], ['https://[::ffff:192.168.0.1]/p', false], ['https://localhost/p', true], ['https://[::1]/p', false]] as const) {
    assert.throws(() => { checkEndpoint(url, allow) }, PushEndpointError, url)
  }
})

test('a payload over one record is refused before anything is sent; the body is at most 4096 bytes', () => {
  const s = subscription(1)
  const key = Buffer.from(s.keys.p256dh, 'base64url')
  const auth = Buffer.from(s.keys.auth, 'base64url')
  assert.equal(encryptPush(new Uint8Array(MAX_PUSH_PLAINTEXT_BYTES), key, auth).length, 4096)
  assert.throws(() => encryptPush(new Uint8Array(MAX_PUSH_PLAINTEXT_BYTES + 1), key, auth), PushPayloadError)
})

test('the push picture: a small copy of the ring\'s JPEG within the push budget, none from garbage', () => {
  // Noise is the hardest case for a JPEG's size.
  const w = 640
  const h = 480
  const data = new Uint8Array(w * h * 4)
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24
  const big = jpeg.encode({ width: w, height: h, data }, 80).data
  const small = pushThumbnail(big)
  assert.ok(small === null || small.length <= MAX_PUSH_PICTURE_BASE64)
  // A picture like a doorway's (smooth): it fits, and is still a 96-px-wide JPEG.
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const i = (y * w + x) * 4; data[i] = x * 255 / w; data[i + 1] = y * 255 / h; data[i + 2] = 128; data[i + 3] = 255 }
  const thumb = pushThumbnail(jpeg.encode({ width: w, height: h, data }, 80).data)
  assert.ok(thumb !== null && thumb.length <= MAX_PUSH_PICTURE_BASE64)
  const back = jpeg.decode(Buffer.from(thumb, 'base64'))
  assert.deepEqual([back.width, back.height], [96, 72])
  assert.equal(pushThumbnail(Buffer.from('not a jpeg')), null)
})

test('who a ring wakes: the broker\'s rule (operators their zones), never a removed or expired member, a device or an integration', () => {
  const member = (o: Partial<Member>): Member => ({ id: 'm', kind: 'viewer', subject: 's', name: 'n', role: 'resident', door: false, zones: [], createdAt: 0, expiresAt: null, revokedAt: null, ...o })
  const device = member({ kind: 'device', role: null, zones: ['porch'] })
  assert.equal(mayBeWoken(member({}), device, 10), true)
  assert.equal(mayBeWoken(member({ role: 'guest' }), device, 10), true)
  assert.equal(mayBeWoken(member({ role: 'operator', zones: ['porch'] }), device, 10), true)
  assert.equal(mayBeWoken(member({ role: 'operator', zones: ['gate'] }), device, 10), false)
  assert.equal(mayBeWoken(member({ revokedAt: 5 }), device, 10), false)
  assert.equal(mayBeWoken(member({ expiresAt: 5 }), device, 10), false)
  assert.equal(mayBeWoken(device, device, 10), false)
  assert.equal(mayBeWoken(member({ kind: 'integration', role: null }), device, 10), false)
})
