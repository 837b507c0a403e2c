import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { ClusterConfig, Logger } from '@doorbell/core'
import { Redis } from 'ioredis'
import mqemitterRedis from 'mqemitter-redis'
import type { BrokerBackend } from '../broker/module'
import { subscribeOnce } from './subscribeOnce'

// aedes 1 calls the async persistence interface; the package's main export is the callback one.
const AsyncRedisPersistence = createRequire(import.meta.url)('aedes-persistence-redis/asyncPersistence.js') as new (o: Record<string, unknown>) => BrokerBackend['persistence']

/**
 * The broker of a cluster's hub: messages between hubs through Redis pub/sub (mqemitter-redis:
 * a ring published through hub A reaches the screens signed in on B and C), and retained
 * messages, persistent sessions, their subscriptions and queued QoS 1 messages in Redis
 * (aedes-persistence-redis: a screen whose hub died finds its session on the next one).
 */
export function redisBrokerBackend (cluster: ClusterConfig, log: Logger): BrokerBackend {
  const mq = mqemitterRedis({ connectionString: cluster.redisUrl })
  // Our own connection, so that its errors (Redis restarting) are heard: unheard, they end the process.
  const conn = new Redis(cluster.redisUrl, { maxRetriesPerRequest: null })
  const persistence = new AsyncRedisPersistence({
    conn,
    // A screen away for weeks must not fill Redis: the most recent rings, as the sqlite persistence keeps.
    maxSessionDelivery: 1000
  })
  // aedes 1 pipes the retained stream (`.pipe`); this persistence returns an async generator.
  const combi = persistence.createRetainedStreamCombi.bind(persistence) as (patterns: string[]) => AsyncIterable<unknown>
  Object.assign(persistence, {
    createRetainedStreamCombi: (patterns: string[]) => Readable.from(combi(patterns)),
    createRetainedStream: (pattern: string) => Readable.from(combi([pattern]))
  })
  let warned = false
  for (const c of [conn as unknown as EventLike, (mq as unknown as { pubConn: EventLike }).pubConn, (mq as unknown as { subConn: EventLike }).subConn]) {
    c.on('error', (err: Error) => { if (!warned) { warned = true; log.warn('Redis is unreachable; retrying', { error: err.message }) } })
    c.on('ready', () => { if (warned) { warned = false; log.info('Redis is back') } })
  }
  // mqemitter-redis re-emits its connections' errors on `state`: unheard, they end the process.
  ;(mq as unknown as { state: EventLike }).state.on('error', () => {})
  return { id: cluster.nodeId, persistence: subscribeOnce(persistence), mq }
}

interface EventLike { on: (event: string, listener: (...args: never[]) => void) => void }
