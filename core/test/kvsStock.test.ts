import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeedRing, StockDoorbell, seedRingTopic, stockChannelName } from '../src/index'

const doorbell = {
  id: 'kvs-abcd1234',
  name: 'Seed doorbell',
  region: 'eu-west-1',
  channel: 'front-door',
  iotEndpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com',
  ringTopic: seedRingTopic('front-door')
}

test('the seed\'s ring: its exact payload parses; anything else is refused with a reason', () => {
  assert.equal(seedRingTopic('front-door'), 'doorbell/front-door/ring')
  assert.deepEqual(SeedRing.parse({ event: 'ring', channel: 'front-door', timestamp: 1733400000 }), { event: 'ring', channel: 'front-door', timestamp: 1733400000 })
  const bad = [
    { event: 'ring', channel: 'front-door' },
    { event: 'press', channel: 'front-door', timestamp: 1733400000 },
    { event: 'ring', channel: 'front door', timestamp: 1733400000 },
    // milliseconds, not seconds
    { event: 'ring', channel: 'front-door', timestamp: 1733400000000 },
    { event: 'ring', channel: 'front-door', timestamp: 1733400000.5 },
    { event: 'ring', channel: 'front-door', timestamp: 1733400000, extra: true },
    'ring', null, []
  ]
  for (const b of bad) assert.equal(SeedRing.safeParse(b).success, false, JSON.stringify(b))
})

test('a stock doorbell: a channel name or ARN, a ring topic without wildcards; bad fields are named', () => {
  assert.equal(StockDoorbell.safeParse(doorbell).success, true)
  const arn = 'arn:aws:kinesisvideo:eu-west-1:123456789012:channel/front-door/1700000000000'
  assert.equal(StockDoorbell.safeParse({ ...doorbell, channel: arn }).success, true)
  assert.equal(stockChannelName(arn), 'front-door')
  assert.equal(stockChannelName('front-door'), 'front-door')
  const field = (patch: object): string | undefined => {
    const r = StockDoorbell.safeParse({ ...doorbell, ...patch })
    return r.success ? undefined : String(r.error.issues[0]?.path[0])
  }
  assert.equal(field({ channel: 'front door' }), 'channel')
  assert.equal(field({ ringTopic: 'doorbell/+/ring' }), 'ringTopic')
  assert.equal(field({ ringTopic: 'doorbell/#' }), 'ringTopic')
  assert.equal(field({ ringTopic: '/doorbell/x/ring' }), 'ringTopic')
  assert.equal(field({ region: 'Europe' }), 'region')
  assert.equal(field({ iotEndpoint: 'https://x' }), 'iotEndpoint')
  assert.equal(field({ name: '  ' }), 'name')
  assert.equal(field({ kvsEndpoint: 'http://127.0.0.1:1' }), 'kvsEndpoint')
  assert.equal(StockDoorbell.safeParse({ ...doorbell, secret: 'x' }).success, false, 'strict: nothing else is kept')
})
