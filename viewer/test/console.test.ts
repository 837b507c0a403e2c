import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IceSettings } from '@doorbell/core'
import { FeedKeeper, backoffMs, type FeedFacts, type TileState, type Timers } from '../src/console/feed'
import { IceKeeper, refreshDelay, rtcConfiguration, usable } from '../src/console/ice'
import { gridShape, zoneGroups } from '../src/console/zones'
import { deviceTopics, isRefusal } from '../src/lib/paths/lan/hubClient'

/** Timers the test moves by hand: `advance(ms)` runs what falls due, in order. */
function manualTimers () {
  let now = 0
  let seq = 0
  const due = new Map<number, { at: number, fn: () => void }>()
  const timers: Timers = {
    set: (fn, ms) => { const id = ++seq; due.set(id, { at: now + ms, fn }); return id },
    clear: (h) => { due.delete(h as number) }
  }
  const advance = async (ms: number): Promise<void> => {
    const end = now + ms
    for (let i = 0; i < 1000; i++) {
      const next = [...due.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
      if (!next || next[1].at > end) break
      due.delete(next[0])
      now = next[1].at
      next[1].fn()
      await new Promise((resolve) => setImmediate(resolve)) // the keeper's start() is async
    }
    now = end
  }
  return { timers, advance, pending: () => due.size, get now () { return now } }
}

/**
 * A keeper wired to a pretend call machine: `start` moves it to connecting (or fails), `hangUp`
 * ends it, as Home and the viewer call machine do.
 */
function harness (o: { startFails?: () => boolean } = {}) {
  const clock = manualTimers()
  const log: string[] = []
  const states: TileState[] = []
  let call: FeedFacts['call'] = 'idle'
  const keeper: FeedKeeper = new FeedKeeper({
    timers: clock.timers,
    start: async () => {
      log.push(`start@${clock.now}`)
      if (o.startFails?.()) throw new Error('no ICE settings')
      call = 'connecting'
      keeper.update({ call })
    },
    hangUp: () => { log.push(`hangUp@${clock.now}`); call = 'ended'; keeper.update({ call }) },
    dismiss: () => { log.push(`dismiss@${clock.now}`); call = 'idle'; keeper.update({ call }) },
    onState: (s) => { states.push(s) }
  })
  return {
    keeper,
    clock,
    log,
    states,
    starts: () => log.filter((l) => l.startsWith('start@')).map((l) => Number(l.slice(6))),
    /** The pretend call reaches the device and shows a frame. */
    live: () => { call = 'connected'; keeper.update({ call, firstFrame: true, mediaOk: true }) },
    /** The device said bye / the connection failed. */
    drop: () => { call = 'ended'; keeper.update({ call, firstFrame: false }) }
  }
}

test('backoff: 1 s doubling to 10 s; a bad attempt number is refused', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 12, 100].map((n) => backoffMs(n)), [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000])
  assert.throws(() => backoffMs(-1), RangeError)
  assert.throws(() => backoffMs(1.5), RangeError)
})

test('a feed calls as soon as the hub is up, shows live, and after a drop calls again with backoff until it is live', async () => {
  const h = harness()
  h.keeper.update({ online: true })
  await h.clock.advance(5000)
  assert.deepEqual(h.starts(), [], 'no call before the hub connection is up')
  h.keeper.update({ linkUp: true })
  await h.clock.advance(0)
  assert.deepEqual(h.starts(), [5000], 'the first call at once')
  assert.equal(h.keeper.state, 'connecting')
  h.live()
  assert.equal(h.keeper.state, 'live')

  // The device ends the call: the tile says so, and each failed try waits longer: 1 s, 2 s, 4 s, 8 s, 10 s, 10 s.
  const drops: number[] = []
  h.drop()
  drops.push(h.clock.now)
  assert.equal(h.keeper.state, 'reconnecting')
  for (let i = 0; i < 5; i++) {
    await h.clock.advance(10_000)
    h.drop() // each try fails (the connect timeout, say)
    drops.push(h.clock.now)
  }
  await h.clock.advance(10_000)
  const retries = h.starts().slice(1)
  assert.deepEqual(retries.map((at, i) => at - drops[i]!), [1000, 2000, 4000, 8000, 10_000, 10_000])
  assert.equal(h.keeper.state, 'reconnecting')

  // Live again: the backoff starts over.
  await h.clock.advance(10_000)
  h.live()
  assert.equal(h.keeper.state, 'live')
  const before = h.starts().length
  h.drop()
  await h.clock.advance(999)
  assert.equal(h.starts().length, before, 'not before 1 s')
  await h.clock.advance(1)
  assert.equal(h.starts().length, before + 1, 'at 1 s: the backoff started over')
  h.keeper.stop()
  assert.equal(h.clock.pending(), 0, 'stop clears every timer')
})

test('a device that goes offline: the call is ended, nothing is tried; back online: called at once', async () => {
  const h = harness()
  h.keeper.update({ online: true, linkUp: true })
  await h.clock.advance(0)
  h.live()
  h.keeper.update({ online: false })
  assert.ok(h.log.includes('hangUp@0'))
  assert.equal(h.keeper.state, 'offline')
  await h.clock.advance(60_000)
  assert.deepEqual(h.starts(), [0], 'no call to a device that is away')
  h.keeper.update({ online: true })
  await h.clock.advance(0)
  assert.deepEqual(h.starts(), [0, 60_000], 'back: called without waiting')
  assert.equal(h.keeper.state, 'reconnecting')
  h.live()
  assert.equal(h.keeper.state, 'live')
})

test('a device that comes back while a call to it hangs: that call is ended and a new one made at once', async () => {
  const h = harness()
  h.keeper.update({ online: false, linkUp: true })
  await h.clock.advance(0)
  assert.deepEqual(h.starts(), [])
  h.keeper.update({ online: true })
  await h.clock.advance(0)
  assert.deepEqual(h.starts(), [0])
  // It drops out and back before the call connected.
  h.keeper.update({ online: false })
  h.keeper.update({ online: true })
  await h.clock.advance(0)
  assert.deepEqual(h.starts(), [0, 0])
})

test('refused by the broker: no call, the tile says not allowed, whatever else happens', async () => {
  const h = harness()
  h.keeper.update({ linkUp: true, refused: true })
  await h.clock.advance(30_000)
  h.keeper.update({ online: true })
  await h.clock.advance(30_000)
  assert.deepEqual(h.starts(), [])
  assert.deepEqual(h.states, ['refused'])
})

test('a device refused, then granted on a later connection (its zone changed): the tile calls it by itself', async () => {
  const h = harness()
  h.keeper.update({ linkUp: true, online: true, refused: true })
  await h.clock.advance(5_000)
  assert.deepEqual(h.starts(), [])
  h.keeper.update({ refused: false })
  await h.clock.advance(1_000)
  assert.equal(h.starts().length, 1)
  assert.notEqual(h.states.at(-1), 'refused')
})

test('a ring never makes the console answer: it is dismissed and the feed watched', async () => {
  const h = harness()
  h.keeper.update({ linkUp: true, call: 'incoming' })
  assert.ok(h.log.includes('dismiss@0'))
  await h.clock.advance(0)
  assert.deepEqual(h.starts(), [0])
})

test('a stalled call (ICE disconnected, frames stopped) gets 5 s to recover, then a new call', async () => {
  const h = harness()
  h.keeper.update({ linkUp: true, online: true })
  await h.clock.advance(0)
  h.live()
  h.keeper.update({ mediaOk: false })
  assert.equal(h.keeper.state, 'reconnecting')
  await h.clock.advance(3000)
  h.keeper.update({ mediaOk: true })
  assert.equal(h.keeper.state, 'live', 'it recovered by itself')
  await h.clock.advance(10_000)
  assert.ok(!h.log.some((l) => l.startsWith('hangUp')))
  h.keeper.update({ mediaOk: false })
  await h.clock.advance(5000)
  assert.ok(h.log.includes('hangUp@18000'), h.log.join(' '))
  await h.clock.advance(1000)
  assert.deepEqual(h.starts(), [0, 19_000])
})

test('a call that cannot even start (no ICE settings) is tried again with backoff', async () => {
  let failures = 2
  const h = harness({ startFails: () => failures-- > 0 })
  h.keeper.update({ linkUp: true })
  await h.clock.advance(0)
  assert.equal(h.keeper.state, 'reconnecting')
  await h.clock.advance(3000)
  assert.deepEqual(h.starts(), [0, 1000, 3000])
  h.live()
  assert.equal(h.keeper.state, 'live')
})

const settings = (expiresAt: number | null, policy: 'all' | 'relay' = 'all'): IceSettings => ({
  iceServers: expiresAt === null ? [] : [{ urls: ['turn:127.0.0.1:3478?transport=udp'], username: `${Math.floor(expiresAt / 1000)}:m_1`, credential: 'x' }],
  iceTransportPolicy: policy,
  expiresAt
})

test('ICE settings: kept while good, fetched again before they expire, one request for everyone waiting', async () => {
  assert.equal(refreshDelay(null, 0), null)
  assert.equal(refreshDelay(3_600_000, 0), 3_540_000)
  assert.equal(refreshDelay(30_000, 0), 5000, 'never sooner than 5 s')
  assert.equal(usable(settings(null), 1e12), true)
  assert.equal(usable(settings(100_000), 69_999), true)
  assert.equal(usable(settings(100_000), 70_000), false)
  assert.deepEqual(rtcConfiguration(settings(null, 'relay'), [{ urls: 'stun:127.0.0.1:3478' }]), {
    iceServers: [{ urls: 'stun:127.0.0.1:3478' }], iceTransportPolicy: 'relay', bundlePolicy: 'max-bundle'
  })

  const clock = manualTimers()
  let fetched = 0
  let fail = false
  const errors: string[] = []
  const keeper = new IceKeeper({
    fetch: async () => {
      fetched++
      if (fail) throw new Error('hub down')
      return settings(clock.now + 3_600_000, 'relay')
    },
    now: () => clock.now,
    timers: clock.timers,
    onError: (e) => { errors.push(e.message) }
  })
  const [a, b] = await Promise.all([keeper.fresh(), keeper.fresh()])
  assert.equal(fetched, 1, 'one request for two callers')
  assert.equal(a, b)
  assert.equal(a.iceTransportPolicy, 'relay')
  await keeper.fresh()
  assert.equal(fetched, 1, 'kept while good')
  await clock.advance(3_540_000)
  assert.equal(fetched, 2, 'fetched again a minute before expiry, without anyone asking')
  assert.equal(keeper.current!.expiresAt, 3_540_000 + 3_600_000)

  // The hub is away when the refresh is due: the old settings stay, and it is tried again in 5 s.
  fail = true
  await clock.advance(3_540_000)
  assert.equal(fetched, 3)
  assert.deepEqual(errors, ['hub down'])
  await clock.advance(5000)
  assert.equal(fetched, 4)
  fail = false
  await clock.advance(5000)
  assert.equal(fetched, 5)
  assert.ok(keeper.current!.expiresAt! > clock.now)
  keeper.stop()
  assert.equal(clock.pending(), 0)
  await assert.rejects(new IceKeeper({ fetch: async () => { throw new Error('403') } }).fresh(), /403/)
})

test('zones: sorted, each camera once; 16 cameras in 4 zones make a 4×4 grid', () => {
  const res = {
    zones: [
      { zone: 'HARBOUR-02', devices: [{ deviceId: 'b', name: 'Pier' }, { deviceId: 'a', name: 'Gate' }] },
      { zone: 'CBD-TRAFFIC-01', devices: [{ deviceId: 'c', name: 'King St' }, { deviceId: 'a', name: 'Gate' }] },
      { zone: 'EMPTY', devices: [] }
    ]
  }
  assert.deepEqual(zoneGroups(res), [
    { zone: 'CBD-TRAFFIC-01', devices: [{ deviceId: 'a', name: 'Gate' }, { deviceId: 'c', name: 'King St' }] },
    { zone: 'EMPTY', devices: [] },
    { zone: 'HARBOUR-02', devices: [{ deviceId: 'b', name: 'Pier' }] }
  ])
  const sixteen = zoneGroups({ zones: ['Z1', 'Z2', 'Z3', 'Z4'].map((zone) => ({ zone, devices: [1, 2, 3, 4].map((i) => ({ deviceId: `${zone}-${i}`, name: `Cam ${i}` })) })) })
  assert.deepEqual(gridShape(sixteen), { cols: 4, rows: 4, zones: 4 })
  assert.deepEqual(gridShape(zoneGroups({ zones: [{ zone: 'Z', devices: [{ deviceId: 'one', name: 'One' }] }] })), { cols: 1, rows: 1, zones: 1 })
  assert.deepEqual(gridShape([]), { cols: 1, rows: 1, zones: 0 })
})

test('the hub client\'s per-device topics and SUBACK refusals', () => {
  assert.deepEqual(deviceTopics('home', 'cam-1'), ['doorbell/home/cam-1/ring', 'doorbell/home/cam-1/state', 'doorbell/home/cam-1/presence', 'doorbell/home/cam-1/calls'])
  assert.equal(isRefusal(128), true)
  assert.equal(isRefusal(0x87), true, 'MQTT 5 "not authorized"')
  assert.equal(isRefusal(1), false)
  assert.equal(isRefusal({ qos: 0 }), false)
})
