import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { tcp } from '@libp2p/tcp'
import { mdns } from '@libp2p/mdns'
import { FsDatastore } from 'datastore-fs'
import type { PeerDiscovery } from '@libp2p/interface'
import { MDNS_SERVICE_TAG } from '@doorbell/core'
import { createMeshPeer, keepDiscovery, type MeshNode } from './peer'

export interface OpenMeshPeerOptions {
  /** The program's data folder: the identity and certificate go in `<dataDir>/peer` (private: 0700). */
  dataDir: string
  /** The `mesh` section of the device's or hub's config. */
  mesh: { host: string, tcpPort: number, directPort: number, queryIntervalMs: number }
}

export interface OpenedMeshPeer {
  /** Created stopped: attach listeners, then start it. */
  node: MeshNode
  /** The mDNS module, which reports every answer (finding a hub that restarted needs them all). */
  discovery: () => PeerDiscovery
  /** Closes the datastore; stop the node first. */
  close: () => Promise<void>
}

/**
 * The doorbell's and the hub's libp2p peer as both open it: identity kept on disk, TCP, the
 * webrtc-direct listener and mDNS with the product's service tag.
 */
export async function openMeshPeer (o: OpenMeshPeerOptions): Promise<OpenedMeshPeer> {
  const dir = join(o.dataDir, 'peer')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const datastore = new FsDatastore(dir)
  await datastore.open()
  const discovery = keepDiscovery(mdns({ serviceTag: MDNS_SERVICE_TAG, interval: o.mesh.queryIntervalMs }))
  const node = await createMeshPeer({
    datastore,
    host: o.mesh.host,
    tcpPort: o.mesh.tcpPort,
    directPort: o.mesh.directPort,
    tcp: tcp(),
    discovery: [discovery.factory]
  }).catch(async (err: unknown) => { await datastore.close(); throw err })
  return { node, discovery: discovery.instance, close: async () => { await datastore.close() } }
}
