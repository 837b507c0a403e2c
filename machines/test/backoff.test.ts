import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BACKOFF, BackoffError, backoffDelay } from '../src/backoff'
import { backoffMs } from '../src/link'

test('the backoff doubles from the first wait up to the cap, and stays there', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 12, 100].map((n) => backoffDelay(n, BACKOFF.feed)), [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000])
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, BACKOFF.kvsMaster)), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000])
  // A doorbell offline for weeks: the exponent must not overflow to Infinity or NaN.
  assert.equal(backoffDelay(10_000, BACKOFF.kvsMaster), 30_000)
  assert.equal(backoffDelay(0, { firstMs: 0, maxMs: 0 }), 0)
})

test('jitter spreads each wait by ± the fraction, from the random source given', () => {
  const { iot } = BACKOFF
  assert.equal(backoffDelay(1, iot, () => 0), 1500, 'the lowest: 75 % of 2 s')
  assert.equal(backoffDelay(1, iot, () => 0.5), 2000, 'the middle: exactly 2 s')
  assert.equal(backoffDelay(1, iot, () => 0.999999), 2500, 'the highest: 125 % of 2 s')
  assert.equal(backoffDelay(9, iot, () => 0), 22_500, 'the cap is jittered too')
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(3, iot)
    assert.ok(d >= 6000 && d <= 10_000, `${d} within 8 s ± 25 %`)
  }
})

test('a bad attempt or policy is refused with a typed error', () => {
  for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => backoffDelay(bad, BACKOFF.feed), (err: Error) => err instanceof BackoffError && err instanceof RangeError && err.name === 'BackoffError')
  }
  assert.throws(() => backoffDelay(0, { firstMs: 2000, maxMs: 1000 }), BackoffError)
  assert.throws(() => backoffDelay(0, { firstMs: -1, maxMs: 1000 }), BackoffError)
  assert.throws(() => backoffDelay(0, { firstMs: 1, maxMs: 2, jitter: 1 }), BackoffError)
})

test('the link machine\'s rounds use it: round 1 waits the first delay', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((a) => backoffMs(a, 1000, 8000)), [1000, 1000, 2000, 4000, 8000, 8000])
})
