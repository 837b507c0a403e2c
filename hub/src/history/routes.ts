import type { FastifyReply, FastifyRequest } from 'fastify'
import { DismissRequest, EventsQuery, SeenRequest, type HistoryEvent, type Member } from '@doorbell/core'
import { sendJson } from '../http'
import { sessionsOf, zoneOfDevice } from '../broker/gate'
import type { ApiRoutes } from '../api'
import type { HistoryBackend } from './backend'
import type { EventScope } from './store'

/**
 * `/api/events`: the history a page at a time, a ring's picture, seen marks and deletion. Who sees
 * what is the broker's rule for live events: the owner and residents the whole home, operators
 * their zones' devices, guests (and devices) nothing.
 */
export function historyRoutes (d: { store: () => HistoryBackend, members: () => readonly Member[], decorate?: (events: HistoryEvent[]) => HistoryEvent[] | Promise<HistoryEvent[]>, deleted?: (id: number) => void | Promise<void> }): ApiRoutes {
  const scopeOf = (m: Member, reply: FastifyReply): EventScope | FastifyReply => {
    if (m.kind !== 'viewer' || m.role === 'guest' || m.role === null) return sendJson(reply, 403, { error: 'the history is for the home\'s owner, residents and operators; guests see live rings only' })
    if (m.role !== 'operator') return { memberId: m.id, devices: null }
    const zones = new Set(m.zones)
    const devices = d.members().filter((x) => x.kind === 'device' && x.revokedAt === null && zones.has(zoneOfDevice(x))).map((x) => x.subject)
    return { memberId: m.id, devices }
  }
  const eventId = (request: FastifyRequest): number | null => {
    const raw = (request.params as { id: string }).id
    return /^[1-9]\d{0,14}$/.test(raw) ? Number(raw) : null
  }
  const isScope = (s: EventScope | FastifyReply): s is EventScope => 'memberId' in s

  return (app, hooks) => {
    app.get('/api/events', { onRequest: hooks.signedIn }, async (request, reply) => {
      const scope = scopeOf(hooks.memberOf(request), reply)
      if (!isScope(scope)) return scope
      const query = Object.fromEntries(new URL(request.url, 'http://hub').searchParams)
      const parsed = EventsQuery.safeParse(query)
      if (!parsed.success) {
        const issue = parsed.error.issues[0]
        return sendJson(reply, 400, { error: `${issue?.path.join('.') || 'query'}: ${issue?.message ?? 'invalid'}` })
      }
      const page = await d.store().list(parsed.data, scope)
      // What the history keeps beside its rows (a ring's clip: clipStore.ts).
      return sendJson(reply, 200, d.decorate ? { ...page, events: await d.decorate(page.events) } : page)
    })
    app.get('/api/events/:id/snapshot', { onRequest: hooks.signedIn }, async (request, reply) => {
      const scope = scopeOf(hooks.memberOf(request), reply)
      if (!isScope(scope)) return scope
      const id = eventId(request)
      const event = id === null ? null : await d.store().get(id, scope)
      const jpeg = event?.snapshot === true ? await d.store().snapshot(event.id) : null
      if (jpeg === null) return sendJson(reply, 404, { error: event ? 'this event has no picture' : 'no such event' })
      // The same picture for ever under this id (a later one replaces it: private, revalidated).
      return reply.code(200).headers({ 'Content-Type': 'image/jpeg', 'Cache-Control': 'private, no-cache' }).send(jpeg)
    })
    app.post('/api/events/seen', { onRequest: hooks.signedIn, schema: { body: SeenRequest } }, async (request, reply) => {
      const scope = scopeOf(hooks.memberOf(request), reply)
      if (!isScope(scope)) return scope
      const body = request.body as SeenRequest
      const marked = await d.store().markSeen(scope, body.all ? 'all' : body.ids ?? [])
      return sendJson(reply, 200, { marked, unseen: (await d.store().list({ limit: 1 }, scope)).unseen })
    })
    // A screen dismissed a ring: only a ring of a doorbell this member may see (else 404, as for
    // a ring that does not exist, so nothing is learnt of other zones); an answered ring is 409.
    app.post('/api/events/dismissed', { onRequest: hooks.signedIn, schema: { body: DismissRequest } }, async (request, reply) => {
      const member = hooks.memberOf(request)
      const scope = scopeOf(member, reply)
      if (!isScope(scope)) return scope
      const body = request.body as DismissRequest
      if (scope.devices !== null && !scope.devices.includes(body.deviceId)) return sendJson(reply, 404, { error: 'no such ring' })
      // A screen is one of this member's connections (viewer-{subject}-{tab}): another's is refused, nothing kept.
      if (body.screen !== undefined && !sessionsOf(member)(body.screen)) return sendJson(reply, 400, { error: 'screen: not one of this member\'s screens' })
      const r = await d.store().dismiss(body.deviceId, body.ringId, { id: member.id, name: member.name, ...(body.screen !== undefined ? { screen: body.screen } : {}) })
      return r.ok ? sendJson(reply, 200, { outcome: r.outcome }) : sendJson(reply, r.status, { error: r.error })
    })
    app.delete('/api/events/:id', { onRequest: hooks.ownerOnly }, async (request, reply) => {
      const id = eventId(request)
      if (id === null || !(await d.store().delete(id))) return sendJson(reply, 404, { error: 'no such event' })
      await d.deleted?.(id)
      return sendJson(reply, 200, { deleted: id })
    })
  }
}
