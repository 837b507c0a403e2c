import { StockDoorSettingRequest, type Member } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import type { HomeStockSettings } from './stockSettings'

/**
 * The owner's "accept unsigned OPEN_DOOR from KVS viewers", per doorbell (docs/cloud.md):
 *   GET /api/devices/stock-settings        every doorbell's setting that the owner ever set
 *   PUT /api/devices/:id/stock-setting     `{"acceptUnsignedOpenDoor": boolean}`, for a paired doorbell
 * Owners only. The doorbells hear it signed by the home, with the revocation list.
 */
export function stockSettingRoutes (d: { settings: () => HomeStockSettings, members: () => Member[] }): ApiRoutes {
  return (app, hooks) => {
    app.get('/api/devices/stock-settings', { onRequest: hooks.ownerOnly }, async (_request, reply) => sendJson(reply, 200, { settings: d.settings().list() }))
    app.put('/api/devices/:id/stock-setting', { onRequest: hooks.ownerOnly, schema: { body: StockDoorSettingRequest } }, async (request, reply) => {
      const id = (request.params as { id: string }).id
      const device = d.members().find((m) => m.kind === 'device' && m.subject === id && m.revokedAt === null)
      if (device === undefined) return sendJson(reply, 404, { error: `no paired doorbell ${id.slice(0, 64)}` })
      const body = request.body as StockDoorSettingRequest
      return sendJson(reply, 200, await d.settings().set(id, body.acceptUnsignedOpenDoor))
    })
  }
}
