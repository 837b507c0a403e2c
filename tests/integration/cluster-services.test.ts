import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'

/** The cluster tests' own servers: Redis and PostgreSQL from Debian, on loopback, started and stopped by the test. */
describe('cluster test servers', () => {
  let redis: TestRedis
  let db: TestPostgres
  before(async () => {
    redis = await TestRedis.start()
    db = await TestPostgres.start()
  })
  after(async () => {
    await redis?.destroy()
    await db?.destroy()
  })

  it('Redis answers on loopback, forgets everything when restarted, and comes back on the same port', async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 })
    client.on('error', () => {})  // expected while the server is down; the test checks what it answers after
    await client.connect()
    try {
      await client.set('k', 'v')
      assert.equal(await client.get('k'), 'v')
      await redis.stop('SIGKILL')
      await redis.run()
      // ioredis reconnects by itself; the restarted server has no persistence.
      assert.equal(await client.get('k'), null)
    } finally {
      client.disconnect()
    }
  })

  it('PostgreSQL makes empty databases, refuses connections while stopped, and takes them again once resumed', async () => {
    const url = await db.createDatabase('helper_check')
    assert.match(url, /\/helper_check$/)
    assert.equal((await db.query('SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1', ['public'], 'helper_check')).rows[0].n, 0)
    await db.stop()
    await assert.rejects(db.query('SELECT 1'), /ECONNREFUSED/)
    await db.resume()
    assert.equal((await db.query('SELECT 1 AS one')).rows[0].one, 1)
  })
})
