import type { HubConfig, Logger, Startable } from '@doorbell/core'
import { startHubMesh, type HubMesh } from './registry'

export interface MeshModule extends Startable {
  /** The hub on the LAN mesh once started; null before (and when the hub leaves it out: `mesh.enabled` off). */
  readonly mesh: HubMesh | null
}

/** The LAN mesh (libp2p: mDNS, the hub protocol), told the broker's port once that listens. */
export function meshModule (config: HubConfig, mqttPort: () => number, secure: () => boolean, log: Logger): MeshModule {
  let mesh: HubMesh | null = null
  return {
    name: 'mesh',
    get mesh () { return mesh },
    async start () {
      mesh = await startHubMesh(config, mqttPort(), log, secure())
    },
    async stop () {
      await mesh?.stop()
      mesh = null
    }
  }
}
