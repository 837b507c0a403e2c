import type { CallRecord, DeviceState, Presence, RingEvent, SignalToDevice, SignalToViewer } from './schemas'
import type { SnapshotEvent } from './snapshot'

/**
 * The signaling transports: what carries a home's events and a call's offer/answer between a
 * device and its viewers. Every path implements the same two halves, and one compliance suite
 * (tests/src/transportCompliance.ts) holds each of them to the same behaviour:
 *
 *   lan     MQTT through the hub's Aedes broker            (device: MqttLink,     viewer: HubClient)
 *   direct  libp2p protocol streams, device <-> viewer     (device: DirectServer, viewer: DirectClient)
 *   cloud   AWS IoT Core + KVS signaling                   (device: CloudLink,    viewer: CloudClient)
 *
 * Each lives in its path's folder on its side: device/src/paths/<path>/, viewer/src/lib/paths/<path>/.
 *
 * Rules every transport keeps:
 * - everything received is parsed by its schema first; a bad message is logged and dropped,
 *   and the transport carries on (it never throws at its caller, never closes on bad input);
 * - a viewer's session messages reach only that session's listener, in the order sent;
 * - sending never throws: while the path is down a message is queued (rings, QoS 1) or dropped
 *   (the call machines time out), as each transport documents.
 */
export type TransportPath = 'lan' | 'direct' | 'cloud'

export type Unsubscribe = () => void

/** The device's half. */
export interface DeviceTransport {
  readonly path: TransportPath
  publishRing: (ring: RingEvent) => void
  /** The visitor's picture after a ring (docs/history.md); a path that cannot carry it yet leaves it out. */
  publishSnapshot?: (snapshot: SnapshotEvent) => void
  publishState: (state: DeviceState) => void
  publishCall: (record: CallRecord) => void
  sendToViewer: (viewerId: string, sessionId: string, message: SignalToViewer) => void
  /**
   * Offers and byes from viewers, with the viewer id the path carries (the MQTT topic; the
   * offer's own field on the direct path). The path does not authenticate them: the answering
   * side admits each offer (the grant and its proof of possession, DoorGuard.admit).
   */
  onSignal: (listener: (viewerId: string, message: SignalToDevice) => void) => Unsubscribe
  stop: () => Promise<void>
}

export interface ViewerTransportEvents {
  ring: (ring: RingEvent) => void
  snapshot: (snapshot: SnapshotEvent) => void
  state: (state: DeviceState) => void
  presence: (presence: Presence) => void
  call: (record: CallRecord) => void
  /** The path came up (true) or went down (false). */
  link: (up: boolean) => void
}

/** An ICE server as RTCPeerConnection takes it (browsers and werift alike). */
export interface IceServerInit {
  urls: string | string[]
  username?: string
  credential?: string
}

/** The viewer's half. */
export interface ViewerTransport {
  readonly path: TransportPath
  readonly connected: boolean
  on: <K extends keyof ViewerTransportEvents>(event: K, listener: ViewerTransportEvents[K]) => Unsubscribe
  /** What the device sends to one session (its answer, its bye). */
  onSession: (sessionId: string, listener: (message: SignalToViewer) => void) => Unsubscribe
  sendToDevice: (deviceId: string, sessionId: string, message: SignalToDevice) => void
  /** ICE servers for a call to this device on this path: none on the LAN; the cloud's TURN servers away. */
  iceServers?: (deviceId: string) => Promise<IceServerInit[]>
  close: () => Promise<void>
}

/** A typed listener table, the one both halves of every transport use. */
export class Listeners<E extends { [K in keyof E]: (...args: any[]) => void }> {
  private readonly table = new Map<keyof E, Set<(...args: any[]) => void>>()

  on<K extends keyof E>(event: K, listener: E[K]): Unsubscribe {
    let set = this.table.get(event)
    if (!set) { set = new Set(); this.table.set(event, set) }
    set.add(listener)
    return () => { set.delete(listener) }
  }

  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    for (const l of this.table.get(event) ?? []) l(...args)
  }
}
