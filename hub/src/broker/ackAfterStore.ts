import type { Aedes } from 'aedes'

/**
 * A QoS 1 message is acknowledged only once the broker has stored it. Aedes 1 writes the PUBACK
 * first and then publishes the message (stores it, queues it for offline persistent sessions,
 * forwards it): a hub killed between the two had acknowledged a ring that was on no disk, and the
 * doorbell, told it was delivered, never sent it again (the 20× SIGKILL soak's lost ring).
 *
 * The connection guard holds what Aedes writes to a client while a QoS 1 PUBLISH of that client
 * is being stored (`GuardedConnection.storing`); this tells it when one is: Aedes emits a message
 * to its subscribers (`mq.emit`) right after the persistence has committed its queued copies, and
 * before anything else of it happens. `stored(clientId)` is called then, for each QoS 1 message a
 * client published.
 */
export function whenStored (broker: Aedes, stored: (clientId: string) => void): void {
  const mq = (broker as unknown as { mq: { emit: (packet: { qos?: number, clientId?: string }, cb?: (err?: Error) => void) => unknown } }).mq
  const emit = mq.emit.bind(mq)
  mq.emit = (packet, cb) => {
    if (packet.qos === 1 && typeof packet.clientId === 'string') stored(packet.clientId)
    return emit(packet, cb)
  }
}
