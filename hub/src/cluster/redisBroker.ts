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
  for (const c of [conn, (mq as unknown as { pubConn: Redis }).pubConn, (mq as unknown as { subConn: Redis }).subConn]) heardFireAndForget(c)
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
  // A removed member's persistent sessions and what is queued for them, on every hub at once.
  Object.assign(persistence, { dropSessions: async (which: (clientId: string) => boolean) => await dropSessions(conn, persistence, which) })
  let warned = false
  for (const c of [conn as unknown as EventLike, (mq as unknown as { pubConn: EventLike }).pubConn, (mq as unknown as { subConn: EventLike }).subConn]) {
    c.on('error', (err: Error) => { if (!warned) { warned = true; log.warn('Redis is unreachable; retrying', { error: err.message }) } })
    c.on('ready', () => { if (warned) { warned = false; log.info('Redis is back') } })
  }
  // mqemitter-redis re-emits its connections' errors on `state`: unheard, they end the process.
  ;(mq as unknown as { state: EventLike }).state.on('error', () => {})
  return { id: cluster.nodeId, persistence: subscribeOnce(persistence), mq, observeOthers: othersOf(mq, cluster.nodeId) }
}

/**
 * Every message published through another hub, heard before any of this hub's subscribers gets
 * it: mqemitter-redis hands each message from Redis to its local `_emit`, which runs the
 * subscribers; the listener runs first, so a rule it feeds (the fail-secure stale state) is up to
 * date before the message is forwarded here. This hub's own messages come back from Redis too:
 * they are skipped (the broker observed them as they were published, in order). Only messages
 * on `patterns` are sure to arrive: Redis sends a hub only the channels it subscribed.
 */
function othersOf (mq: unknown, nodeId: string): BrokerBackend['observeOthers'] {
  const emitter = mq as { _emit: (msg: Record<string, unknown>, cb?: unknown) => unknown, on: (topic: string, notify: (msg: unknown, cb: () => void) => void) => void }
  const listeners: Array<(packet: { topic: string, payload: Buffer | string }) => void> = []
  const local = emitter._emit.bind(emitter)
  emitter._emit = (msg, cb) => {
    if (msg.brokerId !== nodeId && typeof msg.topic === 'string' && (Buffer.isBuffer(msg.payload) || typeof msg.payload === 'string')) {
      for (const l of listeners) l({ topic: msg.topic, payload: msg.payload })
    }
    return local(msg, cb)
  }
  return (patterns, listener) => {
    // Redis sends a hub only the channels it subscribed: these, even while none of its clients does.
    for (const p of patterns) emitter.on(p, (_msg, cb) => { cb() })
    listeners.push(listener)
  }
}

/**
 * aedes-persistence-redis and mqemitter-redis send some commands without waiting for them (`lrem`
 * and `rpush` in putWill, delWill and a stale queue entry's clean-up; `quit` as the emitter
 * closes). One still in flight when its connection closes (a client's will removed as the hub
 * stops) is rejected with "Connection is closed.", and that rejection had no listener: an
 * unhandled rejection, which fails the process's test run (seen in CI after a cluster hub's stop).
 * Here every command sent on the connection gets one, and its promise is still returned, so a
 * caller that waits sees the error as before.
 */
function heardFireAndForget (conn: Redis): void {
  const send = conn.sendCommand.bind(conn)
  Object.defineProperty(conn, 'sendCommand', {
    value: (...args: Parameters<Redis['sendCommand']>) => {
      const sent = send(...args)
      if (sent instanceof Promise) sent.catch(() => {})
      return sent
    }
  })
}

interface EventLike { on: (event: string, listener: (...args: never[]) => void) => void }

/**
 * Drops the persistent sessions `which` picks (a removed member's): their subscriptions go through
 * the persistence's own `cleanSubscriptions`, which tells every hub's subscription index, so no hub
 * queues a ring for them again; their queued messages are taken off Redis in one MULTI, so when
 * several hubs hear the same removal, only one finds the queue and releases its packets. Key
 * names are aedes-persistence-redis 12's (`clients`, `client:<id>`, `outgoing:<id>`, `packet:<broker>:<counter>`).
 */
async function dropSessions (conn: Redis, persistence: BrokerBackend['persistence'], which: (clientId: string) => boolean): Promise<string[]> {
  const ids = (await conn.smembers('clients')).filter(which)
  const clean = persistence as unknown as { cleanSubscriptions: (client: { id: string }) => Promise<void> }
  const take = async (listKey: string): Promise<string[]> => ((await conn.multi().lrange(listKey, 0, -1).del(listKey).exec())?.[0]?.[1] ?? []) as string[]
  for (const id of ids) {
    const listKey = `outgoing:${encodeURIComponent(id)}`
    // The queue first: `cleanSubscriptions` deletes it without releasing its packets. Again after,
    // for a ring queued in between.
    const queued = await take(listKey)
    await clean.cleanSubscriptions({ id })
    queued.push(...await take(listKey))
    for (const key of queued) {
      // A QoS 1 entry names the shared packet (counted per session); a QoS 2 one, this session's own copy of it.
      let packet = key
      if (key.startsWith(`${listKey}:`)) {
        await conn.del(key)
        packet = `packet:${key.slice(listKey.length + 1)}`
      }
      if (!packet.startsWith('packet:')) continue
      if (await conn.decr(`${packet}:offlineCount`) <= 0) await conn.del(packet, `${packet}:offlineCount`)
    }
    await conn.srem('clients', id)
  }
  return ids
}
