import type { Aedes } from 'aedes'
import { DoorGuard, Grant, RepliesMessage, RepliesRequest, SignedReplies, peek, topics, type Logger, type RepliesResponse } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import { fileRepliesStore, type RepliesStore } from './store'

/**
 * `/api/replies`: the owner's quick replies. `PUT` (the owner) takes the list signed by the
 * owner's own key with the owner's grant beside it, checked as a doorbell checks it (DoorGuard:
 * a live owner of this home, the owner's signature, newer than the one held) and signed by the
 * member who sends it; the hub keeps it (`store`: `dataDir/replies.json`, or PostgreSQL in a
 * cluster, where the newest kept is read again on each request) and retains it on
 * `doorbell/{home}/replies` for the doorbells, which check it again. `GET` (any member): the
 * list as it stands, for the call view and the ring banner.
 */
export function repliesRoutes (d: { dataDir: string, homeId: string, homeKey: () => string, broker: () => Aedes, log: Logger, store?: () => RepliesStore, shared?: boolean }): ApiRoutes {
  const store = d.store?.() ?? fileRepliesStore(d.dataDir)
  let guard: DoorGuard | null = null
  let current: { signed: SignedReplies, replies: string[], at: number } | null = null
  /** Takes the kept list if it is newer than the one held (another hub's change, in a cluster). */
  const takeKept = async (g: DoorGuard): Promise<void> => {
    const kept = await store.load()
    if (kept.problem !== undefined) d.log.warn('could not read the kept quick replies', { error: kept.problem })
    if (kept.signed === null) return
    const r = await g.takeReplies(kept.signed)
    if (!r.ok) d.log.warn('ignored the kept quick replies', { error: r.message })
    else if (r.changed) current = { signed: kept.signed, replies: r.list.replies, at: r.list.at }
  }
  // The hub's own check is the doorbell's; the kept list is taken on first use (on every use when shared).
  const ready = async (): Promise<DoorGuard> => {
    if (guard !== null) {
      if (d.shared === true) await takeKept(guard)
      return guard
    }
    const g = new DoorGuard({ homeId: d.homeId, deviceId: 'hub', homeKey: d.homeKey() })
    await takeKept(g)
    guard = g
    return g
  }
  const publish = async (signed: SignedReplies): Promise<void> => {
    const payload = Buffer.from(JSON.stringify(RepliesMessage.parse({ signed })))
    await new Promise<void>((resolve) => {
      d.broker().publish({ cmd: 'publish', topic: topics.replies(d.homeId), payload, qos: 1, retain: true, dup: false }, () => resolve())
    })
  }
  return (app, hooks) => {
    app.get('/api/replies', { onRequest: hooks.signedIn }, async (_request, reply) => {
      await ready()
      const body: RepliesResponse = { replies: current?.replies ?? [], at: current?.at ?? null, signed: current?.signed ?? null }
      return sendJson(reply, 200, body)
    })
    app.put('/api/replies', { onRequest: hooks.ownerOnly, schema: { body: RepliesRequest } }, async (request, reply) => {
      const signed = request.body as SignedReplies
      const by = hooks.memberOf(request)
      // Only the sender's own grant: an owner cannot pass off a list another owner signed earlier.
      const grant = peek(Grant, signed.credential)
      if (!grant.ok || grant.value.id !== by.id) return sendJson(reply, 400, { error: 'the list must be signed with your own credential' })
      const g = await ready()
      const r = await g.takeReplies(signed)
      if (!r.ok) return sendJson(reply, 400, { error: r.message })
      if (!r.changed) return sendJson(reply, 409, { error: 'a newer list of quick replies is already saved: reload and save again' })
      // Another hub may have kept a newer one since this one read it: the store keeps the newest.
      if (!await store.save(signed, r.list.at)) return sendJson(reply, 409, { error: 'a newer list of quick replies is already saved: reload and save again' })
      current = { signed, replies: r.list.replies, at: r.list.at }
      await publish(signed)
      d.log.info('quick replies saved', { by: by.name, count: r.list.replies.length })
      const body: RepliesResponse = { replies: r.list.replies, at: r.list.at, signed }
      return sendJson(reply, 200, body)
    })
  }
}
