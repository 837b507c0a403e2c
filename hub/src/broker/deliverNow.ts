import { createRequire } from 'node:module'
import type { Client } from 'aedes'

/**
 * A QoS 1 delivery written in the turn its message is forwarded. aedes hands each subscriber of
 * a message its copy in a `setImmediate` of its own (`deliverQoS`), then waits a promise turn for
 * the persistence's record of the packet id before it writes: for a ring to 100 screens, no
 * screen's copy is written before all 100 were prepared, so the first screen waits as long as the
 * last one is prepared. Here each copy is written as soon as it is prepared, in aedes's order.
 *
 * What aedes does per delivery is kept, in its order: the no-local rule, its duplicate check and
 * the hub's forward-time check (`authorizeForward`), a packet id of the client's own, the
 * subscription's QoS, the persistence's record of the packet id before the write (a screen's
 * PUBACK finds it), the socket's back-pressure, and the callback a turn later (as aedes's `write`).
 * Only where the record is made in memory before the write (`recordSent` returns undefined: the
 * hub's own SQLite persistence) is anything different; QoS 0, a record that needs the disk and
 * any other persistence (a cluster's Redis) go through aedes as before.
 */

interface Forwarded extends Record<string, unknown> {
  topic: string
  qos: number
  retain: boolean
  messageId?: number
  clientId?: string
  nl?: boolean
  brokerId?: string
  brokerCounter?: number
}

type Deliver = (packet: Forwarded, cb: () => void) => void

/** The parts of aedes's client this reads and writes (its typings declare only some of them). */
interface AedesClient {
  id: string
  clean: boolean
  connected: boolean
  connecting: boolean
  errored: boolean
  conn: NodeJS.WritableStream
  subscriptions: Record<string, { qos?: number } | undefined>
  duplicates: Record<string, number | undefined>
  _nextId: number
  deliverQoS: Deliver
  emit: (event: 'error', err: Error) => boolean
  waitForDrain: (cb: () => void) => void
  broker: {
    authorizeForward: (client: Client, packet: Forwarded) => Forwarded | null | undefined
    persistence: { outgoingClearMessageId: (client: Client, packet: Forwarded) => Promise<unknown> }
  }
}

/** The persistence's record of a delivery's packet id: undefined once made in memory, else its pending write. */
export type RecordSent = (client: { id: string }, packet: Forwarded) => Promise<void> | undefined

const require = createRequire(import.meta.url)
const Packet = require('aedes-packet') as new (original: Forwarded, broker: unknown) => Forwarded
const mqttPacket = require('mqtt-packet') as { writeToStream: (packet: unknown, stream: NodeJS.WritableStream) => boolean }

const noop = (): void => {}

/** aedes's check against a message forwarded twice (a cluster's other hub sends it back): the broker's counter only grows. */
function firstTime (c: AedesClient, packet: Forwarded): boolean {
  const id = packet.brokerId
  if (id === undefined || id === '') return true
  const counter = packet.brokerCounter ?? 0
  if ((c.duplicates[id] ?? 0) >= counter) return false
  c.duplicates[id] = counter
  return true
}

/** Puts the same-turn delivery on `client` (before it subscribes: aedes keeps `deliverQoS` per subscription). */
export function deliverNow (client: Client, recordSent: RecordSent): void {
  const c = client as unknown as AedesClient
  const viaAedes = c.deliverQoS
  c.deliverQoS = function deliverQoSNow (forwarded, cb) {
    if (forwarded.qos === 0 || (forwarded.clientId === c.id && forwarded.nl === true)) { viaAedes(forwarded, cb); return }
    const toForward = firstTime(c, forwarded) ? c.broker.authorizeForward(client, forwarded) : null
    if (toForward === null || toForward === undefined) {
      // Not for this client: a persistent session's queued copy goes (as aedes does).
      if (!c.clean) c.broker.persistence.outgoingClearMessageId(client, forwarded).then(noop, noop)
      setImmediate(cb)
      return
    }
    const packet = new Packet(toForward, c.broker)
    packet.messageId = c._nextId
    c._nextId = c._nextId >= 0xffff ? 1 : c._nextId + 1
    const sub = c.subscriptions[packet.topic]
    if (sub !== undefined && (sub.qos ?? 0) < packet.qos) packet.qos = sub.qos ?? 0
    const write = (): void => { send(c, packet, cb) }
    let pending: Promise<void> | undefined
    try {
      pending = c.clean || packet.retain ? undefined : recordSent(client, packet)
    } catch (err) {
      pending = Promise.reject(err as Error)
    }
    if (pending === undefined) { write(); return }
    pending.then(write, (err: Error) => { c.emit('error', err); cb() })
  }
}

/** aedes's write: on an open connection, waiting for the socket to drain when its buffer is full; an error and the callback a turn later. */
function send (c: AedesClient, packet: Forwarded, cb: () => void): void {
  const failed = (message: string): void => { setImmediate(() => { c.emit('error', new Error(message)); cb() }) }
  if (!c.connecting && !c.connected) { failed('connection closed'); return }
  let written: boolean
  try {
    written = mqttPacket.writeToStream(packet, c.conn)
  } catch {
    failed('packet received not valid')
    return
  }
  if (!written && !c.errored) { c.waitForDrain(cb); return }
  setImmediate(cb)
}
