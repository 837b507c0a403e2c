import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { HUB_INFO_KEY, fetchHubInfo, loadHubInfo, parseHubInfo } from '../src/composables/hubInfo'
import { hubSocketUrl } from '../src/lib/paths/lan/socketUrl'

const INFO = { homeId: 'home', hubName: 'Hub', mqttPath: '/mqtt', inspect: false }

test('the MQTT WebSocket is on the page\'s own origin, secure when the page is', () => {
  const info = { homeId: 'home', hubName: 'Hub', mqttPath: '/mqtt', inspect: false }
  assert.equal(hubSocketUrl({ protocol: 'http:', host: 'hub.local:8080' }, info.mqttPath), 'ws://hub.local:8080/mqtt')
  assert.equal(hubSocketUrl({ protocol: 'https:', host: 'hub.local' }, info.mqttPath), 'wss://hub.local/mqtt')
})

/** A Storage stand-in that records what was stored. */
function fakeStorage (initial: Record<string, string> = {}): Storage & { data: Map<string, string> } {
  const data = new Map(Object.entries(initial))
  return {
    data,
    get length () { return data.size },
    clear: () => { data.clear() },
    key: (i: number) => [...data.keys()][i] ?? null,
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => { data.set(k, v) },
    removeItem: (k: string) => { data.delete(k) }
  }
}

const realFetch = globalThis.fetch
const requests: string[] = []
/** Stubs the global fetch: every call gets `answer()` (a Response, a throw for a network failure, or a promise). */
function stubFetch (answer: (init?: RequestInit) => Response | Promise<Response>): void {
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    requests.push(String(input))
    return await answer(init)
  }) as typeof fetch
}
/** A hub that accepts the connection and never answers: only the request's signal ends the wait. */
const frozen = async (init?: RequestInit): Promise<Response> => await new Promise((_resolve, reject) => {
  init?.signal?.addEventListener('abort', () => { reject(init.signal!.reason) })
})
const json = (body: unknown, init: ResponseInit = {}): Response => new Response(JSON.stringify(body), { status: 200, ...init, headers: { 'Content-Type': 'application/json', ...init.headers } })
const down = (): Response => { throw new TypeError('fetch failed') }
afterEach(() => { globalThis.fetch = realFetch; requests.length = 0 })

test('a fresh answer is returned, not marked cached, and remembered', async () => {
  stubFetch(() => json({ ...INFO, extra: 'ignored' }))
  const storage = fakeStorage()
  const info = await loadHubInfo(storage)
  assert.deepEqual(info, { ...INFO, cached: false })
  assert.deepEqual(requests, ['/api/info'])
  // Only the known fields are kept.
  assert.deepEqual(JSON.parse(storage.data.get(HUB_INFO_KEY)!), INFO)
})

test('with the hub down, the remembered answer comes back marked cached', async () => {
  const storage = fakeStorage()
  stubFetch(() => json(INFO))
  await loadHubInfo(storage)
  stubFetch(down)
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: true })
  // An error status or a malformed body counts as "cannot reach" too, and does not overwrite the good copy.
  stubFetch(() => json({ error: 'bad gateway' }, { status: 502 }))
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: true })
  stubFetch(() => json({ homeId: 42 }))
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: true })
  stubFetch(() => new Response('<html>captive portal</html>', { status: 200 }))
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: true })
  assert.deepEqual(JSON.parse(storage.data.get(HUB_INFO_KEY)!), INFO)
})

test('with the hub down and nothing remembered, a clear error', async () => {
  stubFetch(down)
  await assert.rejects(loadHubInfo(fakeStorage()), /fetch failed; no earlier answer from the hub is remembered/)
})

test('a hub that never answers is given up on after the timeout', async () => {
  stubFetch(frozen)
  const storage = fakeStorage({ [HUB_INFO_KEY]: JSON.stringify(INFO) })
  const started = Date.now()
  assert.deepEqual(await loadHubInfo(storage, 50), { ...INFO, cached: true })
  assert.ok(Date.now() - started < 1000)
  await assert.rejects(loadHubInfo(fakeStorage(), 50), /no answer within 50 ms; no earlier answer/)
})

test('a malformed remembered value is ignored, not a crash', async () => {
  stubFetch(down)
  for (const stored of ['not json{', 'null', '42', JSON.stringify({ ...INFO, mqttPath: 'mqtt' }), JSON.stringify({ ...INFO, inspect: 'yes' })]) {
    await assert.rejects(loadHubInfo(fakeStorage({ [HUB_INFO_KEY]: stored })), /no earlier answer/, stored)
  }
  // ...and a good answer replaces it.
  stubFetch(() => json(INFO))
  const storage = fakeStorage({ [HUB_INFO_KEY]: 'not json{' })
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: false })
  assert.deepEqual(JSON.parse(storage.data.get(HUB_INFO_KEY)!), INFO)
})

test('a malformed body is rejected with a clear error by fetchHubInfo', async () => {
  stubFetch(() => json({ homeId: 'home', hubName: 'Hub' }))
  await assert.rejects(fetchHubInfo(), /unexpected shape/)
  stubFetch(() => new Response('oops', { status: 200 }))
  await assert.rejects(fetchHubInfo(), /not JSON/)
  stubFetch(() => json({}, { status: 500 }))
  await assert.rejects(fetchHubInfo(), /HTTP 500/)
})

test('the service worker\'s cached fallback is used but not stored again as fresh', async () => {
  stubFetch(() => json(INFO, { headers: { 'X-Doorbell-Cache': 'fallback' } }))
  const storage = fakeStorage()
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: true })
  assert.equal(storage.data.has(HUB_INFO_KEY), false)
})

test('storage that refuses writes does not stop the app', async () => {
  stubFetch(() => json(INFO))
  const storage = fakeStorage()
  storage.setItem = () => { throw new Error('QuotaExceededError') }
  assert.deepEqual(await loadHubInfo(storage), { ...INFO, cached: false })
})

test('parseHubInfo accepts the hub\'s answer and rejects other shapes', () => {
  assert.deepEqual(parseHubInfo(INFO), INFO)
  for (const bad of [null, undefined, 'x', [], {}, { ...INFO, homeId: '' }, { ...INFO, hubName: 1 }, { ...INFO, inspect: undefined }]) {
    assert.equal(parseHubInfo(bad), null, JSON.stringify(bad))
  }
})

test('parseHubInfo keeps the trust fields when the hub sends them, and still reads an older answer without them', () => {
  const trusted = { ...INFO, paired: true, caFingerprint: 'AB:CD:EF' }
  assert.deepEqual(parseHubInfo(trusted), trusted)
  assert.deepEqual(parseHubInfo({ ...INFO, paired: false, caFingerprint: null }), { ...INFO, paired: false, caFingerprint: null })
  // An answer remembered from before the hub had pairing: the fields stay absent, not invented.
  assert.deepEqual(parseHubInfo(INFO), INFO)
  assert.equal('paired' in parseHubInfo(INFO)!, false)
  for (const bad of [{ ...INFO, paired: 'yes' }, { ...INFO, caFingerprint: 42 }, { ...INFO, caFingerprint: 'x'.repeat(201) }]) {
    assert.equal(parseHubInfo(bad), null, JSON.stringify(bad))
  }
})

test('a remembered answer of an older hub (no paired, no caFingerprint) is still used with the hub down', async () => {
  stubFetch(down)
  assert.deepEqual(await loadHubInfo(fakeStorage({ [HUB_INFO_KEY]: JSON.stringify(INFO) })), { ...INFO, cached: true })
})
