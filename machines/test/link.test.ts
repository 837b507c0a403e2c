import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { SimulatedClock, createActor, fromCallback } from 'xstate'
import { backoffMs, linkMachine, pathOf } from '../src/link'

const flush = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)) }

function startLink (provide: Parameters<typeof linkMachine.provide>[0] = {}) {
  const clock = new SimulatedClock()
  const actor = createActor(linkMachine.provide(provide), { clock, input: { lanGraceMs: 3000, backoffMinMs: 1000, backoffMaxMs: 8000 } })
  actor.start()
  return { actor, clock, path: () => pathOf(actor.getSnapshot().value), value: () => actor.getSnapshot().value }
}

describe('link', () => {
  test('starts by waiting for the LAN hub, and uses it once it answers', () => {
    const { actor, path, value } = startLink()
    assert.deepEqual(value(), { lan: 'connecting' })
    assert.equal(path(), null)
    actor.send({ type: 'LAN_UP' })
    assert.equal(path(), 'lan')
  })

  test('a short hub outage within the grace period does not switch paths', () => {
    const { actor, clock, value } = startLink()
    actor.send({ type: 'LAN_UP' })
    actor.send({ type: 'LAN_DOWN' })
    clock.increment(2999)
    actor.send({ type: 'LAN_UP' })
    assert.deepEqual(value(), { lan: 'up' })
  })

  test('with the hub gone and no other path built, it backs off and tries the hub again, doubling up to the cap', async () => {
    const { actor, clock, value } = startLink()
    actor.send({ type: 'LAN_UP' })
    actor.send({ type: 'LAN_DOWN' })
    clock.increment(3000)
    await flush() // direct fails, then cloud fails
    assert.equal(value(), 'offline')
    assert.equal(actor.getSnapshot().context.attempt, 1)
    assert.match(actor.getSnapshot().context.lastError ?? '', /cloud path is not available/)
    clock.increment(999)
    assert.equal(value(), 'offline')
    clock.increment(1)
    assert.deepEqual(value(), { lan: 'connecting' })
    clock.increment(3000)
    await flush()
    assert.equal(actor.getSnapshot().context.attempt, 2)
    clock.increment(1999)
    assert.equal(value(), 'offline', 'the second wait is twice the first')
    clock.increment(1)
    assert.deepEqual(value(), { lan: 'connecting' })
    assert.deepEqual([1, 2, 3, 4, 5].map((a) => backoffMs(a, 1000, 8000)), [1000, 2000, 4000, 8000, 8000])
  })

  test('direct is tried before the cloud, and the hub wins back as soon as it answers, closing the direct connections', async () => {
    let closed = 0
    const { actor, clock, path, value } = startLink({
      actors: {
        direct: fromCallback(({ sendBack }) => {
          setTimeout(() => { sendBack({ type: 'DIRECT_UP' }) }, 0)
          return () => { closed++ }
        })
      }
    })
    clock.increment(3000)
    assert.deepEqual(value(), { direct: 'connecting' })
    await new Promise((r) => setTimeout(r, 5))
    assert.equal(path(), 'direct')
    actor.send({ type: 'LAN_UP' })
    assert.equal(path(), 'lan')
    assert.equal(closed, 1, 'leaving the direct state stops its actor')
    assert.equal(actor.getSnapshot().context.attempt, 0)
  })

  test('losing the last direct connection goes back to the hub, then direct again after the grace period', async () => {
    let dials = 0
    const { actor, clock, value } = startLink({
      actors: { direct: fromCallback(({ sendBack }) => { dials++; sendBack({ type: 'DIRECT_UP' }) }) }
    })
    clock.increment(3000)
    await flush()
    assert.deepEqual(value(), { direct: 'up' })
    actor.send({ type: 'DIRECT_DOWN' })
    assert.deepEqual(value(), { lan: 'connecting' })
    clock.increment(3000)
    await flush()
    assert.deepEqual(value(), { direct: 'up' })
    assert.equal(dials, 2)
  })

  test('a direct path that reaches no device moves on to the cloud, with the reason kept', async () => {
    const { clock, value, actor } = startLink({
      actors: {
        direct: fromCallback(({ sendBack }) => { sendBack({ type: 'DIRECT_FAILED', message: 'no doorbell answered' }) }),
        cloud: fromCallback(() => {})
      }
    })
    clock.increment(3000)
    await flush()
    assert.deepEqual(value(), { cloud: 'connecting' })
    assert.equal(actor.getSnapshot().context.lastError, 'no doorbell answered')
  })

  test('the cloud is used when direct fails; a blip is ridden out by the same client; a loss that lasts goes back to trying the hub', async () => {
    let closed = 0
    const { actor, clock, path, value } = startLink({ actors: { cloud: fromCallback(({ sendBack }) => { sendBack({ type: 'CLOUD_UP' }); return () => { closed++ } }) } })
    clock.increment(3000)
    await flush()
    assert.equal(path(), 'cloud')
    actor.send({ type: 'CLOUD_DOWN' })
    assert.deepEqual(value(), { cloud: 'connecting' })
    actor.send({ type: 'CLOUD_UP' })
    assert.equal(path(), 'cloud')
    assert.equal(closed, 0, 'the client that reconnected by itself is kept')
    actor.send({ type: 'CLOUD_DOWN' })
    clock.increment(15_000)
    assert.equal(value(), 'offline')
    assert.equal(closed, 1, 'leaving the cloud state stops its actor, which closes its connections')
    clock.increment(1000)
    assert.deepEqual(value(), { lan: 'connecting' })
  })

  test('the hub wins back from the cloud as soon as it answers, closing the cloud connections', async () => {
    let closed = 0
    const { actor, clock, path } = startLink({ actors: { cloud: fromCallback(({ sendBack }) => { sendBack({ type: 'CLOUD_UP' }); return () => { closed++ } }) } })
    clock.increment(3000)
    await flush()
    assert.equal(path(), 'cloud')
    actor.send({ type: 'LAN_UP' })
    assert.equal(path(), 'lan')
    assert.equal(closed, 1)
    assert.equal(actor.getSnapshot().context.attempt, 0)
  })

  test('a cloud that does not come up in time ends the round: backoff, then the hub again', async () => {
    let closed = 0
    const { clock, value, actor } = startLink({ actors: { cloud: fromCallback(() => () => { closed++ }) } })
    clock.increment(3000)
    await flush()
    assert.deepEqual(value(), { cloud: 'connecting' })
    clock.increment(15_000)
    assert.equal(value(), 'offline')
    assert.equal(closed, 1)
    assert.equal(actor.getSnapshot().context.lastError, 'the cloud did not answer in time')
  })

  test('the hub is an invoked actor too: alive in every state, its LAN_UP wins from any path, stopped only with the machine', async () => {
    let started = 0
    let stopped = 0
    let hub: ((up: boolean) => void) | null = null
    const { actor, clock, path, value } = startLink({
      actors: {
        lan: fromCallback(({ sendBack }) => {
          started++
          hub = (up) => { sendBack({ type: up ? 'LAN_UP' : 'LAN_DOWN' }) }
          return () => { stopped++; hub = null }
        }),
        direct: fromCallback(({ sendBack }) => { sendBack({ type: 'DIRECT_FAILED', message: 'no doorbell answered' }) }),
        cloud: fromCallback(({ sendBack }) => { sendBack({ type: 'CLOUD_UP' }) })
      }
    })
    assert.equal(started, 1)
    hub!(true)
    assert.equal(path(), 'lan')
    hub!(false)
    clock.increment(3000)
    await flush()
    assert.equal(path(), 'cloud', 'direct failed, the cloud came up')
    hub!(true)
    assert.equal(path(), 'lan', 'the hub actor\'s own LAN_UP wins back from the cloud')
    hub!(false)
    clock.increment(3000)
    await flush()
    assert.equal(path(), 'cloud')
    actor.send({ type: 'CLOUD_FAILED', message: 'credentials refused' })
    assert.equal(value(), 'offline')
    assert.deepEqual([started, stopped], [1, 0], 'one hub actor for the whole life of the machine, through every state')
    actor.stop()
    assert.deepEqual([started, stopped], [1, 1], 'stopping the machine stops it')
  })

  test('without a hub actor, no hub ever answers: the machine moves on after the grace period', async () => {
    const { clock, value } = startLink()
    clock.increment(2999)
    assert.deepEqual(value(), { lan: 'connecting' })
    clock.increment(1)
    await flush()
    assert.equal(value(), 'offline')
  })

  test('a cloud that cannot start (not set up, credentials refused) backs off with its reason kept', async () => {
    const { clock, value, actor } = startLink({ actors: { cloud: fromCallback(({ sendBack }) => { sendBack({ type: 'CLOUD_FAILED', message: 'cloud signaling refused the credentials' }) }) } })
    clock.increment(3000)
    await flush()
    assert.equal(value(), 'offline')
    assert.equal(actor.getSnapshot().context.lastError, 'cloud signaling refused the credentials')
  })
})
