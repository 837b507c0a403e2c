import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Aedes } from 'aedes'
import { memoryLogger } from '@doorbell/core'
import { redisBrokerBackend } from '../../hub/src/cluster/redisBroker'
import { TestRedis } from '../src/redis'

/**
 * A cluster hub's broker stopping on real Redis: aedes-persistence-redis sends some commands
 * without waiting for them (a will's `lrem` and `rpush`). One that meets a closed connection (a
 * client's will removed as the hub stops) is refused with "Connection is closed."; that refusal
 * must reach the one who waits (aedes, which ignores it) and never be an unhandled rejection, which
 * would end a hub that runs with Node's default (the flaky after-hook of acl-matrix's cluster variant).
 */
test('a will set and removed after the broker\'s Redis persistence closed, and commands sent on the emitter\'s closed connections: refused to their callers, nothing unhandled', { timeout: 30_000 }, async (t) => {
  const redis = await TestRedis.start()
  t.after(async () => { await redis.stop() })
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.after(() => { process.off('unhandledRejection', onUnhandled) })

  const backend = redisBrokerBackend({ nodeId: 'stop', redisUrl: redis.url, postgresUrl: 'postgres://unused/db' } as never, memoryLogger([], 'broker'))
  const broker = await Aedes.createBroker({ id: backend.id!, persistence: backend.persistence as never, mq: backend.mq })
  const persistence = backend.persistence as unknown as {
    putWill: (client: { id: string }, packet: Record<string, unknown>) => Promise<void>
    delWill: (client: { id: string, brokerId: string }) => Promise<unknown>
    destroy: () => Promise<void>
  }
  const will = { topic: 'doorbell/home/front/presence', payload: Buffer.from('{}'), qos: 1, retain: true }
  await persistence.putWill({ id: 'front' }, { ...will })
  assert.notEqual(await persistence.delWill({ id: 'front', brokerId: 'stop' }), null, 'the will was stored and removed while Redis was open')

  await new Promise<void>((resolve) => broker.close(() => resolve()))
  await persistence.destroy()
  await assert.rejects(persistence.delWill({ id: 'front', brokerId: 'stop' }), /Connection is closed/)
  await assert.rejects(persistence.putWill({ id: 'front' }, { ...will }), /Connection is closed/)
  // A command refused by the emitter's two connections, closed with the broker (mqemitter-redis
  // sends its `quit` without waiting for it): a caller that waits sees the refusal, and one that
  // does not wait leaves nothing unhandled.
  const { pubConn, subConn } = backend.mq as unknown as { pubConn: { get: (k: string) => Promise<unknown>, disconnect: () => void }, subConn: { ping: () => Promise<unknown>, disconnect: () => void } }
  const waited = pubConn.get('doorbell:none')
  void subConn.ping()
  pubConn.disconnect()
  subConn.disconnect()
  await assert.rejects(waited, /Connection is closed/)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.deepEqual(unhandled.map(String), [])
})
