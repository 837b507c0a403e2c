import { lpStream } from '@libp2p/utils'
import type { PeerDiscovery, PeerInfo } from '@libp2p/interface'
import { HubHello, HubReply, MAX_FRAME_BYTES, PROTOCOLS, readFrame, writeFrame, type DirectReach, type Logger } from '@doorbell/core'
import { hostOf, type MeshNode } from '@doorbell/mesh'

/** How long a hub that said "not your home" is left alone. */
const NOT_OURS_MS = 60_000

export interface HubFound {
  /** The broker URL the hub advertised, completed with the address the device reached it at. */
  mqttUrl: string
  hubName: string
  peerId: string
}

export interface HubFinderOptions {
  homeId: string
  deviceId: string
  deviceName: string
  direct: () => DirectReach | undefined
  log: Logger
  /** Whether the device has a working hub connection now (then discoveries are not followed up). */
  hasHub: () => boolean
  onHub: (hub: HubFound) => void
  /** Resolves once the node listens: a hub is told the device's direct addresses, so wait for them. */
  ready: Promise<void>
  /** At most one question to the same peer in this long. */
  retryMs?: number
}

/**
 * Zero-configuration: every peer mDNS turns up (with our service tag) is asked over the hub
 * protocol whether it is the hub of this device's home and where its broker is. A hub of another
 * home says so and is left alone. mDNS keeps answering while the device runs, so a hub that
 * restarts elsewhere is found again.
 */
export class HubFinder {
  private readonly asked = new Map<string, number>()
  private readonly failed = new Set<string>()
  private readonly onDiscovery = (e: CustomEvent<PeerInfo>): void => { void this.consider(e.detail) }

  /** `mdns` is the node's mDNS module: it reports every answer, not only a peer's first. */
  constructor (private readonly node: MeshNode, private readonly mdns: PeerDiscovery, private readonly o: HubFinderOptions) {}

  start (): void { this.mdns.addEventListener('peer', this.onDiscovery) }
  stop (): void { this.mdns.removeEventListener('peer', this.onDiscovery) }

  private async consider (peer: PeerInfo): Promise<void> {
    await this.o.ready
    if (this.o.hasHub()) return
    const id = peer.id.toString()
    const now = Date.now()
    if (now - (this.asked.get(id) ?? 0) < (this.o.retryMs ?? 2000)) return
    this.asked.set(id, now)
    try {
      const signal = AbortSignal.timeout(5000)
      // The addresses of this very answer (libp2p's peer store may not have merged them yet), over TCP.
      const tcpAddrs = peer.multiaddrs.filter((m) => m.getComponents().some((c) => c.name === 'tcp')).map((m) => m.encapsulate(`/p2p/${id}`))
      const connection = await this.node.dial(tcpAddrs.length > 0 ? tcpAddrs : peer.id, { signal })
      const stream = await connection.newStream(PROTOCOLS.hub, { signal })
      const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      const direct = this.o.direct()
      await writeFrame(io, HubHello, { homeId: this.o.homeId, deviceId: this.o.deviceId, deviceName: this.o.deviceName, ...(direct ? { direct } : {}) })
      const reply = await readFrame(io, HubReply, 'hub reply', 5000)
      await stream.close().catch(() => {})
      if (!reply.ok) {
        this.o.log.warn('a hub sent a reply we cannot use', { peer: id, error: reply.error.message })
        return
      }
      if (!reply.value.ok) {
        // Another home's hub: asked again only after a minute (it might be re-paired), said once.
        if (!this.failed.has(id)) this.o.log.info('not our hub', { peer: id, reason: reply.value.message })
        this.failed.add(id)
        this.asked.set(id, now + NOT_OURS_MS)
        return
      }
      if (reply.value.homeId !== this.o.homeId) return
      const host = hostOf(connection.remoteAddr)
      const mqttUrl = reply.value.mqttUrl ?? (host ? `${reply.value.tls === true ? 'mqtts' : 'mqtt'}://${host}:${reply.value.mqttPort}` : null)
      if (!mqttUrl) return
      this.o.onHub({ mqttUrl, hubName: reply.value.hubName, peerId: id })
    } catch (err) {
      // Devices answer mDNS with our tag too (they do not speak the hub protocol); a hub that
      // failed to answer is asked again at its next announcement. Said once per peer.
      if (!this.failed.has(id)) this.o.log.info('a peer did not answer as a hub', { peer: id, error: (err as Error).message })
      this.failed.add(id)
    }
  }
}
