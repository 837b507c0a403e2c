import { ClipSettingRequest, LivePreviewSettingRequest, StockDoorSettingRequest, type Member } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import type { HomeStockSettings } from './stockSettings'

/**
 * The owner's settings per doorbell (one signed record each, stockSettings.ts):
 *   GET /api/devices/stock-settings        every doorbell's settings that the owner ever set
 *   PUT /api/devices/:id/stock-setting     `{"acceptUnsignedOpenDoor": boolean}` (docs/cloud.md)
 *   PUT /api/devices/:id/live-preview      `{"livePreview": boolean}` (docs/preview.md)
 *   PUT /api/devices/:id/clip              `{"clip": boolean}`: record a clip of each ring (docs/history.md)
 * Owners only, for a paired doorbell. The doorbells hear it signed by the home, with the revocation list.
 */
export function stockSettingRoutes (d: { settings: () => HomeStockSettings, members: () => readonly Member[] }): ApiRoutes {
  return (app, hooks) => {
    const paired = (id: string): boolean => d.members().some((m) => m.kind === 'device' && m.subject === id && m.revokedAt === null)
    app.get('/api/devices/stock-settings', { onRequest: hooks.ownerOnly }, async (_request, reply) => sendJson(reply, 200, { settings: await d.settings().list() }))
    app.put('/api/devices/:id/stock-setting', { onRequest: hooks.ownerOnly, schema: { body: StockDoorSettingRequest } }, async (request, reply) => {
      const id = (request.params as { id: string }).id
      if (!paired(id)) return sendJson(reply, 404, { error: `no paired doorbell ${id.slice(0, 64)}` })
      const body = request.body as StockDoorSettingRequest
      return sendJson(reply, 200, await d.settings().set(id, { acceptUnsignedOpenDoor: body.acceptUnsignedOpenDoor }))
    })
    app.put('/api/devices/:id/live-preview', { onRequest: hooks.ownerOnly, schema: { body: LivePreviewSettingRequest } }, async (request, reply) => {
      const id = (request.params as { id: string }).id
      if (!paired(id)) return sendJson(reply, 404, { error: `no paired doorbell ${id.slice(0, 64)}` })
      const body = request.body as LivePreviewSettingRequest
      return sendJson(reply, 200, await d.settings().set(id, { livePreview: body.livePreview }))
    })
    // The doorbell records the clip (it has the video), so the setting is the doorbell's, signed like the others.
    app.put('/api/devices/:id/clip', { onRequest: hooks.ownerOnly, schema: { body: ClipSettingRequest } }, async (request, reply) => {
      const id = (request.params as { id: string }).id
      if (!paired(id)) return sendJson(reply, 404, { error: `no paired doorbell ${id.slice(0, 64)}` })
      const body = request.body as ClipSettingRequest
      return sendJson(reply, 200, await d.settings().set(id, { clip: body.clip }))
    })
  }
}
