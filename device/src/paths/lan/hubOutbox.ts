import {
  CallRecord, RingEvent, SnapshotEvent, encode, topics,
  type DeviceState, type DeviceTransport, type Logger, type SignalToDevice, type SignalToViewer
} from '@doorbell/core'

/** One QoS 1 event for the hub (a ring, a picture, a call record), in the order it was raised. */
export interface HeldMessage { readonly seq: number, readonly topic: string, readonly payload: string }

/** Held events past this many: the oldest go (a doorbell away from its hub for days). */
export const MAX_HELD = 500

/**
 * The doorbell's own queue of events for the hub (rings, pictures, call records), kept while no
 * link is up: before mDNS has found the hub, while the hub is away, and while the doorbell moves
 * to a hub at a new address (the old link hands back what the old hub never acknowledged). It
 * outlives every `MqttLink`; the link that is up takes it when it connects.
 *
 * Why not leave them to mqtt.js's offline store: it gives each message a packet id when it is
 * published, while a half-finished resend after a reconnect has not registered the ids still in
 * that store, so an event published while offline can take such an id and replace the unsent
 * message under it (a lost ring). Messages here get their packet id only when handed over on a
 * live connection. Platform-free.
 */
export class HubOutbox {
  private readonly held: HeldMessage[] = []
  private seq = 0
  private waker: (() => void) | null = null

  constructor (private readonly log: Logger, private readonly max = MAX_HELD) {}

  /** A new event, last in line. */
  add (topic: string, payload: string): HeldMessage {
    const m = { seq: ++this.seq, topic, payload }
    this.hold(m)
    return m
  }

  /** Held (again): kept in the order the events were raised; past `max` the oldest go. */
  hold (m: HeldMessage): void {
    let i = this.held.length
    while (i > 0 && this.held[i - 1]!.seq > m.seq) i--
    if (this.held[i - 1]?.seq === m.seq) return
    this.held.splice(i, 0, m)
    while (this.held.length > this.max) {
      const dropped = this.held.shift()!
      this.log.warn('the hub has been away too long: dropped the oldest held event', { topic: dropped.topic, held: this.max })
    }
    this.waker?.()
  }

  /** Everything held, oldest first; the outbox is then empty. */
  take (): HeldMessage[] { return this.held.splice(0) }

  get size (): number { return this.held.length }

  /**
   * Told when something is held, so a link that is up sends it at once. One listener, the newest
   * link; the returned function removes it only if no newer link has taken its place.
   */
  onHeld (waker: () => void): () => void {
    this.waker = waker
    return () => { if (this.waker === waker) this.waker = null }
  }
}

/**
 * What the answering side publishes on the home network while there is no link yet (the hub is
 * not found): rings, pictures and call records into the outbox; the state is sent by the link
 * when it connects; signaling needs a hub and has none.
 */
export function heldTransport (outbox: HubOutbox, homeId: string, deviceId: string): DeviceTransport {
  return {
    path: 'lan',
    publishRing: (ring: RingEvent) => { outbox.add(topics.ring(homeId, deviceId), encode(RingEvent, ring)) },
    publishSnapshot: (snapshot: SnapshotEvent) => { outbox.add(topics.snapshot(homeId, deviceId), encode(SnapshotEvent, snapshot)) },
    publishCall: (record: CallRecord) => { outbox.add(topics.calls(homeId, deviceId), encode(CallRecord, record)) },
    publishState: (_state: DeviceState) => {},
    sendToViewer: (_viewerId: string, _sessionId: string, _message: SignalToViewer) => {},
    onSignal: (_listener: (viewerId: string, message: SignalToDevice) => void) => () => {},
    stop: async () => {}
  }
}
