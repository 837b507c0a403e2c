import { test } from 'node:test'
import assert from 'node:assert/strict'
import { doorbellReplies, repliesToOffer } from '../src/composables/doorbellReplies'

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve)) }

test('the banner offers the hub\'s list while the hub is up, else the doorbell\'s own once read, else the hub\'s last', () => {
  assert.deepEqual(repliesToOffer('lan', ['hub'], ['doorbell']), ['hub'])
  assert.deepEqual(repliesToOffer('direct', ['hub'], ['doorbell']), ['doorbell'])
  assert.deepEqual(repliesToOffer('cloud', [], ['doorbell']), ['doorbell'], 'a page that never read the hub\'s list still has replies')
  assert.deepEqual(repliesToOffer('direct', ['hub'], undefined), ['hub'])
  assert.deepEqual(repliesToOffer('cloud', ['hub'], []), [], 'the doorbell plays none: none offered')
})

test('a ring with the hub down reads the doorbell\'s list for that doorbell; on the hub\'s path nothing is read; a refusal falls back and says why', async () => {
  const logged: string[] = []
  const r = doorbellReplies((m) => { logged.push(m) })
  const reads: string[] = []
  r.ring('front-door', 'r1', 'lan', async (id) => { reads.push(id); return ['x'] })
  assert.equal(reads.length, 0, 'the hub is up: its list is the one')
  r.ring('front-door', 'r1', 'direct', async (id) => { reads.push(id); return ['Leave it at the door'] })
  await settle()
  assert.deepEqual(reads, ['front-door'])
  // The visitor presses again: the same ring, not another read.
  r.ring('front-door', 'r1', 'direct', async (id) => { reads.push(id); return ['Leave it at the door'] })
  await settle()
  assert.deepEqual(reads, ['front-door'], 'read once per ring')
  assert.deepEqual(r.offer('front-door', 'direct', ['old list']), ['Leave it at the door'])
  assert.deepEqual(r.offer('back-door', 'direct', ['old list']), ['old list'], 'another doorbell keeps its own')
  assert.deepEqual(r.offer('front-door', 'lan', ['hub list']), ['hub list'], 'the hub back: its list again')
  r.ring('front-door', 'r2', 'cloud', async () => { throw new Error('the doorbell refused: Guest phone may not talk') })
  await settle()
  assert.deepEqual(r.offer('front-door', 'cloud', ['old list']), ['old list'])
  assert.match(logged[0] ?? '', /front-door could not be read from it: the doorbell refused: Guest phone may not talk/)
})
