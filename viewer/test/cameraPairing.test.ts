import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PairRequest, exportPublicKey, generateSigningKey, type Member, type PairResponse } from '@doorbell/core'
import { HubApi } from '../src/lib/api'
import {
  CAMERA_NODE_KEY, checkDeviceId, deviceIdFromName, deviceIdFromUrl, forgetCameraPairing, loadCameraPairing,
  pairCameraNode, pairingFrom, parseCameraPairing, saveCameraPairing, type CameraNodePairing
} from '../src/camera/pairing'

/** The Web Storage interface over a Map: what localStorage is, minus the browser. */
class MemoryStorage implements Storage {
  private readonly items = new Map<string, string>()
  get length (): number { return this.items.size }
  clear (): void { this.items.clear() }
  getItem (key: string): string | null { return this.items.get(key) ?? null }
  key (index: number): string | null { return [...this.items.keys()][index] ?? null }
  removeItem (key: string): void { this.items.delete(key) }
  setItem (key: string, value: string): void { this.items.set(key, String(value)) }
}

const TOKEN = `m-cam.${'A'.repeat(43)}`
const homeKey = async (): Promise<string> => await exportPublicKey((await generateSigningKey(true)).publicKey)

const member = (o: Partial<Member> = {}): Member => ({
  id: 'm-cam', kind: 'device', subject: 'junction-cam-3', name: 'Junction cam 3', role: null, door: false,
  zones: ['CBD-TRAFFIC-01'], createdAt: 1, expiresAt: null, revokedAt: null, ...o
})

const reply = async (m: Member = member()): Promise<PairResponse> => ({
  homeId: 'home', hubName: 'Test home', member: m, token: TOKEN, credential: null, homeKey: await homeKey()
})

test('a camera id comes from its name: lower case, letters and digits, dashes between', () => {
  assert.equal(deviceIdFromName('Junction cam 3'), 'junction-cam-3')
  assert.equal(deviceIdFromName('  Café  — Nord/Ouest #2 '), 'cafe-nord-ouest-2')
  assert.equal(deviceIdFromName('CBD_TRAFFIC'), 'cbd-traffic')
  assert.equal(deviceIdFromName('***'), '')
  const long = deviceIdFromName('a b '.repeat(40))
  assert.ok(long.length <= 64 && !long.endsWith('-'), long)
  assert.ok(checkDeviceId(long).ok)
})

test('a camera id is checked before pairing, with a message that says what it must be', () => {
  assert.deepEqual(checkDeviceId(' junction-cam-3 '), { ok: true, deviceId: 'junction-cam-3' })
  for (const bad of ['', 'Junction', 'cam_3', '-cam', 'cam-', 'cam/3', 'x'.repeat(65), 'cam 3']) {
    const r = checkDeviceId(bad)
    assert.equal(r.ok, false, bad)
    assert.match(!r.ok ? r.message : '', /lower-case letters, digits and dashes/)
  }
})

test('an invitation link may name the camera id next to the code; a bad one is ignored', () => {
  assert.equal(deviceIdFromUrl({ hash: '#code=ABCDEFGHJK&device=junction-cam-3' }), 'junction-cam-3')
  assert.equal(deviceIdFromUrl({ hash: '#code=ABCDEFGHJK' }), null)
  assert.equal(deviceIdFromUrl({ hash: '#device=../../etc' }), null)
})

test('the hub\'s answer becomes the stored pairing, with the zone of the invite', async () => {
  const r = await reply()
  const p = pairingFrom(r, 'junction-cam-3')
  assert.deepEqual(p, { homeId: 'home', memberId: 'm-cam', token: TOKEN, homeKey: r.homeKey, deviceId: 'junction-cam-3', name: 'Junction cam 3', zone: 'CBD-TRAFFIC-01' })
})

test('an answer that is not this camera\'s device pairing is refused, and nothing is kept', async () => {
  const r = await reply()
  assert.throws(() => pairingFrom({ ...r, member: member({ kind: 'viewer', role: 'resident' }) }, 'junction-cam-3'), /other than this camera/)
  assert.throws(() => pairingFrom({ ...r, member: member({ subject: 'another-cam' }) }, 'junction-cam-3'), /other than this camera/)
  assert.throws(() => pairingFrom({ ...r, member: member({ zones: [] }) }, 'junction-cam-3'), /no zone/)
})

test('pairing posts a device pairing request (kind device) with the camera id and name', async () => {
  const r = await reply()
  const seen: unknown[] = []
  const api = new HubApi({
    base: 'https://hub.local',
    fetch: async (url, init) => {
      assert.equal(String(url), 'https://hub.local/api/pair')
      assert.equal((init?.headers as Record<string, string>).Authorization, undefined)
      seen.push(JSON.parse(String(init?.body)))
      return new Response(JSON.stringify(r), { status: 200, headers: { 'Content-Type': 'application/json' } })
    }
  })
  const p = await pairCameraNode({ api, code: 'abcde-fghjk', deviceId: 'junction-cam-3', name: 'Junction cam 3' })
  assert.deepEqual(seen, [{ kind: 'device', code: 'ABCDEFGHJK', id: 'junction-cam-3', name: 'Junction cam 3' }])
  assert.ok(PairRequest.safeParse(seen[0]).success)
  assert.equal(p.zone, 'CBD-TRAFFIC-01')
})

test('the pairing is kept under doorbell.cameraNode; a damaged record is forgotten, not used', async () => {
  const storage = new MemoryStorage()
  assert.equal(loadCameraPairing(storage), null)
  const p: CameraNodePairing = pairingFrom(await reply(), 'junction-cam-3')
  saveCameraPairing(storage, p)
  assert.deepEqual(JSON.parse(storage.getItem(CAMERA_NODE_KEY)!), p)
  assert.deepEqual(loadCameraPairing(storage), p)

  for (const bad of ['{', 'null', '[]', JSON.stringify({ ...p, token: 'nope' }), JSON.stringify({ ...p, zone: 'a/b' }), JSON.stringify({ ...p, extra: 1 }), JSON.stringify({ ...p, name: ' ' })]) {
    storage.setItem(CAMERA_NODE_KEY, bad)
    assert.equal(loadCameraPairing(storage), null, bad)
    assert.equal(storage.getItem(CAMERA_NODE_KEY), null, 'a record that cannot be read is removed')
  }
  assert.throws(() => { saveCameraPairing(storage, { ...p, deviceId: 'a b' }) }, /not a camera node pairing/)
  assert.equal(storage.getItem(CAMERA_NODE_KEY), null)

  saveCameraPairing(storage, p)
  forgetCameraPairing(storage)
  assert.equal(loadCameraPairing(storage), null)
  assert.deepEqual(parseCameraPairing(p), p)
})
