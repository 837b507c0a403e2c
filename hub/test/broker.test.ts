import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AedesPublishPacket, Client } from 'aedes'
import { memoryLogger, topics, type DoorAttempt, type Member } from '@doorbell/core'
import { auditIngest } from '../src/broker/auditIngest'
import { staleStates } from '../src/broker/staleState'
import { authenticate } from '../src/broker/authenticate'
import type { Principals } from '../src/broker/principals'
import { RateLimiter } from '../src/rateLimit'
import { startTrust, type Trust } from '../src/trust/trust'

/**
 * The broker's hooks on their own, against a real trust store (node:sqlite): bad input is refused
 * before any side effect. (With a real broker and real clients: test/api.test.ts for CONNACK 3
 * and 4, tests/integration/bad-input.test.ts and acl-matrix.test.ts for the rest.)
 */

const HOME = 'home'
let dir: string
let trust: Trust
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-broker-'))
  trust = await startTrust({ dir, homeId: HOME, hubName: 'Hub', log: memoryLogger() })
})
after(async () => {
  trust.stop()
  await rm(dir, { recursive: true, force: true })
})

const device = { id: 'device-front-door' } as unknown as Client
const packet = (topic: string, payload: string): AedesPublishPacket =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, messageId: 1 }) as AedesPublishPacket
const attempt = (id: string): DoorAttempt => ({
  id, deviceId: 'front-door', at: Date.now(), outcome: 'denied', reason: 'stale', message: 'late', memberId: null, viewerId: 'v-1', viewerName: 'Bob', role: 'resident', path: 'lan'
})

describe('auditIngest', () => {
  test('a device\'s door attempt is recorded once; malformed, foreign and broker-made messages record nothing', () => {
    const ingest = auditIngest(trust)
    const before = trust.audit.all().length
    const audit = topics.audit(HOME, 'front-door')
    ingest(packet(audit, '{"id":'), device)
    ingest(packet(audit, JSON.stringify({ ...attempt('a0'), outcome: 'maybe' })), device)
    ingest(packet(audit, JSON.stringify(attempt('a1'))), null)
    ingest(packet(topics.ring(HOME, 'front-door'), JSON.stringify(attempt('a2'))), device)
    assert.equal(trust.audit.all().length, before, 'nothing from bad input')
    ingest(packet(audit, JSON.stringify(attempt('a3'))), device)
    ingest(packet(audit, JSON.stringify(attempt('a3'))), device)
    assert.deepEqual(trust.audit.all().slice(before).map((r) => [r.kind, r.outcome, r.actor]), [['open-door', 'denied', 'Bob']])
  })
})

describe('staleStates (fail-secure for screens that subscribe later)', () => {
  const state = topics.state(HOME, 'front-door')
  const presence = topics.presence(HOME, 'front-door')
  const unlocked = JSON.stringify({ lock: { status: 'unlocked', boot: 'b1' } })
  const locked = JSON.stringify({ lock: { status: 'locked', boot: 'b2' } })
  const online = (yes: boolean): string => JSON.stringify({ deviceId: 'front-door', online: yes, at: 1 })
  const retained = (topic: string, payload: string): AedesPublishPacket => ({ ...packet(topic, payload), retain: true })
  const forwarded = (s: ReturnType<typeof staleStates>, p: AedesPublishPacket): boolean => s.authorizeForward(device, p) !== null

  test('the state a doorbell left when it went offline is withheld; its presence and other doorbells\' states are not', () => {
    const s = staleStates()
    s.observe(packet(state, unlocked))
    assert.ok(forwarded(s, retained(state, unlocked)), 'online: its state goes out')
    s.observe(packet(presence, online(false)))
    assert.deepEqual(s.withheld(), [`${HOME}/front-door`])
    assert.equal(forwarded(s, retained(state, unlocked)), false, 'offline: the retained "unlocked" is withheld')
    assert.ok(forwarded(s, retained(presence, online(false))), 'its presence (offline) goes out')
    assert.ok(forwarded(s, retained(topics.state(HOME, 'back-door'), unlocked)), 'another doorbell\'s state goes out')
  })

  test('back: presence alone does not release the old state; the doorbell\'s next state goes out, even the same bytes', () => {
    const s = staleStates()
    s.observe(packet(state, unlocked))
    s.observe(packet(presence, online(false)))
    s.observe(packet(presence, online(true)))
    assert.equal(forwarded(s, retained(state, unlocked)), false, 'between its presence and its first state, the old state is still withheld')
    s.observe(packet(state, locked))
    assert.ok(forwarded(s, packet(state, locked)))
    assert.deepEqual(s.withheld(), [])
    // After a short drop of its link (same boot) it publishes the same state again: its word again.
    s.observe(packet(presence, online(false)))
    s.observe(packet(state, locked))
    assert.ok(forwarded(s, retained(state, locked)))
  })

  test('after a restart, a retained state that says ringing is withheld until the doorbell confirms it; any other state goes out at once', () => {
    const s = staleStates()
    const call = (status: 'idle' | 'ringing'): string => JSON.stringify({ deviceId: 'front-door', deviceName: 'Front door', participants: [], lock: null, lastRing: null, at: 5, call: { status, ringId: status === 'ringing' ? 'r1' : null, since: 1 } })
    const ringing = call('ringing')
    s.restore(retained(state, ringing))
    s.restore(retained(presence, online(true)))
    s.restore(retained(topics.state(HOME, 'back-door'), call('idle')))
    assert.deepEqual(s.withheld(), [`${HOME}/front-door`])
    assert.equal(forwarded(s, retained(state, ringing)), false, 'the ring may have ended while the hub was down')
    assert.ok(forwarded(s, retained(topics.state(HOME, 'back-door'), call('idle'))), 'an idle state is there at once')
    s.restore(retained(topics.state(HOME, 'side-door'), '{"not a state"'))
    assert.deepEqual(s.withheld(), [`${HOME}/front-door`], 'a state that does not parse marks nothing')
    s.observe(packet(state, ringing))
    assert.ok(forwarded(s, retained(state, ringing)), 'the doorbell said it again: it still rings')
  })

  test('a retained copy of a state the doorbell has since replaced is not sent; the newest is, and live states always', () => {
    const s = staleStates()
    s.restore(retained(state, locked))
    s.observe(packet(state, unlocked))
    assert.equal(forwarded(s, retained(state, locked)), false, 'read from the store before the new state came: overtaken')
    assert.ok(forwarded(s, retained(state, unlocked)))
    assert.ok(forwarded(s, packet(state, locked)), 'a live forward is not a retained copy')
  })

  test('a malformed presence marks nothing', () => {
    const s = staleStates()
    s.observe(packet(state, unlocked))
    s.observe(packet(presence, '{"online":'))
    assert.ok(forwarded(s, retained(state, unlocked)))
  })
})

describe('authenticate', () => {
  const sign = async (username: string | undefined, password: string | undefined, clientId: string, o: { limiter: RateLimiter, principals: Principals, byAddress?: RateLimiter, address?: string }): Promise<{ returnCode: number | null, reason: string }> => {
    const hook = authenticate({ trust, homeId: HOME, principals: o.principals, failedSignIn: o.limiter, ...(o.byAddress ? { failedSignInByAddress: o.byAddress } : {}), addressOf: () => o.address ?? '192.0.2.7', log: memoryLogger() })
    const client = { id: clientId } as unknown as Client
    return await new Promise((resolve) => {
      hook(client, username, password === undefined ? undefined : Buffer.from(password), (err, ok) => {
        resolve(err ? { returnCode: err.returnCode, reason: err.message } : { returnCode: ok ? 0 : null, reason: '' })
      })
    })
  }

  test('CONNACK 4 without credentials or with wrong ones, 5 for another member\'s client id, 3 once the identity has failed too often from this address', async () => {
    const { code } = await trust.invite('console', { kind: 'device', deviceId: 'front-door' }, 'http://hub/')
    const paired = await trust.pair({ kind: 'device', code, id: 'front-door', name: 'Front door' })
    const member: Member = paired.member
    const limiter = new RateLimiter({ burst: 2, refillMs: 60_000 })
    const principals: Principals = new WeakMap()

    assert.deepEqual(await sign(undefined, undefined, 'device-front-door', { limiter, principals }), { returnCode: 4, reason: 'no credentials' })
    assert.equal((await sign(member.id, 'wrong', 'device-front-door', { limiter, principals })).returnCode, 4)
    assert.equal((await sign(member.id, paired.token, 'device-back-door', { limiter, principals })).returnCode, 5)
    // Two failures of this member id from this address spent its allowance: even the right
    // credentials wait now there, and are not told they are wrong.
    assert.equal((await sign(member.id, paired.token, 'device-front-door', { limiter, principals })).returnCode, 3)
    assert.equal((await sign(member.id, paired.token, 'device-front-door', { limiter, principals, address: '192.0.2.8' })).returnCode, 0, 'the same member from another address is not locked')

    const fresh = new RateLimiter({ burst: 3, refillMs: 60_000 })
    assert.equal((await sign(member.id, paired.token, 'device-front-door', { limiter: fresh, principals })).returnCode, 0)
    assert.equal(fresh.size, 0, 'a good sign-in spends nothing')
  })

  test('a stranger failing from a member\'s address, with other identities, never stops the member\'s correct token', async () => {
    const { code } = await trust.invite('console', { kind: 'device', deviceId: 'side-door' }, 'http://hub/')
    const paired = await trust.pair({ kind: 'device', code, id: 'side-door', name: 'Side door' })
    const limiter = new RateLimiter({ burst: 3, refillMs: 60_000 })
    const byAddress = new RateLimiter({ burst: 5, refillMs: 60_000 })
    const principals: Principals = new WeakMap()
    const codes: Array<number | null> = []
    for (let i = 0; i < 40; i++) {
      codes.push((await sign(i % 2 === 0 ? `m-stranger${i}` : undefined, `m-stranger${i}.${'A'.repeat(43)}`, 'device-x', { limiter, principals, byAddress })).returnCode)
      if (i % 10 === 9) assert.equal((await sign(paired.member.id, paired.token, 'device-side-door', { limiter, principals, byAddress })).returnCode, 0, `the member after ${i + 1} failures`)
    }
    assert.deepEqual(codes.slice(0, 5), [4, 4, 4, 4, 4])
    assert.ok(codes.slice(6).every((c) => c === 3), `then the address is told to wait: ${codes.join(',')}`)
    // A wrong token for the member's own id from a third address locks only that identity there.
    for (let i = 0; i < 3; i++) await sign(paired.member.id, `${paired.member.id}.${'B'.repeat(43)}`, 'device-side-door', { limiter, principals, address: '198.51.100.9' })
    assert.equal((await sign(paired.member.id, paired.token, 'device-side-door', { limiter, principals, address: '198.51.100.9' })).returnCode, 3)
    assert.equal((await sign(paired.member.id, paired.token, 'device-side-door', { limiter, principals, byAddress })).returnCode, 0)
  })
})
