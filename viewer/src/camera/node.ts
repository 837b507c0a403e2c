import { DoorGuard, type IceSettings, type Logger } from '@doorbell/core'
import { MqttLink, refusedCredentials } from '@doorbell/device/lan'
import { startAnswering, type Answering } from '@doorbell/machines'
import { cameraSession } from './session'
import type { CameraNodePairing } from './pairing'

/**
 * The browser camera node's composition root: the home's guard (the pinned home key), the shared
 * answering side (admission, routing, the call machine, the retained state), the hub link (the
 * same MqttLink as the Node doorbell, over the hub's WebSocket) and the camera session. A camera
 * node has no button and no door: its state's lock is null and it never rings.
 */

/** How the node stands with the hub, as its page shows it. */
export type HubStatus = 'connecting' | 'connected' | 'reconnecting' | 'refused'

export interface CameraNodeStatus {
  hub: HubStatus
  /** How many watchers are in a call with this camera now. */
  watchers: number
}

export interface CameraNodeOptions {
  pairing: CameraNodePairing
  /** The hub's MQTT WebSocket, `wss://<hub>/mqtt`. */
  url: string
  track: () => MediaStreamTrack | null
  ice: () => Promise<IceSettings>
  log: Logger
  /** Each watcher costs the browser one more encode: a laptop's camera node takes a few at most. */
  maxViewers?: number
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection
}

export interface CameraNode {
  answering: Answering
  link: MqttLink
  status: () => CameraNodeStatus
  /** Called whenever the status changes; returns the unsubscribe. */
  onStatus: (listener: (status: CameraNodeStatus) => void) => () => void
  /** Ends every call now (the camera stopped). */
  endCalls: () => void
  stop: () => Promise<void>
}

export const CAMERA_MAX_VIEWERS = 4
/** An operator watches a feed for a whole shift: calls are not cut after a doorbell's ten minutes. */
export const CAMERA_MAX_CALL_MS = 24 * 3600_000
/** Required by the call machine; a camera node never rings. */
const RING_TIMEOUT_MS = 30_000

export function startCameraNode (o: CameraNodeOptions): CameraNode {
  const { pairing, log } = o
  const guard = new DoorGuard({ homeId: pairing.homeId, deviceId: pairing.deviceId, homeKey: pairing.homeKey, zone: pairing.zone })
  const answering = startAnswering({
    deviceId: pairing.deviceId,
    deviceName: pairing.name,
    ringTimeoutMs: RING_TIMEOUT_MS,
    maxCallMs: CAMERA_MAX_CALL_MS,
    maxViewers: o.maxViewers ?? CAMERA_MAX_VIEWERS,
    guard,
    lock: () => null,
    log: log.child('call'),
    session: cameraSession({ track: o.track, ice: o.ice, log, ...(o.createPeerConnection ? { createPeerConnection: o.createPeerConnection } : {}) })
  })
  const link = new MqttLink({
    url: o.url,
    homeId: pairing.homeId,
    deviceId: pairing.deviceId,
    log: log.child('hub'),
    auth: { memberId: pairing.memberId, token: pairing.token, ca: null }
  })

  let hub: HubStatus = 'connecting'
  const listeners = new Set<(s: CameraNodeStatus) => void>()
  let last = ''
  const status = (): CameraNodeStatus => ({ hub, watchers: answering.state().participants.length })
  const changed = (): void => {
    const s = status()
    const key = `${s.hub}/${s.watchers}`
    if (key === last) return
    last = key
    for (const l of listeners) l(s)
  }

  link.client.on('connect', () => { hub = 'connected'; changed() })
  link.client.on('offline', () => { if (hub !== 'refused') { hub = 'reconnecting'; changed() } })
  link.client.on('error', (err) => {
    if (!refusedCredentials(err)) return
    // Removed by the owner, or this id was paired again elsewhere: retrying cannot help.
    hub = 'refused'
    link.client.end(true)
    changed()
  })
  link.onRevocations((token) => {
    guard.takeRevocations(token)
      .then((r) => {
        if (!r.ok) { log.warn('ignored a revocation list', { error: r.message }); return }
        if (r.changed) answering.endRevokedSessions()
      })
      .catch((err: Error) => { log.error('could not take the revocation list', { error: err.message }) })
  })
  answering.attach(link)
  const offCall = answering.call.subscribe(changed)

  return {
    answering,
    link,
    status,
    onStatus (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    endCalls () {
      if (answering.call.getSnapshot().matches('inCall')) answering.call.send({ type: 'END_CALL', at: Date.now() })
    },
    async stop () {
      offCall.unsubscribe()
      listeners.clear()
      answering.stop()
      await link.stop()
    }
  }
}

export { hubSocketUrl } from '../lib/paths/lan/socketUrl'

/** What the page says of the hub link, and of the watchers. */
export function hubStatusText (s: HubStatus): string {
  switch (s) {
    case 'connecting': return 'Connecting to the hub…'
    case 'connected': return 'Connected to the hub'
    case 'reconnecting': return 'Hub unreachable, retrying…'
    case 'refused': return 'The hub refused this camera (removed by the owner, or paired again elsewhere). Stop being a camera, then pair it again.'
  }
}

export function watchersText (n: number): string {
  return `Live: ${n} watching`
}
