import { join } from 'node:path'
import type { HubConfig, Logger, Startable } from '@doorbell/core'
import type { IntegrationKeys } from './integrationKey'
import type { TrustBackend } from './store'
import { startTrust, type Trust } from './trust'
import { HomeStockSettings, type StockSettingsStore } from './stockSettings'

export interface TrustModule extends Startable {
  /** Members, pairing, revocation and the audit log; throws before start. */
  readonly trust: Trust
  /** The owner's per-doorbell stock KVS setting, signed by the home key (stockSettings.ts); throws before start. */
  readonly stockSettings: HomeStockSettings
}

/**
 * The trust store (`dataDir/trust`: node:sqlite and the home's signing key). A cluster's hub gives
 * its PostgreSQL `store`, `share` (the other hubs' revocations) and `stockSettings`; the key stays in `dataDir/trust`.
 */
export function trustModule (config: HubConfig, log: Logger, o: { store?: () => TrustBackend, share?: (trust: Trust) => Trust, stockSettings?: () => StockSettingsStore, integrationKeys?: () => IntegrationKeys } = {}): TrustModule {
  let trust: Trust | null = null
  let stockSettings: HomeStockSettings | null = null
  return {
    name: 'trust',
    get trust (): Trust {
      if (trust === null) throw new Error('the trust store has not started')
      return trust
    },
    get stockSettings (): HomeStockSettings {
      if (stockSettings === null) throw new Error('the trust store has not started')
      return stockSettings
    },
    async start () {
      const dir = join(config.dataDir, 'trust')
      const started = await startTrust({ dir, homeId: config.homeId, hubName: config.hubName, log: log.child('trust'), ...(o.store ? { store: o.store } : {}), ...(o.integrationKeys ? { integrationKeys: o.integrationKeys } : {}) })
      trust = o.share ? o.share(started) : started
      try {
        stockSettings = await HomeStockSettings.start({ dir, homeId: config.homeId, log: log.child('stock'), ...(o.stockSettings ? { store: o.stockSettings() } : {}) })
      } catch (err) {
        trust.stop()
        trust = null
        throw err
      }
    },
    async stop () {
      trust?.stop()
    }
  }
}
