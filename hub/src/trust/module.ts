import { join } from 'node:path'
import type { HubConfig, Logger, Startable } from '@doorbell/core'
import { startTrust, type Trust } from './trust'

export interface TrustModule extends Startable {
  /** Members, pairing, revocation and the audit log; throws before start. */
  readonly trust: Trust
}

/** The trust store (`dataDir/trust`: node:sqlite and the home's signing key). */
export function trustModule (config: HubConfig, log: Logger): TrustModule {
  let trust: Trust | null = null
  return {
    name: 'trust',
    get trust (): Trust {
      if (trust === null) throw new Error('the trust store has not started')
      return trust
    },
    async start () {
      trust = await startTrust({ dir: join(config.dataDir, 'trust'), homeId: config.homeId, hubName: config.hubName, log: log.child('trust') })
    },
    async stop () {
      trust?.stop()
    }
  }
}
