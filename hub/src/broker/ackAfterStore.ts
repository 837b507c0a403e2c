import type { Aedes, Client } from 'aedes'

/**
 * A QoS 1 message is acknowledged only once the broker has stored it. Aedes 1 writes the PUBACK
 * first and then publishes the message (stores it, queues it for offline persistent sessions,
 * forwards it): a hub killed between the two had acknowledged a ring that was on no disk, and the
 * doorbell, told it was delivered, never sent it again (the 20× SIGKILL soak's lost ring).
 *
 * The connection guard holds what Aedes writes to a client while a QoS 1 PUBLISH of that client
 * is being stored (`GuardedConnection.storing`); this tells it when one is stored. Aedes emits a
 * message to its subscribers (`mq.emit`) once the persistence has taken its queued copies, before
 * anything else of it happens. A persistence that commits later (`committed`: the hub's SQLite
 * store takes them in memory and commits a turn after the deliveries are written, so the disk is
 * not on the screens' way) is waited for from there; one without it (Redis, in a cluster) has
 * stored them by then. `settled(conn)` is called once the message is stored, for each QoS 1
 * message a client published, with the connection that message came in on; `settled(conn, err)`
 * when its commit failed (the connection is then closed unacknowledged: the client sends again).
 *
 * Keyed by the message, not by the client id: after a session takeover (the same id connecting
 * again while the old connection is still open) the id names the new connection, so the store of
 * a message from the old one released the new one's hold early (its PUBACK before its own message
 * was on disk). Aedes hands `broker.publish` the client that sent the message and then emits a
 * copy of it that keeps the same payload Buffer, so the payload (one Buffer per parsed packet,
 * never shared) carries the connection from one to the other.
 *
 * A QoS 1 PUBLISH that `authorizePublish` refuses is never stored: it settles at once (aedes then
 * closes the connection, MQTT-3.3.5-2), so it never keeps the guard's count raised. A will is not
 * counted by the guard (it came inside the CONNECT) and settles nothing.
 */
export function whenStored (broker: Aedes, settled: (conn: unknown, err?: Error) => void, committed?: () => Promise<void>): void {
  type Message = { qos?: number, payload?: unknown, messageId?: number }
  type Done = (err?: Error | null) => void
  const b = broker as unknown as {
    mq: { emit: (packet: Message, cb?: Done) => unknown }
    publish: (packet: Message, client: Client | null | Done, done?: Done) => void
    authorizePublish: (client: Client | null, packet: Message, callback: Done) => void
  }
  /** A QoS 1 message on its way to the store → the connection it came in on. */
  const origin = new WeakMap<object, unknown>()
  // A PUBLISH the client sent (the guard counted it as it passed) has a packet id; its will has none.
  const isQos1From = (packet: Message, client: unknown): client is Client =>
    packet.qos === 1 && typeof packet.messageId === 'number' && typeof client === 'object' && client !== null &&
    typeof packet.payload === 'object' && packet.payload !== null

  const publish = b.publish.bind(broker)
  b.publish = (packet, client, done) => {
    if (isQos1From(packet, client)) origin.set(packet.payload as object, client.conn)
    publish(packet, client, done)
  }
  const emit = b.mq.emit.bind(b.mq)
  b.mq.emit = (packet, cb) => {
    if (packet.qos === 1 && typeof packet.payload === 'object' && packet.payload !== null) {
      const conn = origin.get(packet.payload)
      if (conn !== undefined) {
        origin.delete(packet.payload)
        if (committed === undefined) settled(conn)
        else committed().then(() => { settled(conn) }, (err: Error) => { settled(conn, err) })
      }
    }
    return emit(packet, cb)
  }
  const authorize = b.authorizePublish.bind(broker)
  b.authorizePublish = (client, packet, callback) => {
    authorize(client, packet, (err) => {
      if (err && isQos1From(packet, client)) settled(client.conn)
      callback(err)
    })
  }
}
