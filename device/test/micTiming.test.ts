import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { MicrophoneTiming, SILENT_PAYLOAD_BYTES, type Onset } from '../src/audio/timing'

/** An Opus RTP packet with this timestamp and a payload of `bytes` (silence is a few bytes). */
const rtp = (ts: number, bytes: number): Buffer => {
  const b = Buffer.alloc(12 + bytes)
  b[0] = 0x80
  b[1] = 111
  b.writeUInt32BE(ts >>> 0, 4)
  return b
}

function clocked () {
  let now = 1000
  const onsets: Onset[] = []
  const timing = new MicrophoneTiming((o) => { onsets.push(o) }, () => now)
  return { timing, onsets, set: (t: number) => { now = t } }
}

describe('MicrophoneTiming: where the microphone packets spend their time', () => {
  test('packets on their 20 ms schedule are 0 ms late; one ffmpeg held back is as late as it was held', (t) => {
    const { timing, set } = clocked()
    t.after(() => { timing.stop() })
    for (let i = 0; i < 10; i++) {
      set(1000 + i * 20)
      const due = timing.arrived(rtp(i * 960, 3))!
      timing.handed(due, 1000 + i * 20)
    }
    // The 11th comes 90 ms late and leaves 5 ms after it came.
    set(1000 + 10 * 20 + 90)
    const due = timing.arrived(rtp(10 * 960, 3))!
    set(1000 + 10 * 20 + 95)
    timing.handed(due, 1000 + 10 * 20 + 94)
    const r = timing.report()
    assert.equal(r.packets, 11)
    assert.equal(r.arrival.p50, 0)
    assert.equal(r.arrival.max, 90)
    assert.equal(r.sent.max, 95)
    assert.equal(r.handOver.max, 1)
    // A report starts the next period.
    assert.equal(timing.report().packets, 0)
  })

  test("the loop's figure is how late it ran the probe's timer: an idle loop reads well under the 10 ms period", async (t) => {
    const timing = new MicrophoneTiming(() => {})
    t.after(() => { timing.stop() })
    // About 25 runs of the probe's 10 ms timer on a loop doing nothing else.
    await new Promise((resolve) => setTimeout(resolve, 250))
    const { loop } = timing.report()
    // perf_hooks records the whole interval (~10 ms when idle); the report takes the period off.
    assert.ok(loop.p50 >= 0 && loop.p50 < 5, `an idle loop's median lateness: ${loop.p50} ms`)
    assert.ok(loop.max >= loop.p99 && loop.p99 >= loop.p50)
  })

  test('an onset is the first loud packet after silence, reported once it is handed on', (t) => {
    const { timing, onsets, set } = clocked()
    t.after(() => { timing.stop() })
    let ts = 0
    const send = (bytes: number): void => {
      ts += 960
      set(1000 + ts / 48)
      const due = timing.arrived(rtp(ts, bytes))!
      set(1000 + ts / 48 + 2)
      timing.handed(due, 1000 + ts / 48 + 1)
    }
    // Loud without silence before it: no onset (it could be mid-sentence).
    send(80)
    for (let i = 0; i < 12; i++) send(SILENT_PAYLOAD_BYTES)
    assert.equal(onsets.length, 0)
    send(80)
    send(80)
    assert.equal(onsets.length, 1)
    assert.equal(onsets[0]!.sentAt - onsets[0]!.arrivedAt, 2)
  })

  test('a datagram too short to be RTP is not timed', (t) => {
    const { timing } = clocked()
    t.after(() => { timing.stop() })
    assert.equal(timing.arrived(Buffer.alloc(4)), null)
    assert.equal(timing.report().packets, 0)
  })
})
