import { createLibp2p, type Libp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { webRTCDirect } from '@libp2p/webrtc'
import { keychain } from '@libp2p/keychain'
import { loadOrCreateSelfKey } from '@libp2p/config'
import type { Datastore } from 'interface-datastore'
import type { PeerDiscovery, Transport } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DirectReach } from '@doorbell/core'

/** Only the parts of a libp2p node this product uses (Node and browser builds agree on them). */
export type MeshNode = Libp2p

export interface MeshPeerInit {
  /**
   * Where the peer's identity and its webrtc-direct certificate live (a file-system datastore on a
   * device or hub). The same key and certificate on every start keep the peer id and the certhash,
   * so the addresses viewers remember stay right across restarts.
   */
  datastore: Datastore
  host: string
  tcpPort: number
  /** UDP port of the webrtc-direct listener: fixed by default for the same reason. */
  directPort: number
  /** The TCP transport and mDNS discovery (both Node-only, so the caller brings them). */
  tcp: (components: any) => Transport
  discovery: Array<(components: any) => PeerDiscovery>
}

/**
 * A device's or hub's libp2p peer: TCP + noise + yamux between Node peers, a webrtc-direct
 * listener for browsers, mDNS on the LAN. Created stopped, so that listeners can be attached
 * before the first discovery event (FIELD-NOTES: early events are otherwise missed).
 */
export async function createMeshPeer (init: MeshPeerInit): Promise<MeshNode> {
  // libp2p 3 needs Promise.withResolvers (Node 22+); on older Node, handshakes die one by one.
  if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
    throw new Error('the LAN mesh (libp2p) needs Node 22 or later: run through npm (it brings Node 24) or set mesh.enabled to false')
  }
  const privateKey = await loadOrCreateSelfKey(init.datastore)
  return await createLibp2p({
    start: false,
    privateKey,
    datastore: init.datastore,
    addresses: {
      listen: [
        `/ip4/${init.host}/tcp/${init.tcpPort}`,
        `/ip4/${init.host}/udp/${init.directPort}/webrtc-direct`
      ]
    },
    transports: [init.tcp, webRTCDirect()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: init.discovery,
    services: { keychain: keychain() }
  }) as MeshNode
}

/**
 * The node's webrtc-direct addresses, as a viewer stores them: LAN addresses first, loopback
 * last (it only helps a browser on the same machine). Null until the listener is up.
 */
export function directReachOf (node: MeshNode): DirectReach | undefined {
  const addrs = node.getMultiaddrs()
    .map((a: Multiaddr) => a.toString())
    .filter((a) => a.includes('/webrtc-direct/certhash/'))
    .sort((a, b) => Number(a.startsWith('/ip4/127.')) - Number(b.startsWith('/ip4/127.')))
    .slice(0, 16)
  const reach = { peerId: node.peerId.toString(), addrs }
  return DirectReach.safeParse(reach).success ? reach : undefined
}

/**
 * Keeps hold of a discovery module libp2p builds. libp2p itself reports a peer only the first time
 * it enters the peer store; the module reports every mDNS answer, which is what finding a hub that
 * restarted (or a device that came back) needs.
 */
export function keepDiscovery (factory: (components: any) => PeerDiscovery): { factory: (components: any) => PeerDiscovery, instance: () => PeerDiscovery } {
  let instance: PeerDiscovery | null = null
  return {
    factory: (components) => (instance = factory(components)),
    instance: () => {
      if (!instance) throw new Error('the discovery module is made when the libp2p node is')
      return instance
    }
  }
}

/** The IP address and port of a multiaddr such as /ip4/10.0.0.2/tcp/4101/p2p/... */
export function hostOf (addr: Multiaddr): string | null {
  const ip = addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')
  if (!ip?.value) return null
  return ip.name === 'ip6' ? `[${ip.value}]` : ip.value
}
