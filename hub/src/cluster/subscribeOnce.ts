import type { BrokerBackend } from '../broker/module'

type Persistence = BrokerBackend['persistence']
interface Sub { topic: string }

/**
 * aedes stores a persistent session's SUBSCRIBE once per topic, in parallel, each time with the
 * packet's whole list (`addSubscriptions(client, packet.subscriptions)`). aedes-persistence-redis
 * then waits for its own `$SYS/sub/add` echo under one key per client and first topic: the second
 * wait replaces the first, whose promise never settles, so a SUBSCRIBE of two or more topics
 * never got its SUBACK. A doorbell subscribes to four (its inbox, commands, the revocation list,
 * the replies) with `clean: false`: on a cluster's hub it never heard a revocation. Here calls
 * with the same client and first topic share one store when they carry the same topics, and wait
 * for the one in flight when they do not, so no two waits ever share a key.
 */
export function subscribeOnce (persistence: Persistence): Persistence {
  const store = (persistence as unknown as { addSubscriptions: (client: { id: string }, subs: Sub[]) => Promise<unknown> })
  const add = store.addSubscriptions.bind(persistence)
  const inFlight = new Map<string, { topics: string, done: Promise<unknown> }>()
  store.addSubscriptions = async (client, subs) => {
    if (subs.length === 0) return await add(client, subs)
    const key = `${client.id}\u0000${subs[0]!.topic}`
    const topics = subs.map((s) => s.topic).join('\u0000')
    const running = inFlight.get(key)
    if (running !== undefined && running.topics === topics) return await running.done
    const after = running?.done.catch(() => {}) ?? Promise.resolve()
    const done = after.then(async () => await add(client, subs))
    const entry = { topics, done }
    inFlight.set(key, entry)
    try {
      return await done
    } finally {
      if (inFlight.get(key) === entry) inFlight.delete(key)
    }
  }
  return persistence
}
