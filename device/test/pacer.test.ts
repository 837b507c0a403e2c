import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { OpusPacer } from '../src/audio/pacer'

/** An RTP header with this timestamp and sequence number (the payload does not matter). */
const rtp = (ts: number, seq: number): Buffer => {
  const b = Buffer.alloc(20)
  b[0] = 0x80
  b[1] = 111
  b.writeUInt16BE(seq & 0xffff, 2)
  b.writeUInt32BE(ts >>> 0, 4)
  b.writeUInt32BE(2, 8)
  return b
}

/** A pacer on a hand-driven clock: timers fire when `advance` passes them. */
function clocked (holdMs: number) {
  let now = 1000
  const timers: Array<{ at: number, fn: () => void, id: number }> = []
  let ids = 0
  const sent: Array<{ at: number, seq: number, ts: number }> = []
  const pacer = new OpusPacer({
    holdMs,
    send: (p) => { sent.push(p.length < 12 ? { at: now, seq: -1, ts: -1 } : { at: now, seq: p.readUInt16BE(2), ts: p.readUInt32BE(4) }) },
    now: () => now,
    setTimer: (fn, ms) => { const t = { at: now + ms, fn, id: ++ids }; timers.push(t); return t.id },
    clearTimer: (id) => { const i = timers.findIndex((t) => t.id === id); if (i >= 0) timers.splice(i, 1) }
  })
  const advance = (to: number): void => {
    for (;;) {
      timers.sort((a, b) => a.at - b.at)
      const next = timers[0]
      if (next === undefined || next.at > to) break
      timers.shift()
      now = next.at
      next.fn()
    }
    now = to
  }
  return { pacer, sent, advance }
}

const gaps = (sent: Array<{ at: number }>): number[] => sent.slice(1).map((s, i) => Math.round((s.at - sent[i]!.at) * 10) / 10)

describe('the microphone pacer', () => {
  test('a burst (ffmpeg scheduled late) leaves on the 20 ms schedule of its timestamps, in order', () => {
    const c = clocked(60)
    // Three packets on time, then a stall: the next four come at once, when the last of them is due.
    for (let i = 0; i < 3; i++) { c.advance(1000 + i * 20); c.pacer.push(rtp(i * 960, i)) }
    c.advance(1120)
    for (let i = 3; i < 7; i++) c.pacer.push(rtp(i * 960, i))
    c.advance(2000)
    assert.deepEqual(c.sent.map((s) => s.seq), [0, 1, 2, 3, 4, 5, 6])
    assert.deepEqual(gaps(c.sent), [20, 20, 20, 20, 20, 20], `evenly spaced: the burst was absorbed ${JSON.stringify(c.sent)}`)
    assert.equal(c.sent[0]!.at, 1060, 'each waits at most the hold')
    assert.equal(c.pacer.stats.late, 0)
  })

  test('a stall longer than the hold goes out at once (late), and the timestamps are never changed', () => {
    const c = clocked(40)
    c.pacer.push(rtp(0, 0))
    c.advance(1200) // 180 ms late for the next
    c.pacer.push(rtp(960, 1))
    c.pacer.push(rtp(1920, 2))
    c.advance(1300)
    assert.deepEqual(c.sent.map((s) => [s.seq, s.ts]), [[0, 0], [1, 960], [2, 1920]])
    assert.equal(c.sent[1]!.at, 1200, 'sent as soon as it came')
    assert.equal(c.pacer.stats.late, 2)
  })

  test('a timestamp jump (ffmpeg restarted) starts the schedule over instead of holding packets for ever', () => {
    const c = clocked(40)
    c.pacer.push(rtp(5_000_000, 0))
    c.advance(1100)
    c.pacer.push(rtp(123, 1)) // a new stream, timestamps from elsewhere
    c.advance(1140)
    c.pacer.push(rtp(123 + 960, 2))
    c.advance(1300)
    assert.deepEqual(c.sent.map((s) => s.seq), [0, 1, 2])
    assert.equal(c.pacer.stats.restarts, 1)
    assert.ok(c.sent[1]!.at <= 1140, `the new stream's first packet waits at most the hold (${c.sent[1]!.at})`)
    assert.equal(c.sent[2]!.at, 1160, 'then its own 20 ms schedule')
  })

  test('timestamps that wrap past 2^32 stay on schedule; a datagram too short for RTP passes at once; stop drops what waits', () => {
    const c = clocked(40)
    const start = 0xffffffff - 960 + 1
    c.pacer.push(rtp(start, 0))
    c.advance(1020)
    c.pacer.push(rtp(start + 960, 1)) // wraps to 0
    c.advance(1100)
    assert.deepEqual(gaps(c.sent), [20])
    c.pacer.push(Buffer.from([1, 2, 3]))
    assert.equal(c.sent.length, 3)
    c.pacer.push(rtp(start + 960 * 10, 3)) // due at 1240: it waits
    c.pacer.stop()
    c.advance(2000)
    assert.equal(c.sent.length, 3, 'nothing after stop')
  })
})
