import { refusedCredentials, startInOrder, type IceSettings, type Logger, type Startable } from '@doorbell/core'
import type { MqttLink } from '@doorbell/device/lan'
import type { Answering } from '@doorbell/machines'
import { startAnsweringSide, type AnsweringSide } from '@doorbell/device/answering'
import { browserPeers } from './session'
import { noDoor } from './control'
import type { CameraNodePairing } from './pairing'

/**
 * The browser camera node's composition root, an ordered list of modules (`Startable`): the
 * answering side shared with the Node doorbell (`@doorbell/device/answering`: the home's guard,
 * admission, sessions, routing, the call machine, revocations) with the browser's peer
 * connections and "no door", then the link to the hub (the same MqttLink, over the hub's
 * WebSocket). The camera (getUserMedia) and the pairing are the page's, before it. A camera node
 * has no button and no door: its state's lock is null and it never rings.
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
  /** The microphone's track when sound is on (a setting, off by default), else null. */
  microphone?: () => MediaStreamTrack | null
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

export async function startCameraNode (o: CameraNodeOptions): Promise<CameraNode> {
  const { pairing, log } = o
  let side = null as AnsweringSide | null
  let link = null as MqttLink | null
  let offCall: (() => void) | null = null

  let hub: HubStatus = 'connecting'
  const listeners = new Set<(s: CameraNodeStatus) => void>()
  let last = ''
  const status = (): CameraNodeStatus => ({ hub, watchers: side?.answering.state().participants.length ?? 0 })
  const changed = (): void => {
    const s = status()
    const key = `${s.hub}/${s.watchers}`
    if (key === last) return
    last = key
    for (const l of listeners) l(s)
  }

  const modules: Startable[] = [
    {
      // Admission, sessions and revocations: the same code as the Node doorbell's; no door, no ring.
      name: 'answering side',
      async start () {
        side = startAnsweringSide({
          pairing: { ...pairing, ca: null },
          deviceId: pairing.deviceId,
          deviceName: pairing.name,
          ringTimeoutMs: RING_TIMEOUT_MS,
          maxCallMs: CAMERA_MAX_CALL_MS,
          maxViewers: o.maxViewers ?? CAMERA_MAX_VIEWERS,
          lock: () => null,
          log: log.child('call'),
          door: () => noDoor,
          peers: browserPeers({ track: o.track, ice: o.ice, log, ...(o.microphone ? { microphone: o.microphone } : {}), ...(o.createPeerConnection ? { createPeerConnection: o.createPeerConnection } : {}) })
        })
        const sub = side.answering.call.subscribe(changed)
        offCall = () => { sub.unsubscribe() }
      },
      async stop () {
        offCall?.()
        side?.answering.stop()
      }
    },
    {
      // The home network: the hub's WebSocket (the same MqttLink as the doorbell's); it reconnects by itself.
      name: 'home-network link',
      async start () {
        const current = link = side!.connectHub(o.url, { log: log.child('hub') })
        if (!current) throw new Error('no hub link')
        current.client.on('connect', () => { hub = 'connected'; changed() })
        current.client.on('offline', () => { if (hub !== 'refused') { hub = 'reconnecting'; changed() } })
        current.client.on('error', (err) => {
          if (!refusedCredentials(err)) return
          // Removed by the owner, or this id was paired again elsewhere: retrying cannot help.
          hub = 'refused'
          current.client.end(true)
          changed()
        })
      },
      async stop () { await side?.disconnectHub() }
    },
    {
      // On stop, the calls end while the hub link can still carry each watcher's bye.
      name: 'calls',
      async start () {},
      async stop () { side?.answering.stop() }
    }
  ]
  const running = await startInOrder(modules, { log: log.child('modules') })
  const answering = side!.answering

  return {
    answering,
    link: link!,
    status,
    onStatus (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    endCalls () {
      if (answering.call.getSnapshot().matches('inCall')) answering.call.send({ type: 'END_CALL', at: Date.now() })
    },
    async stop () {
      listeners.clear()
      await running.stop()
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
