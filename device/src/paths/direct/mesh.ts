import { MDNS_SERVICE_TAG, type DeviceConfig, type DirectReach, type Logger, type Presence } from '@doorbell/core'
import { directReachOf, openMeshPeer, type MeshNode } from '@doorbell/mesh'
import { DirectServer, type DirectServerOptions } from './directServer'
import { HubFinder, type HubFound } from './hubFinder'

export interface Mesh {
  node: MeshNode
  server: DirectServer
  /** The device's webrtc-direct addresses, for its presence. */
  direct: () => DirectReach | undefined
  stop: () => Promise<void>
}

export interface MeshOptions {
  log: Logger
  hasHub: () => boolean
  onHub: (hub: HubFound) => void
  /** The home this device is paired with, and the check of a direct viewer's credential. */
  homeId: string
  admit: DirectServerOptions['admit']
}

/**
 * The device on the LAN mesh: its libp2p peer (identity kept in dataDir), the direct server for
 * viewers, and, when no hubUrl is configured, the search for the hub of its home.
 */
export async function startMesh (config: DeviceConfig, o: MeshOptions): Promise<Mesh> {
  const peer = await openMeshPeer({ dataDir: config.dataDir, mesh: config.mesh })
  const node = peer.node
  const direct = (): DirectReach | undefined => directReachOf(node)
  const presence = (): Presence => {
    const reach = direct()
    return { deviceId: config.deviceId, online: true, at: Date.now(), ...(reach ? { direct: reach } : {}) }
  }
  const server = new DirectServer(node, { homeId: o.homeId, deviceId: config.deviceId, log: o.log, presence, admit: o.admit })
  await server.start()
  // Listening from before the start, so the first mDNS answers are not missed; asking waits for the start.
  let listening = (): void => {}
  const ready = new Promise<void>((resolve) => { listening = resolve })
  const finder = config.hubUrl
    ? null
    : new HubFinder(node, peer.discovery(), { homeId: o.homeId, deviceId: config.deviceId, deviceName: config.deviceName, direct, log: o.log, hasHub: o.hasHub, onHub: o.onHub, ready })
  finder?.start()
  if (finder) o.log.info('looking for the hub of this home by mDNS', { home: o.homeId, serviceTag: MDNS_SERVICE_TAG })
  try {
    await node.start()
  } catch (err) {
    // A port taken: libp2p stops itself; what this mesh started around it (the hub search, the direct server, the datastore) stops too.
    finder?.stop()
    for (const stop of [async () => { await server.stop() }, async () => { await node.stop() }, async () => { await peer.close() }]) {
      await stop().catch(() => {})
    }
    throw err
  }
  listening()
  o.log.info('on the LAN mesh', { peer: node.peerId.toString(), direct: direct()?.addrs.join(' ') ?? 'none', discovery: finder ? 'looking for the hub' : 'hub configured' })
  return {
    node,
    server,
    direct,
    async stop () {
      finder?.stop()
      await server.stop()
      await node.stop()
      await peer.close()
    }
  }
}
