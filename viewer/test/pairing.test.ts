import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { Grant, PairRequest, exportPublicKey, generateSigningKey, sign, type Member, type PairResponse } from '@doorbell/core'
import { ApiError, HubApi, MalformedAnswerError } from '../src/lib/api'
import { parseStoredPairing, type StoredPairing } from '../src/composables/keystore'
import {
  ACCESS_ENDED, REMOVED, apiErrorText, codeFromUrl, displayCode, keySupportProblem, normaliseCode, pairErrorText,
  pairThisScreen, removedNotice, safeSvg, urlWithoutCode
} from '../src/composables/usePairing'

const at = (href: string): Pick<Location, 'pathname' | 'search' | 'hash'> => {
  const u = new URL(href, 'https://hub.local')
  return { pathname: u.pathname, search: u.search, hash: u.hash }
}

test('the code comes from an invitation link, in the fragment or the query', () => {
  assert.equal(codeFromUrl(at('/pair#code=ABCDE-FGHJK')), 'ABCDE-FGHJK')
  assert.equal(codeFromUrl(at('/?code=abcdefghjk&name=Kitchen')), 'abcdefghjk')
  // The fragment wins: it is what the hub's invitation URL uses (never sent to a server, so never in its logs).
  assert.equal(codeFromUrl(at('/pair?code=QQQQQQQQQQ#code=ABCDE-FGHJK')), 'ABCDE-FGHJK')
  assert.equal(codeFromUrl(at('/pair#code=%20ABCDE-FGHJK%20')), 'ABCDE-FGHJK')
  assert.equal(codeFromUrl(at('/')), null)
  assert.equal(codeFromUrl(at('/pair#code=')), null)
})

test('after use the code is taken out of the address, and /pair becomes the app\'s root', () => {
  assert.equal(urlWithoutCode(at('/pair#code=ABCDE-FGHJK')), '/')
  assert.equal(urlWithoutCode(at('/?name=Kitchen&code=ABCDEFGHJK')), '/?name=Kitchen')
  assert.equal(urlWithoutCode(at('/pair?name=Hall#code=ABCDEFGHJK')), '/?name=Hall')
  assert.equal(urlWithoutCode(at('/?stately#code=ABCDEFGHJK&x=1')), '/?stately=#x=1')
  // Nothing to remove: the history is left alone.
  assert.equal(urlWithoutCode(at('/?name=Kitchen')), null)
})

test('a code is read as the hub reads it: case, spaces and dashes do not matter', () => {
  assert.deepEqual(normaliseCode('abcde-fghjk'), { ok: true, code: 'ABCDEFGHJK' })
  assert.deepEqual(normaliseCode(' ABCDE FGHJK '), { ok: true, code: 'ABCDEFGHJK' })
  // I, O, 0 and 1 are not in the alphabet (look-alikes); 9 characters are too few.
  for (const bad of ['ABCDE-FGHJI', 'ABCDE-FGHJ0', 'ABCDEFGHJ', '', 'ABCDEFGHJKM']) {
    const r = normaliseCode(bad)
    assert.equal(r.ok, false, bad)
    if (!r.ok) assert.match(r.message, /10 letters and digits/)
  }
  assert.equal(displayCode('abcdefghjk'), 'ABCDE-FGHJK')
  assert.equal(displayCode('not a code'), 'not a code')
})

test('only plain SVG reaches v-html: no script, no event handlers, no javascript: links', () => {
  const qr = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 29 29"><path d="M0 0h7v7H0z" fill="#000"/></svg>'
  assert.equal(safeSvg(qr), qr)
  assert.equal(safeSvg(`\n ${qr}\n`), qr)
  for (const bad of [
    '<svg><script>alert(1)</script></svg>',
    '<svg onload="alert(1)"></svg>',
    '<svg><rect ONCLICK = "x()"/></svg>',
    '<svg><rect/onmouseover="x()"/></svg>',
    '<svg><a href="javascript:alert(1)"><rect/></a></svg>',
    '<svg><foreignObject><div>x</div></foreignObject></svg>',
    '<img src=x onerror=alert(1)>',
    '<?xml version="1.0"?><svg></svg>',
    '<svgx></svgx>',
    '<svg>',
    42,
    null
  ]) {
    assert.equal(safeSvg(bad), null, String(bad))
  }
})

// ---------------------------------------------------------------- the API, against a stubbed fetch

const realFetch = globalThis.fetch
const seen: Array<{ url: string, init: RequestInit | undefined }> = []
function stubFetch (answer: (url: string, init?: RequestInit) => Response | Promise<Response>): void {
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push({ url: String(input), init })
    return await answer(String(input), init)
  }) as typeof fetch
}
const json = (body: unknown, status = 200): Response => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
afterEach(() => { globalThis.fetch = realFetch; seen.length = 0 })

const MEMBER: Member = {
  id: 'm-kitchen', kind: 'viewer', subject: 'v-kitchen', name: 'Kitchen tablet', role: 'resident',
  door: true, zones: [], createdAt: 1_700_000_000_000, expiresAt: null, revokedAt: null
}
const TOKEN = `m-kitchen.${'a'.repeat(43)}`

test('a refused request becomes an ApiError with the status and the hub\'s own message', async () => {
  stubFetch(() => json({ error: 'that code is not valid (unknown, used or expired)' }, 401))
  const unauthorized: ApiError[] = []
  const api = new HubApi({ base: 'http://hub.local:8080/', onUnauthorized: (e) => { unauthorized.push(e) } })
  const key = await generateSigningKey(false)
  const err = await api.pair({ kind: 'viewer', code: 'ABCDE-FGHJK', id: 'v-kitchen', name: 'Kitchen tablet', key: await exportPublicKey(key.publicKey) })
    .then(() => null, (e: unknown) => e)
  assert.ok(err instanceof ApiError)
  assert.equal(err.status, 401)
  assert.equal(err.name, 'ApiError')
  assert.equal(err.message, 'that code is not valid (unknown, used or expired)')
  assert.equal(err.request, 'POST /api/pair')
  // A wrong code is not a removed member: pairing does not report itself unauthorized.
  assert.equal(unauthorized.length, 0)
  assert.equal(seen[0]!.url, 'http://hub.local:8080/api/pair')
  // The code went out normalised, and no token with it.
  const sent = JSON.parse(String(seen[0]!.init?.body)) as { code: string }
  assert.equal(sent.code, 'ABCDEFGHJK')
  assert.equal(new Headers(seen[0]!.init?.headers).has('Authorization'), false)
  assert.equal(pairErrorText(err), 'That code is not valid (unknown, used or expired).')
  assert.equal(pairErrorText(new ApiError(401, 'HTTP 401 Unauthorized', 'POST /api/pair')), 'That code is not valid (unknown, used or expired). Ask the owner for a new code.')
})

test('a 401 on a member\'s call says the member is gone (onUnauthorized), with the bearer token sent', async () => {
  stubFetch(() => json({ error: 'this member was removed' }, 401))
  const unauthorized: number[] = []
  const api = new HubApi({ token: TOKEN, onUnauthorized: (e) => { unauthorized.push(e.status) } })
  await assert.rejects(api.me(), (e: unknown) => e instanceof ApiError && e.status === 401 && e.message === 'this member was removed')
  assert.deepEqual(unauthorized, [401])
  assert.equal(seen[0]!.url, '/api/me')
  assert.equal(new Headers(seen[0]!.init?.headers).get('Authorization'), `Bearer ${TOKEN}`)
})

test('an answer of the wrong shape is a clear error naming the request and the field', async () => {
  const api = new HubApi({ base: 'http://hub.local', token: TOKEN })
  stubFetch(() => json({ members: [{ ...MEMBER, role: 'landlord' }] }))
  await assert.rejects(api.members(), (e: unknown) => e instanceof MalformedAnswerError && /GET \/api\/members has an unexpected shape \(members\.0\.role: /.test(e.message))
  stubFetch(() => json([MEMBER]))
  await assert.rejects(api.members(), /unexpected shape \(not a JSON object\)/)
  stubFetch(() => json({ member: MEMBER }))
  await assert.rejects(api.members(), /unexpected shape \(no "members"\)/)
  stubFetch(() => new Response('<html>captive portal</html>', { status: 200 }))
  await assert.rejects(api.me(), /GET \/api\/me has an unexpected shape \(not JSON\)/)
  // And the right shape comes through parsed.
  stubFetch(() => json({ members: [MEMBER] }))
  assert.deepEqual(await api.members(), [MEMBER])
})

test('errors without the hub\'s message keep the status; a hub that cannot be reached is status 0', async () => {
  const api = new HubApi({ base: 'http://hub.local', token: TOKEN })
  stubFetch(() => new Response('Bad Gateway', { status: 502, statusText: 'Bad Gateway' }))
  await assert.rejects(api.members(), (e: unknown) => e instanceof ApiError && e.status === 502 && e.message === 'HTTP 502 Bad Gateway')
  stubFetch(() => { throw new TypeError('fetch failed') })
  await assert.rejects(api.members(), (e: unknown) => e instanceof ApiError && e.status === 0 && /cannot reach the hub \(fetch failed\)/.test(e.message))
  stubFetch(() => json({ error: 'only the owner may list members' }, 403))
  const refused = await api.members().catch((e: unknown) => e)
  assert.equal(apiErrorText(refused, 'load the members'), 'Could not load the members: only the home\'s owner may do this.')
  stubFetch(() => json({ error: 'too many attempts; try again in 30 s' }, 429))
  const limited = await new HubApi().pair({ kind: 'viewer', code: 'ABCDEFGHJK', id: 'v1', name: 'x', key: 'A'.repeat(43) }).catch((e: unknown) => e)
  assert.equal((limited as ApiError).status, 429)
  assert.equal(pairErrorText(limited), 'Too many tries: too many attempts; try again in 30 s.')
  assert.equal(pairErrorText(new ApiError(429, 'HTTP 429', 'POST /api/pair')), 'Too many tries. Wait a minute, then try again.')
})

test('a hub that never answers is given up on', async () => {
  stubFetch(async (_url, init) => await new Promise((_resolve, reject) => { init?.signal?.addEventListener('abort', () => { reject(init.signal!.reason) }) }))
  const api = new HubApi({ token: TOKEN, timeoutMs: 50 })
  await assert.rejects(api.me(), (e: unknown) => e instanceof ApiError && e.status === 0 && /no answer within/.test(e.message))
})

test('a bad request is refused before anything is sent', async () => {
  stubFetch(() => json({}))
  const api = new HubApi({ token: TOKEN })
  await assert.rejects(api.pair({ kind: 'viewer', code: 'nope', id: 'v1', name: 'Kitchen', key: 'A'.repeat(43) }), /invalid pairing request: code: a pairing code is 10 letters/)
  await assert.rejects(api.invite({ kind: 'viewer', role: 'owner' as 'resident' }), /invalid invitation: role/)
  assert.equal(seen.length, 0)
})

test('invites, members, audit: the right method, path and query, and the answers parsed', async () => {
  const api = new HubApi({ base: 'http://hub.local', token: TOKEN })
  const invite = { code: 'ABCDE-FGHJK', url: 'https://hub.local/pair#code=ABCDE-FGHJK', expiresAt: 1_700_000_900_000, qrSvg: '<svg></svg>' }
  stubFetch(() => json(invite))
  assert.deepEqual(await api.invite({ kind: 'viewer', role: 'guest', door: false, accessHours: 4 }), invite)
  // Defaults filled in by the core schema, as the hub will read them.
  assert.deepEqual(JSON.parse(String(seen.at(-1)!.init?.body)), { kind: 'viewer', role: 'guest', door: false, zones: [], accessHours: 4, codeMinutes: 15 })
  assert.equal(seen.at(-1)!.init?.method, 'POST')

  stubFetch(() => json({ member: { ...MEMBER, revokedAt: 1_700_000_100_000 } }))
  assert.equal((await api.removeMember('m-kitchen')).revokedAt, 1_700_000_100_000)
  assert.equal(seen.at(-1)!.url, 'http://hub.local/api/members/m-kitchen')
  assert.equal(seen.at(-1)!.init?.method, 'DELETE')

  const record = { seq: 3, at: 1_700_000_000_000, kind: 'open-door', outcome: 'denied', reason: 'no-door-right', actor: 'Guest phone', deviceId: 'front-door', message: 'guests cannot open the door' }
  stubFetch(() => json({ records: [record] }))
  assert.deepEqual(await api.audit({ after: 2, limit: 50 }), [{ ...record, path: null }], 'a hub from before audit paths answers without one')
  assert.equal(seen.at(-1)!.url, 'http://hub.local/api/audit?after=2&limit=50')

  stubFetch(() => new Response('[]', { headers: { 'Content-Disposition': 'attachment; filename="audit-home.json"' } }))
  const file = await api.auditExport()
  assert.equal(file.filename, 'audit-home.json')
  assert.equal(await file.blob.text(), '[]')
  assert.equal(new Headers(seen.at(-1)!.init?.headers).get('Authorization'), `Bearer ${TOKEN}`)
})

// ---------------------------------------------------------------- pairing, against a fake hub with real keys

/** A hub that answers POST /api/pair as the real one does: a grant for the key it was sent, signed with the home's key. */
async function fakeHub (tamper: (grant: Grant) => Grant = (g) => g): Promise<void> {
  const homeKey = await generateSigningKey(true)
  stubFetch(async (_url, init) => {
    const req = PairRequest.parse(JSON.parse(String(init?.body)))
    if (req.kind !== 'viewer') return json({ error: 'viewers only here' }, 400)
    if (req.code !== 'ABCDEFGHJK') return json({ error: 'that code is not valid (unknown, used or expired)' }, 401)
    const grant: Grant = tamper({ v: 1, id: 'm-new', home: 'home-1', sub: req.id, name: req.name, role: 'resident', door: true, zones: [], key: req.key, iat: 1_700_000_000_000, exp: null })
    const res: PairResponse = {
      homeId: 'home-1', hubName: 'Hub', token: `m-new.${'b'.repeat(43)}`,
      member: { id: 'm-new', kind: 'viewer', subject: req.id, name: req.name, role: 'resident', door: true, zones: [], createdAt: 1_700_000_000_000, expiresAt: null, revokedAt: null },
      credential: await sign(Grant, grant, homeKey.privateKey),
      homeKey: await exportPublicKey(homeKey.publicKey)
    }
    return json(res)
  })
}

test('pairing makes a key here, sends only its public half, and keeps the grant with a non-extractable private key', async () => {
  await fakeHub()
  const saved: StoredPairing[] = []
  const pairing = await pairThisScreen({ api: new HubApi(), code: 'abcde-fghjk', viewerId: 'v-kitchen', name: ' Kitchen tablet ', save: async (p) => { saved.push(p) } })
  const sent = JSON.parse(String(seen[0]!.init?.body)) as Record<string, string>
  assert.deepEqual(Object.keys(sent).sort(), ['code', 'id', 'key', 'kind', 'name'])
  assert.equal(sent.key, await exportPublicKey(pairing.key.publicKey))
  assert.equal(sent.name, 'Kitchen tablet')
  assert.deepEqual(saved, [pairing])
  assert.equal(pairing.viewerId, 'v-kitchen')
  assert.equal(pairing.memberId, 'm-new')
  assert.equal(pairing.role, 'resident')
  assert.equal(pairing.homeId, 'home-1')
  assert.equal(pairing.key.privateKey.extractable, false)
  assert.equal(pairing.key.privateKey.algorithm.name, 'Ed25519')
  // What was stored reads back as a pairing.
  assert.deepEqual(parseStoredPairing(structuredClone(pairing)), pairing)
  assert.equal(removedNotice(pairing.credential), REMOVED)
})

test('a wrong code is the hub\'s 401; a grant for another key or viewer is refused, not stored', async () => {
  await fakeHub()
  const saved: StoredPairing[] = []
  const save = async (p: StoredPairing): Promise<void> => { saved.push(p) }
  await assert.rejects(pairThisScreen({ api: new HubApi(), code: 'QQQQQ-QQQQQ', viewerId: 'v1', name: 'Hall', save }), (e: unknown) => e instanceof ApiError && e.status === 401)
  await assert.rejects(pairThisScreen({ api: new HubApi(), code: 'not-a-code', viewerId: 'v1', name: 'Hall', save }), /10 letters and digits/)
  await assert.rejects(pairThisScreen({ api: new HubApi(), code: 'ABCDEFGHJK', viewerId: 'v1', name: '  ', save }), /Give this screen a name/)
  const other = await exportPublicKey((await generateSigningKey(false)).publicKey)
  await fakeHub((g) => ({ ...g, key: other }))
  await assert.rejects(pairThisScreen({ api: new HubApi(), code: 'ABCDEFGHJK', viewerId: 'v1', name: 'Hall', save }), /not for this screen and its key/)
  await fakeHub((g) => ({ ...g, sub: 'someone-else' }))
  await assert.rejects(pairThisScreen({ api: new HubApi(), code: 'ABCDEFGHJK', viewerId: 'v1', name: 'Hall', save }), /not for this screen and its key/)
  assert.equal(saved.length, 0)
})

test('a screen whose guest access ran out is told so, not that it was removed', async () => {
  const homeKey = await generateSigningKey(true)
  const key = await generateSigningKey(false)
  const grant = { v: 1 as const, id: 'm-g', home: 'home-1', sub: 'v-g', name: 'Guest phone', role: 'guest' as const, door: false, zones: [], key: await exportPublicKey(key.publicKey), iat: 1000, exp: 5000 }
  const credential = await sign(Grant, grant, homeKey.privateKey)
  assert.equal(removedNotice(credential, 4999), REMOVED)
  assert.equal(removedNotice(credential, 5000), ACCESS_ENDED)
  assert.equal(removedNotice('garbage', 5000), REMOVED)
})

test('a stored pairing of the wrong shape is not trusted', async () => {
  const key = await generateSigningKey(false)
  const good = { viewerId: 'v1', memberId: 'm1', token: TOKEN, credential: `${'a'.repeat(10)}.${'b'.repeat(86)}`, homeId: 'home', role: 'owner', name: 'Laptop', key }
  assert.ok(parseStoredPairing(good))
  for (const bad of [
    null, 'x', {}, { ...good, key: undefined }, { ...good, key: { publicKey: key.publicKey, privateKey: 'raw bytes' } },
    { ...good, role: 'admin' }, { ...good, token: 'secret' }, { ...good, viewerId: 'a/b' }, { ...good, name: '' }, { ...good, credential: 'x.y' }
  ]) {
    assert.equal(parseStoredPairing(bad), null, JSON.stringify(bad))
  }
})

test('a page where the browser cannot keep a key says why before trying', () => {
  assert.equal(keySupportProblem({ isSecureContext: true, crypto: { subtle: {} } }), null)
  assert.match(keySupportProblem({ isSecureContext: false, crypto: {} })!, /plain http/)
  assert.match(keySupportProblem({})!, /no WebCrypto/)
})
