import { HomeAssistantBrokerRequest, type HomeAssistantBroker, type HomeAssistantBrokerSettings, type Logger } from '@doorbell/core'
import { sendJson } from '../http'
import type { ApiRoutes } from '../api'
import { BrokerSettingsError, type BrokerSettings } from './brokerSettings'
import type { HomeAssistantModule } from './module'

/**
 * `/api/home-assistant/broker` (owners only): the user's broker for Home Assistant, from Home
 * settings. GET shows it (whether a password and a CA are set, never the password) and how the
 * hub's connection to it is; PUT checks a new one against the hub's own schema, keeps it in the
 * data folder and reconnects at once; DELETE turns it off. Bad input is a 400 that says what is
 * wrong, and changes nothing.
 */
export function homeAssistantRoutes (d: {
  enabled: boolean
  module: HomeAssistantModule
  /** `homeAssistant.broker` from the hub's config file: used until Home settings set one. */
  fromConfig: HomeAssistantBroker | undefined
  log: Logger
}): ApiRoutes {
  const settings = (): BrokerSettings => d.module.settings
  const view = async (): Promise<HomeAssistantBrokerSettings> => {
    const stored = await settings().stored()
    const broker = stored === undefined ? d.fromConfig ?? null : stored
    return {
      broker: broker === null
        ? null
        : {
            url: broker.url,
            username: broker.username ?? null,
            password: broker.password !== undefined || broker.passwordFile !== undefined,
            ca: broker.ca !== undefined,
            source: stored === undefined ? 'config' : 'settings'
          },
      enabled: d.enabled,
      connection: d.enabled ? d.module.brokerStatus() : { state: 'off', problem: null }
    }
  }
  const off = 'Home Assistant is off in this hub\'s config: set homeAssistant.enabled first'

  return (app, hooks) => {
    app.get('/api/home-assistant/broker', { onRequest: hooks.ownerOnly }, async (_request, reply) => sendJson(reply, 200, await view()))
    app.put('/api/home-assistant/broker', { onRequest: hooks.ownerOnly, schema: { body: HomeAssistantBrokerRequest } }, async (request, reply) => {
      if (!d.enabled) return sendJson(reply, 409, { error: off })
      const body = request.body as HomeAssistantBrokerRequest
      let url: URL
      try { url = new URL(body.url) } catch { return sendJson(reply, 400, { error: 'url: not a URL (mqtts://host:port)' }) }
      if (url.username !== '' || url.password !== '') return sendJson(reply, 400, { error: 'url: give the user name and password in their own fields, not in the URL' })
      let config: HomeAssistantBroker
      try {
        config = await settings().save(body)
      } catch (err) {
        if (err instanceof BrokerSettingsError) return sendJson(reply, 400, { error: err.message })
        throw err
      }
      d.log.info('the owner set the user\'s broker for Home Assistant', { by: hooks.memberOf(request).id, url: `${url.protocol}//${url.host}` })
      await d.module.setBroker(config)
      return sendJson(reply, 200, await view())
    })
    app.delete('/api/home-assistant/broker', { onRequest: hooks.ownerOnly }, async (request, reply) => {
      if (!d.enabled) return sendJson(reply, 409, { error: off })
      await settings().clear()
      d.log.info('the owner turned the user\'s broker for Home Assistant off', { by: hooks.memberOf(request).id })
      await d.module.setBroker(null)
      return sendJson(reply, 200, await view())
    })
  }
}
