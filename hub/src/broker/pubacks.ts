/**
 * A viewer's PUBACKs handed to aedes without the byte stream. For every delivery of a ring at
 * QoS 1 each screen answers with a PUBACK, four bytes on its own socket (MQTT 3.1.1 §3.4: 0x40,
 * Remaining Length 2, the packet id). Read the ordinary way, each went through the guard's
 * Readable, a tick later aedes's `readable` handler and `read()`, then mqtt-packet's parser (a
 * buffer list, four states, a dozen debug calls) before aedes's own PUBACK handling: with 100
 * screens, about a third of the hub's CPU per ring went on reading PUBACKs (docs/performance.md,
 * "Sixth pass"). Here a chunk made only of whole PUBACKs becomes the packets mqtt-packet would
 * have made, given to aedes where its parser gives them (the parser's `packet` event): from there
 * on it is aedes's own path, unchanged (the persistence's `outgoingClearMessageId`, the `ack`
 * event, the keepalive refresh).
 *
 * Only when nothing else can be in between: the client signed in (CONNACK sent), not closing,
 * not paused, aedes handling none of its packets (its parsing batch idle) and its parser holding
 * no partial packet, and the guard holding no bytes for it. Anything else (a PUBACK split across
 * chunks, one sent together with another packet, a PUBACK with other flags or length) takes the
 * stream as before, where the parser decides.
 */

/** MQTT 3.1.1 §3.4.1: a PUBACK's first byte (type 4, flags 0) and its Remaining Length. */
const PUBACK = 0x40
const PUBACK_LENGTH = 2
const PUBACK_BYTES = 4

/** The packet ids of `chunk` when it is one or more whole PUBACKs and nothing else; null otherwise. */
export function wholePubacks (chunk: Buffer): number[] | null {
  if (chunk.length === 0 || chunk.length % PUBACK_BYTES !== 0) return null
  const ids: number[] = []
  for (let i = 0; i < chunk.length; i += PUBACK_BYTES) {
    if (chunk[i] !== PUBACK || chunk[i + 1] !== PUBACK_LENGTH) return null
    ids.push(chunk.readUInt16BE(i + 2))
  }
  return ids
}

/** What of aedes's client (aedes 1, lib/client.js) this reads: its state and its parser. */
interface AedesClientState {
  connackSent?: boolean
  closed?: boolean
  _paused?: boolean
  _parsingBatch?: number
  _parser?: {
    error?: unknown
    packet?: { length?: number }
    _list?: { length?: number }
    _stateCounter?: number
    emit: (event: 'packet', packet: object) => boolean
    listenerCount?: (event: 'packet') => number
  }
}

/**
 * Gives `ids` to aedes as parsed PUBACKs of `client` (the aedes client a connection carries as
 * `conn.client`), when it is idle as above; false (nothing done) when it is not, so the caller
 * passes the bytes on as a stream instead.
 */
export function handPubacks (client: unknown, ids: readonly number[]): boolean {
  if (typeof client !== 'object' || client === null) return false
  const c = client as AedesClientState
  const parser = c._parser
  if (c.connackSent !== true || c.closed !== false || c._paused === true || c._parsingBatch !== 0) return false
  if (parser === undefined || typeof parser.emit !== 'function' || (parser.error !== null && parser.error !== undefined)) return false
  // No partial packet: mqtt-packet resets `packet.length` to -1, empties its list and starts its
  // states again (a lone header byte read leaves the first two as they were, not the third).
  if (parser.packet?.length !== -1 || parser._list?.length !== 0 || parser._stateCounter !== 0) return false
  // Someone (aedes) takes the parser's packets: else handing them over would drop them silently.
  if (typeof parser.listenerCount !== 'function' || parser.listenerCount('packet') === 0) return false
  for (const messageId of ids) {
    // The object mqtt-packet's parser makes for a 3.1.1 PUBACK (parser.js, packet.js).
    parser.emit('packet', { cmd: 'puback', retain: false, qos: 0, dup: false, length: PUBACK_LENGTH, topic: null, payload: null, messageId })
  }
  return true
}
