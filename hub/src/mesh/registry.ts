import { lpStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import {
  HubHello, HubReply, MAX_FRAME_BYTES, PROTOCOLS, readFrame, writeFrame,
  type DirectReach, type HubConfig, type Logger
} from '@doorbell/core'
import { openMeshPeer, type MeshNode } from '@doorbell/mesh'

/** The most devices the hub remembers having found. */
const MAX_DEVICES = 256

/** A device that found this hub and asked for its broker. */
export interface FoundDevice {
  deviceId: string
  deviceName: string
  peerId: string
  /** The address its libp2p connection came from. */
  from: string
  direct?: DirectReach
  firstSeen: number
  lastSeen: number
}

export interface HubMesh {
  node: MeshNode
  /** Devices of this home that asked for the broker, by device id. */
  devices: () => FoundDevice[]
  /** Peers mDNS turned up with our service tag (hubs, devices), by peer id. */
  peers: () => string[]
  stop: () => Promise<void>
}

/**
 * The hub on the LAN mesh: announced by mDNS with the product's service tag, it tells the devices
 * of its own home where its broker is (the hub protocol) and refuses those of another home, so two
 * hubs on one LAN never capture each other's devices.
 */
export async function startHubMesh (config: HubConfig, mqttPort: number, log: Logger, tls = false): Promise<HubMesh> {
  const peer = await openMeshPeer({ dataDir: config.dataDir, mesh: config.mesh })
  const node = peer.node
  // The broker's URL when the address a device reached the hub at will not do: configured, or
  // the one interface the broker listens on (a hub bound to 0.0.0.0 is reachable on all of them).
  const wildcard = config.host === '0.0.0.0' || config.host === '::'
  const advertised = config.advertisedMqttUrl ?? (wildcard ? undefined : `${tls ? 'mqtts' : 'mqtt'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${mqttPort}`)
  const devices = new Map<string, FoundDevice>()
  const peers = new Set<string>()
  node.addEventListener('peer:discovery', (e) => { if (peers.size < MAX_DEVICES * 4) peers.add(e.detail.id.toString()) })

  const answer = async (stream: Stream, connection: Connection): Promise<void> => {
    const io = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    const reply = async (r: HubReply): Promise<void> => {
      await writeFrame(io, HubReply, r)
      await stream.close()
    }
    const hello = await readFrame(io, HubHello, 'hub hello', 5000)
    if (!hello.ok) {
      log.warn('refused a device: bad hello', { error: hello.error.message })
      await reply({ ok: false, error: 'bad-request', message: hello.error.message.slice(0, 200) })
      return
    }
    const h = hello.value
    if (h.homeId !== config.homeId) {
      log.info('a device of another home asked; not ours', { device: h.deviceId, home: h.homeId })
      await reply({ ok: false, error: 'other-home', message: `this hub serves home ${config.homeId}` })
      return
    }
    const now = Date.now()
    const known = devices.get(h.deviceId)
    // Bounded: a peer inventing device ids pushes out the longest-silent ones, never memory.
    if (!known && devices.size >= MAX_DEVICES) {
      const oldest = [...devices.values()].sort((a, b) => a.lastSeen - b.lastSeen)[0]!
      devices.delete(oldest.deviceId)
    }
    if (!known) log.info('found a device', { device: h.deviceId, name: h.deviceName, from: connection.remoteAddr.toString() })
    devices.set(h.deviceId, {
      deviceId: h.deviceId,
      deviceName: h.deviceName,
      peerId: connection.remotePeer.toString(),
      from: connection.remoteAddr.toString(),
      ...(h.direct ? { direct: h.direct } : {}),
      firstSeen: known?.firstSeen ?? now,
      lastSeen: now
    })
    await reply({
      ok: true,
      homeId: config.homeId,
      hubName: config.hubName,
      mqttPort,
      tls,
      ...(advertised ? { mqttUrl: advertised } : {})
    })
  }
  await node.handle(PROTOCOLS.hub, (stream, connection) => {
    answer(stream, connection).catch((err: Error) => {
      log.warn('hub protocol failed', { error: err.message })
      stream.abort(err)
    })
  })
  try {
    await node.start()
  } catch (err) {
    await Promise.resolve(node.stop()).catch(() => {})
    await peer.close()
    throw err
  }
  log.info('on the LAN mesh', { peer: node.peerId.toString(), addrs: node.getMultiaddrs().length })
  return {
    node,
    devices: () => [...devices.values()],
    peers: () => [...peers],
    async stop () {
      await node.stop()
      await peer.close()
    }
  }
}
