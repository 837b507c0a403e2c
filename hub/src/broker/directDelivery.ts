import { createRequire } from 'node:module'
import type { Writable } from 'node:stream'
import type { Client } from 'aedes'

/**
 * How a message reaches each subscriber, without aedes's two turns per delivery. aedes 1.2's
 * `Client.deliverQoS`/`deliver0` (lib/client.js) checks the delivery at once and then writes it in
 * a `setImmediate` of its own, with a new closure or two, and its write (lib/write.js) reports done
 * in a second `setImmediate`: for a ring to 100 screens, 200 immediates and some 400 closures, on
 * the thread that also reads the screens' PUBACKs. The deliverer here does the same steps in the
 * same order, and writes at once:
 *   no-local (MQTT 5), duplicates from other brokers (a cluster), `authorizeForward`;
 *   a packet with the client's next packet id (QoS > 0), downgraded to an exact subscription's QoS;
 *   a persistent session's `outgoingUpdate` before the write (its queue knows the packet id);
 *   a write that does not fit waits for `drain` through aedes's own `waitForDrain` (its timeout);
 *   a refused delivery to a persistent session clears its queued copy, as aedes does.
 * What tells mqemitter a delivery is done still runs a turn later (so a long queue of messages
 * does not recurse), but all of one turn's together, in one `setImmediate`.
 *
 * aedes reads `client.deliverQoS`/`deliver0` when a subscription is added, so they are replaced on
 * the client as it is made (`broker.handle`), before it can subscribe. The offline queue that a
 * persistent session gets when it comes back (lib/handlers/connect.js) is aedes's own, unchanged.
 */

type Done = () => void
type Deliver = (packet: Forwarded, cb: Done) => void

/** A message as mqemitter hands it to a subscriber (aedes-packet). */
interface Forwarded {
  cmd: string
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
  dup: boolean
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  nl?: boolean
}

interface Persistence {
  outgoingUpdate: (client: unknown, packet: unknown) => Promise<unknown>
  outgoingClearMessageId: (client: unknown, packet: unknown) => Promise<unknown>
}

/** The parts of aedes's Client (lib/client.js) this uses; its typings do not declare them. */
interface AedesClient {
  id: string | null
  clean: boolean
  connecting: boolean
  connected: boolean
  errored: boolean
  conn: Writable
  subscriptions: Record<string, { qos?: number } | undefined>
  duplicates: Record<string, number | undefined>
  _nextId: number
  broker: { id: string, counter: number, persistence: Persistence, authorizeForward: (client: unknown, packet: Forwarded) => Forwarded | null | undefined | false }
  deliver0: Deliver
  deliverQoS: Deliver
  _onError: (err: Error | null | undefined) => void
  emit: (event: 'error', err: Error) => boolean
  waitForDrain: (callback: (err: Error | null) => void) => void
}

const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as { writeToStream: (packet: unknown, stream: Writable) => boolean }

// ------------------------------------------------------------- done, a turn later, all together

const dueCb: Done[] = []
/** What to report before each callback (null: nothing); parallel to `dueCb`. */
const dueErr: Array<Error | null> = []
const dueClient: AedesClient[] = []
/** aedes reports a QoS 0 write's error with `_onError`, a QoS > 0 one by emitting it. */
const dueQos0: boolean[] = []
let scheduled = false

function flush (): void {
  scheduled = false
  const n = dueCb.length
  const cbs = dueCb.splice(0, n)
  const errs = dueErr.splice(0, n)
  const clients = dueClient.splice(0, n)
  const qos0 = dueQos0.splice(0, n)
  for (let i = 0; i < n; i++) {
    const err = errs[i]!
    if (err !== null) {
      if (qos0[i]!) clients[i]!._onError(err)
      else clients[i]!.emit('error', err)
    }
    cbs[i]!()
  }
}

function later (cb: Done, client: AedesClient, err: Error | null, qos0: boolean): void {
  dueCb.push(cb)
  dueErr.push(err)
  dueClient.push(client)
  dueQos0.push(qos0)
  if (!scheduled) {
    scheduled = true
    setImmediate(flush)
  }
}

// ------------------------------------------------------------- one delivery

/** A new packet for this delivery, as aedes-packet makes one (its own copy of the fields a write and a queue read). */
function packetFor (m: Forwarded, broker: AedesClient['broker'], qos: number, messageId: number | undefined): Forwarded {
  const p: Forwarded = {
    cmd: m.cmd || 'publish',
    topic: m.topic,
    payload: m.payload || Buffer.alloc(0),
    qos,
    retain: m.retain || false,
    dup: m.dup || false,
    brokerId: m.brokerId || broker.id,
    brokerCounter: m.brokerCounter || ++broker.counter
  }
  if (messageId !== undefined) p.messageId = messageId
  if (Object.prototype.hasOwnProperty.call(m, 'clientId')) p.clientId = m.clientId
  if (Object.prototype.hasOwnProperty.call(m, 'nl')) p.nl = m.nl
  for (const extra of ['properties', 'messageExpiry'] as const) {
    if (Object.prototype.hasOwnProperty.call(m, extra)) (p as unknown as Record<string, unknown>)[extra] = (m as unknown as Record<string, unknown>)[extra]
  }
  return p
}

/** What may go to this client: null when nothing does (its own message under no-local, a duplicate, or refused). */
function forwardable (client: AedesClient, m: Forwarded): Forwarded | null {
  if (m.nl && m.clientId === client.id) return null
  // A message from another broker of a cluster, seen before (aedes: `dedupe`).
  const from = m.brokerId
  if (from) {
    const counter = m.brokerCounter ?? 0
    if ((client.duplicates[from] ?? 0) >= counter) return null
    client.duplicates[from] = counter
  }
  return client.broker.authorizeForward(client, m) || null
}

/** Writes at once; `cb` runs a turn later (or after `drain` when the write did not fit). */
function write (client: AedesClient, packet: Forwarded, cb: Done, qos0: boolean): void {
  if (!client.connecting && !client.connected) { later(cb, client, new Error('connection closed'), qos0); return }
  let fits: boolean
  try {
    fits = mqttPacket.writeToStream(packet, client.conn)
  } catch {
    later(cb, client, new Error('packet received not valid'), qos0)
    return
  }
  if (!fits && !client.errored) {
    client.waitForDrain((err) => {
      if (err) {
        if (qos0) client._onError(err)
        else client.emit('error', err)
      }
      cb()
    })
    return
  }
  later(cb, client, null, qos0)
}

function nextId (client: AedesClient): number {
  const id = client._nextId
  client._nextId = id >= 65535 ? 1 : id + 1
  return id
}

/** Puts the deliverers on a client aedes has just made (before its CONNECT is read). */
export function deliverDirectly (c: Client): void {
  const client = c as unknown as AedesClient
  const deliver0: Deliver = (m, cb) => {
    const ok = forwardable(client, m)
    if (ok === null) { later(cb, client, null, true); return }
    write(client, packetFor(ok, client.broker, 0, undefined), cb, true)
  }
  const deliverQoS: Deliver = (m, cb) => {
    if (m.qos === 0) { deliver0(m, cb); return }
    const ok = forwardable(client, m)
    if (ok === null) {
      if (!client.clean) client.broker.persistence.outgoingClearMessageId(client, m).then(noop, noop)
      later(cb, client, null, false)
      return
    }
    let qos = ok.qos || 0
    const sub = client.subscriptions[ok.topic]
    if (sub !== undefined && (sub.qos ?? 0) < qos) qos = sub.qos ?? 0
    const packet = packetFor(ok, client.broker, qos, ok.messageId ? ok.messageId : nextId(client))
    if (client.clean || packet.retain) { write(client, packet, cb, false); return }
    // A persistent session: its queued copy learns the packet id before the write (as aedes).
    const go = (err?: unknown): void => {
      if (err) { later(cb, client, err instanceof Error ? err : new Error(String(err)), false); return }
      write(client, packet, cb, false)
    }
    client.broker.persistence.outgoingUpdate(client, packet).then(() => { go() }, go)
  }
  client.deliver0 = deliver0
  client.deliverQoS = deliverQoS
}

function noop (): void {}
