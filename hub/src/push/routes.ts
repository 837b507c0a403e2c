import type { FastifyReply } from 'fastify'
import { PushSubscribeRequest, PushUnsubscribeRequest } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import type { PushModule } from './module'
import { PushEndpointError, checkEndpoint } from './send'

/**
 * `/api/push`: the hub's VAPID public key, and a screen's subscription kept or dropped for the
 * signed-in member (docs/history.md, "Web Push"). Screens only: a device or integration is 403.
 * Nothing changes on a refusal.
 */
export function pushRoutes (d: { module: PushModule, allowLoopback: boolean }): ApiRoutes {
  return (app, hooks) => {
    const off = (reply: FastifyReply): FastifyReply => sendJson(reply, 409, { error: d.module.off ?? 'Web Push has not started' })
    app.get('/api/push/key', { onRequest: hooks.signedIn }, async (request, reply) => {
      const member = hooks.memberOf(request)
      if (member.kind !== 'viewer') return sendJson(reply, 403, { error: 'push is for screens' })
      const s = d.module.state
      if (!s) return off(reply)
      return sendJson(reply, 200, { publicKey: s.publicKey, subscriptions: s.subscriptions.forMember(member.id).length })
    })
    app.post('/api/push/subscriptions', { onRequest: hooks.signedIn, schema: { body: PushSubscribeRequest } }, async (request, reply) => {
      const member = hooks.memberOf(request)
      if (member.kind !== 'viewer') return sendJson(reply, 403, { error: 'push is for screens' })
      const s = d.module.state
      if (!s) return off(reply)
      const body = request.body as PushSubscribeRequest
      try {
        checkEndpoint(body.subscription.endpoint, d.allowLoopback)
      } catch (err) {
        if (err instanceof PushEndpointError) return sendJson(reply, 400, { error: err.message })
        throw err
      }
      const r = s.subscriptions.add(member.id, body.subscription, body.screen ?? null)
      return sendJson(reply, 200, { subscriptions: r.count, dropped: r.dropped })
    })
    app.post('/api/push/unsubscribe', { onRequest: hooks.signedIn, schema: { body: PushUnsubscribeRequest } }, async (request, reply) => {
      const member = hooks.memberOf(request)
      if (member.kind !== 'viewer') return sendJson(reply, 403, { error: 'push is for screens' })
      const s = d.module.state
      if (!s) return off(reply)
      const removed = s.subscriptions.remove(member.id, (request.body as PushUnsubscribeRequest).endpoint)
      return removed ? sendJson(reply, 200, { subscriptions: s.subscriptions.forMember(member.id).length }) : sendJson(reply, 404, { error: 'this screen is not subscribed' })
    })
  }
}
