import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { DeviceState, RingEvent } from '@doorbell/core'
import { ResumeHold, installSessionId, screenSession, type LockManagerLike, type StorageLike } from '../src/lib'

/** A browser's localStorage, as far as the screen session uses it. */
const storage = (): StorageLike & { values: Map<string, string> } => {
  const values = new Map<string, string>()
  return { values, getItem: (k) => values.get(k) ?? null, setItem: (k, v) => { values.set(k, v) } }
}
/** Another tab of the same browser: Node's own Web Locks (one agent), reached through another object. */
const tab = (): LockManagerLike => ({ request: navigator.locks.request.bind(navigator.locks) as LockManagerLike['request'] })

const ring = (deviceId: string, ringId: string): RingEvent => ({ type: 'ring', deviceId, deviceName: deviceId, ringId, at: 1, count: 1 })
const state = (deviceId: string): DeviceState => ({
  deviceId, deviceName: deviceId, participants: [], lock: null, lastRing: null, at: 2, call: { status: 'idle', ringId: null, since: 1 }
})

describe('screen session: one persistent MQTT session per member and browser install', () => {
  test('the install\'s id is made once and kept; a damaged one is replaced', () => {
    const s = storage()
    const id = installSessionId(s)
    assert.match(id, /^[a-z0-9]{12}$/)
    assert.equal(installSessionId(s), id)
    s.values.set('doorbell.screen-session', 'x/../../#')
    const replaced = installSessionId(s)
    assert.match(replaced, /^[a-z0-9]{12}$/)
    assert.notEqual(replaced, id)
  })

  test('the first tab holds the session; a second tab gets a clean one (undefined); the first asking again keeps it; another member has its own', async () => {
    const s = storage()
    const first = tab()
    const id = await screenSession(s, first, 'm-one')
    assert.equal(id, installSessionId(s))
    assert.equal(await screenSession(s, tab(), 'm-one'), undefined, 'a second tab must not take the session (it would end the first tab\'s connection)')
    assert.equal(await screenSession(s, first, 'm-one'), id, 'the tab that holds the lock keeps its session when its Home is made again')
    assert.equal(await screenSession(s, tab(), 'm-two'), id, 'another member paired in this browser has its own lock')
  })

  test('without Web Locks every tab gets a clean session', async () => {
    assert.equal(await screenSession(storage(), undefined, 'm-three'), undefined)
  })
})

describe('ResumeHold: after a resumed session, a ring waits for its doorbell\'s state', () => {
  test('outside a resume everything passes at once', () => {
    const out: string[] = []
    const h = new ResumeHold({ holdMs: 1000, ring: (r) => out.push(`ring ${r.ringId}`), state: (s) => out.push(`state ${s.deviceId}`) })
    h.ring(ring('a', 'r1'))
    h.state(state('a'))
    assert.deepEqual(out, ['ring r1', 'state a'])
  })

  test('held rings pass after their own doorbell\'s state, in order; other doorbells\' rings keep waiting', () => {
    const out: string[] = []
    const h = new ResumeHold({ holdMs: 60_000, ring: (r) => out.push(`ring ${r.ringId}`), state: (s) => out.push(`state ${s.deviceId}`) })
    h.resume()
    h.ring(ring('a', 'r1'))
    h.ring(ring('b', 'r2'))
    h.ring(ring('a', 'r3'))
    assert.deepEqual(out, [])
    h.state(state('a'))
    assert.deepEqual(out, ['state a', 'ring r1', 'ring r3'])
    h.ring(ring('a', 'r4'))
    assert.deepEqual(out.at(-1), 'ring r4', 'once its state is in, a doorbell\'s rings pass')
    h.release()
    assert.deepEqual(out.at(-1), 'ring r2')
  })

  test('a doorbell whose state never comes (withheld: offline) has its rings passed after holdMs', async () => {
    const out: string[] = []
    const h = new ResumeHold({ holdMs: 30, ring: (r) => out.push(`ring ${r.ringId}`), state: () => {} })
    h.resume()
    h.ring(ring('a', 'r1'))
    assert.deepEqual(out, [])
    await new Promise((resolve) => setTimeout(resolve, 80))
    assert.deepEqual(out, ['ring r1'])
  })
})
