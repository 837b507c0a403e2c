import type { Aedes, Client } from 'aedes'
import type { Logger, Startable } from '@doorbell/core'
import { Redis } from 'ioredis'
import { z } from 'zod'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import type { Principal } from '../broker/gate'

/** One signed-in MQTT client: which member, as which device or screen, on which hub, since when. */
export const Connected = z.strictObject({
  clientId: z.string().max(200),
  kind: z.enum(['device', 'viewer', 'integration']),
  memberId: z.string().max(64),
  name: z.string().max(200),
  /** The device's or screen's own id (`deviceId`, `viewerId`, integration id). */
  subject: z.string().max(200),
  hub: z.string().max(64),
  /** When it signed in (null: not recorded, on a single hub). */
  since: z.number().int().nonnegative().nullable()
})
export type Connected = z.infer<typeof Connected>

/** Who is connected: to this hub (one hub), or to any hub of the cluster. */
export interface PresenceSource { list: () => Promise<Connected[]> }

function entryOf (client: Client, who: Principal, hub: string, since: number | null): Connected {
  const subject = who.kind === 'device' ? who.deviceId : who.kind === 'viewer' ? who.viewerId : who.integrationId
  return { clientId: client.id, kind: who.kind, memberId: who.member.id, name: who.member.name, subject, hub, since }
}

/** One hub: its own broker's signed-in clients. */
export function localPresence (d: { broker: () => Aedes, principalOf: (client: Client) => Principal | null, hub: string }): PresenceSource {
  return {
    list: async () => Object.values((d.broker() as unknown as { clients: Record<string, Client> }).clients).flatMap((client) => {
      const who = d.principalOf(client)
      return who === null ? [] : [entryOf(client, who, d.hub, null)]
    })
  }
}

/** How often a hub writes its whole list again, and how long Redis keeps it without that. */
export const PRESENCE_REFRESH_MS = 5000
export const PRESENCE_TTL_S = 15

/**
 * A cluster's presence in Redis: each hub keeps its signed-in clients in a hash of its own
 * (`doorbell:{home}:presence:{node}`), set on connect and removed on disconnect, and written whole
 * again every 5 s with a 15 s expiry: a hub that dies (SIGKILL, no goodbye) drops out within
 * 15 s, and a Redis that restarted empty is filled again within 5 s. Any hub reads every hub's.
 */
export function clusterPresence (d: { redisUrl: string, homeId: string, nodeId: string, broker: () => Aedes, principalOf: (client: Client) => Principal | null, log: Logger }): Startable & PresenceSource {
  const prefix = `doorbell:${d.homeId}:presence`
  const mine = `${prefix}:${d.nodeId}`
  const nodes = `${prefix}:nodes`
  const here = new Map<string, Connected>()
  let redis: Redis | null = null
  let timer: NodeJS.Timeout | null = null
  const quiet = (what: string) => (err: Error): void => { d.log.warn(`presence: could not ${what}`, { error: err.message }) }
  const refresh = async (r: Redis): Promise<void> => {
    const m = r.multi().del(mine)
    if (here.size > 0) m.hset(mine, Object.fromEntries([...here].map(([id, c]) => [id, JSON.stringify(c)]))).expire(mine, PRESENCE_TTL_S)
    await m.sadd(nodes, d.nodeId).exec()
  }
  return {
    name: 'presence',
    async start () {
      const r = new Redis(d.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 })
      r.on('error', () => { /* ioredis retries; the next refresh writes it all again */ })
      await r.connect()
      redis = r
      const b = d.broker()
      b.on('client', (client) => {
        const who = d.principalOf(client)
        if (who === null) return
        const entry = entryOf(client, who, d.nodeId, Date.now())
        here.set(client.id, entry)
        r.multi().hset(mine, client.id, JSON.stringify(entry)).expire(mine, PRESENCE_TTL_S).exec().catch(quiet('record a connection'))
      })
      b.on('clientDisconnect', (client) => {
        if (!here.delete(client.id)) return
        r.hdel(mine, client.id).catch(quiet('record a disconnection'))
      })
      await refresh(r)
      timer = setInterval(() => { refresh(r).catch(quiet('refresh')) }, PRESENCE_REFRESH_MS)
      timer.unref()
    },
    async stop () {
      if (timer !== null) clearInterval(timer)
      timer = null
      const r = redis
      redis = null
      if (r === null) return
      await r.del(mine).catch(() => {})
      r.disconnect()
    },
    async list () {
      const r = redis
      if (r === null) throw new Error('presence has not started')
      const out: Connected[] = []
      for (const node of await r.smembers(nodes)) {
        for (const text of Object.values(await r.hgetall(`${prefix}:${node}`))) {
          const parsed = Connected.safeParse((() => { try { return JSON.parse(text) as unknown } catch { return null } })())
          if (parsed.success) out.push(parsed.data)
        }
      }
      return out
    }
  }
}

/**
 * `GET /api/presence` (owner): the devices and screens signed in now, on any hub of a cluster,
 * and how many each hub holds (`hubs`): the figures of who is connected where.
 */
export function presenceRoutes (source: () => PresenceSource): ApiRoutes {
  return (app, hooks) => {
    app.get('/api/presence', { onRequest: hooks.ownerOnly }, async (_request, reply) => {
      let connected: Connected[]
      try {
        connected = await source().list()
      } catch (err) {
        return sendJson(reply, 503, { error: `who is connected cannot be read now (${(err as Error).message})` })
      }
      const hubs: Record<string, { devices: number, screens: number }> = {}
      for (const c of connected) {
        const h = hubs[c.hub] ?? (hubs[c.hub] = { devices: 0, screens: 0 })
        if (c.kind === 'device') h.devices++
        if (c.kind === 'viewer') h.screens++
      }
      return sendJson(reply, 200, { connected, hubs })
    })
  }
}
