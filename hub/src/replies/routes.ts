import type { Aedes } from 'aedes'
import { DoorGuard, RepliesMessage, RepliesRequest, RepliesStamp, Grant, peek, topics, type Logger, type RepliesResponse, type SignedReplies } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import { fileRepliesStore, type RepliesStore } from './store'

const NEWER = 'a newer list of quick replies is already saved: reload and save again'
/** Saves lost to other hubs' at once before the owner is told to try again. */
const MAX_SAVE_ATTEMPTS = 3

/**
 * `/api/replies`: the owner's quick replies. `PUT` (the owner) takes the list signed by the
 * owner's own key with the owner's grant beside it, checked as a doorbell checks it (DoorGuard:
 * a live owner of this home, the owner's signature) and signed by the member who sends it. The
 * hub stamps it with the next number of the sequence, signed by the home key (`RepliesStamp`:
 * devices order lists by it, never by the owner's browser clock), keeps it (`store`:
 * `dataDir/replies.json`, or PostgreSQL in a cluster, where the newest kept is read again on each
 * request so the sequence goes on from another hub's list, and a save loses to another hub's with
 * the same seq: this hub then reads that list and stamps the next seq) and retains it on
 * `doorbell/{home}/replies` for the doorbells, which check it again. `GET` (any member): the list
 * as it stands, for the call view and the ring banner.
 */
export function repliesRoutes (d: {
  dataDir: string
  homeId: string
  homeKey: () => string
  stamp: (listToken: string, seq: number) => Promise<string>
  broker: () => Aedes
  log: Logger
  store?: () => RepliesStore
  shared?: boolean
}): ApiRoutes {
  const store = d.store?.() ?? fileRepliesStore(d.dataDir)
  let guard: DoorGuard | null = null
  let saving: Promise<unknown> = Promise.resolve()
  let current: { signed: SignedReplies, replies: string[], at: number, seq: number } | null = null
  const seqOf = (signed: SignedReplies): number => {
    const stamp = signed.stamp === undefined ? null : peek(RepliesStamp, signed.stamp)
    return stamp?.ok === true ? stamp.value.seq : 0
  }
  /** Takes the kept list if it is newer than the one held (another hub's change, in a cluster). */
  const takeKept = async (g: DoorGuard): Promise<void> => {
    const kept = await store.load()
    if (kept.problem !== undefined) d.log.warn('could not read the kept quick replies', { error: kept.problem })
    let signed = kept.signed
    if (signed === null) return
    const r = await g.checkReplies(signed)
    if (!r.ok) { d.log.warn('ignored the kept quick replies', { error: r.message }); return }
    if (current !== null && signed.stamp !== undefined && seqOf(signed) <= current.seq) return
    // A list kept before stamps: stamped now, the next of the sequence.
    if (signed.stamp === undefined) {
      const seq = (current?.seq ?? 0) + 1
      signed = { ...signed, stamp: await d.stamp(signed.list, seq) }
      await store.save(signed, r.list.at, seq)
    }
    current = { signed, replies: r.list.replies, at: r.list.at, seq: seqOf(signed) }
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
      const { stamp: _ignored, ...sent } = request.body as SignedReplies
      const by = hooks.memberOf(request)
      // Only the sender's own grant: an owner cannot pass off a list another owner signed earlier.
      const grant = peek(Grant, sent.credential)
      if (!grant.ok || grant.value.id !== by.id) return sendJson(reply, 400, { error: 'the list must be signed with your own credential' })
      // One save at a time on this hub: the check against the list held, the next seq and the store go together.
      const save = saving.then(async () => {
        const g = await ready()
        const r = await g.checkReplies(sent)
        if (!r.ok) return sendJson(reply, 400, { error: r.message })
        let signed: SignedReplies | null = null
        let seq = 0
        for (let attempt = 0; signed === null; attempt++) {
          // The owner's clock only guards against a stale page saving over a newer list; the order devices follow is the stamp's.
          if (current !== null && r.list.at <= current.at) return sendJson(reply, 409, { error: NEWER })
          if (attempt === MAX_SAVE_ATTEMPTS) return sendJson(reply, 409, { error: 'the quick replies are being changed through other hubs at this moment: reload and save again' })
          seq = (current?.seq ?? 0) + 1
          const stamped: SignedReplies = { ...sent, stamp: await d.stamp(sent.list, seq) }
          // Another hub may have kept a list with this seq since this one read it (a cluster): read it, then stamp again.
          if (await store.save(stamped, r.list.at, seq)) signed = stamped
          else await takeKept(g)
        }
        current = { signed, replies: r.list.replies, at: r.list.at, seq }
        await publish(signed)
        // A cluster: another hub may have kept a higher seq and retained it before this publish
        // replaced it; the last retained must be the newest, for doorbells that connect later.
        if (d.shared === true) {
          const kept = (await store.load()).signed
          if (kept !== null && seqOf(kept) > seq) await publish(kept)
        }
        d.log.info('quick replies saved', { by: by.name, count: r.list.replies.length, seq })
        const body: RepliesResponse = { replies: r.list.replies, at: r.list.at, signed }
        return sendJson(reply, 200, body)
      })
      saving = save.then(() => {}, () => {})
      return await save
    })
  }
}
