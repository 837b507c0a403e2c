import { MemberRightsRequest } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import type { Trust } from './trust'

const MEMBER_ID = /^[A-Za-z0-9_-]{1,64}$/

/**
 * A person's rights after pairing (rights.ts, core/src/grants.ts):
 *   PUT /api/members/:id/rights   owners: `{"door"?: boolean, "talk"?: boolean, "talkZones"?: [zone]}`; the member's older grants are void from now
 *   GET /api/credential           any paired screen: its grant signed now, and `grantsFrom` (null: its rights never changed)
 * The screen fetches its new grant by itself: on every connect, and when the hub's retained
 * `doorbell/{home}/grants` names it with a floor after its grant.
 */
export function rightsRoutes (d: { trust: () => Trust }): ApiRoutes {
  return (app, hooks) => {
    app.put('/api/members/:id/rights', { onRequest: hooks.ownerOnly, schema: { body: MemberRightsRequest } }, async (request, reply) => {
      const id = (request.params as { id: string }).id
      if (!MEMBER_ID.test(id)) return sendJson(reply, 404, { error: `no member ${id.slice(0, 64)}` })
      return sendJson(reply, 200, { member: await d.trust().setRights(hooks.memberOf(request), id, request.body as MemberRightsRequest) })
    })
    app.get('/api/credential', { onRequest: hooks.signedIn }, async (request, reply) => sendJson(reply, 200, await d.trust().credentialFor(hooks.memberOf(request))))
  }
}
