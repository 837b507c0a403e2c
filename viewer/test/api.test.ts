import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ApiError, HubApi, MalformedAnswerError } from '../src/lib/api'

/**
 * HubApi's ICE and zones calls: the bearer token goes out, the answer is parsed by the core
 * schemas before anyone sees it. The hub's side of both routes is tested against a real hub in
 * hub/test/api.test.ts.
 */

const TOKEN = `m-console.${'a'.repeat(43)}`
const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })

/** A HubApi whose fetch records each request and answers with `answer`. */
function apiAnswering (answer: () => Response): { api: HubApi, seen: Array<{ url: string, auth: string | undefined }> } {
  const seen: Array<{ url: string, auth: string | undefined }> = []
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push({ url: String(input), auth: (init?.headers as Record<string, string> | undefined)?.Authorization })
    return answer()
  }) as typeof globalThis.fetch
  return { api: new HubApi({ base: 'https://hub.local:8443', token: TOKEN, fetch }), seen }
}

const ICE = {
  iceServers: [
    { urls: 'stun:stun.lan:3478' },
    { urls: ['turn:turn.lan:3478?transport=udp'], username: '1750000600:m-console', credential: 'c2VjcmV0LWhtYWMtc2hhMQ==' }
  ],
  iceTransportPolicy: 'relay',
  expiresAt: 1_750_000_600_000
}

test('ice(): the hub\'s ICE settings, asked for with the member\'s token', async () => {
  const { api, seen } = apiAnswering(() => json(ICE))
  assert.deepEqual(await api.ice(), ICE)
  assert.deepEqual(seen, [{ url: 'https://hub.local:8443/api/ice', auth: `Bearer ${TOKEN}` }])
})

test('ice(): an answer of another shape is refused, naming what is wrong', async () => {
  for (const [bad, detail] of [
    [{ ...ICE, iceTransportPolicy: 'relay-ish' }, /iceTransportPolicy/],
    [{ ...ICE, iceServers: [{ urls: 'http://turn.lan' }] }, /iceServers\.0\.urls/],
    [{ iceServers: [], iceTransportPolicy: 'all' }, /expiresAt/]
  ] as const) {
    const { api } = apiAnswering(() => json(bad))
    await assert.rejects(api.ice(), (e: unknown) => e instanceof MalformedAnswerError && /GET \/api\/ice/.test(e.message) && detail.test(e.message))
  }
})

const ZONES = {
  zones: [
    { zone: 'CBD-EMPTY', devices: [] },
    { zone: 'CBD-NORTH', devices: [{ deviceId: 'cam-alley', name: 'Alley' }, { deviceId: 'cam-gate', name: 'North gate' }] }
  ]
}

test('zones(): the zones and their devices as the hub listed them', async () => {
  const { api, seen } = apiAnswering(() => json(ZONES))
  assert.deepEqual(await api.zones(), ZONES)
  assert.deepEqual(seen, [{ url: 'https://hub.local:8443/api/zones', auth: `Bearer ${TOKEN}` }])
})

test('zones(): a bad answer is refused; a resident\'s 403 comes back with the hub\'s reason', async () => {
  const { api } = apiAnswering(() => json({ zones: [{ zone: 'has space', devices: [] }] }))
  await assert.rejects(api.zones(), (e: unknown) => e instanceof MalformedAnswerError && /zones\.0\.zone/.test(e.message))
  const refused = apiAnswering(() => json({ error: 'zones are for the owner and operators' }, 403))
  await assert.rejects(refused.api.zones(), (e: unknown) => e instanceof ApiError && e.status === 403 && e.message === 'zones are for the owner and operators')
})
