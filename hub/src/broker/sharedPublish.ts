import { createRequire } from 'node:module'
import type { Writable } from 'node:stream'

/**
 * One encoding of a PUBLISH for all its deliveries. aedes writes every delivery with mqtt-packet's
 * `writeToStream`, which encodes the packet again for each subscriber, in five or six small
 * writes (header, length, topic as a string, packet id, payload) under cork: for a ring to 100
 * screens, 100 encodings of the same bytes and some 500 writes through two streams. The only
 * byte that differs between deliveries is the packet id (MQTT 3.1.1 §3.3.2.2), so the packet is
 * encoded once per message and each delivery is one copy with its own id, in one write.
 *
 * Only for the connections the hub's guard hands aedes (`applies`), and only for what the
 * fast path encodes exactly as mqtt-packet does: MQTT 3.1.1 PUBLISH (aedes passes no protocol
 * options, so it writes 3.1.1 framing to every client) with a Buffer payload and no MQTT 5
 * properties. Anything else, and anything the cache does not hold, goes to mqtt-packet as before.
 */

interface Publish {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos?: number
  retain?: boolean
  dup?: boolean
  messageId?: number
  properties?: unknown
}

type WriteToStream = (packet: unknown, stream: Writable, opts?: unknown) => boolean

interface MqttPacketModule {
  writeToStream: WriteToStream
  generate: (packet: unknown, opts?: unknown) => Buffer
}

/** One message's bytes, for the flags and topic it was encoded with. */
interface Encoded {
  topic: string
  qos: number
  retain: boolean
  dup: boolean
  bytes: Buffer
  /** Where the two bytes of the packet id are (qos > 0); -1 at QoS 0. */
  idAt: number
}

function isPlainPublish (packet: unknown): packet is Publish {
  const p = packet as Partial<Publish> | null
  return p !== null && typeof p === 'object' && p.cmd === 'publish' && typeof p.topic === 'string' &&
    Buffer.isBuffer(p.payload) && p.properties === undefined
}

/**
 * Encodes `packet` (an id in it or not), or returns null when its bytes are not the 3.1.1 layout
 * the fast path patches: fixed header, remaining length, topic, [packet id], payload last.
 */
export function encodePublish (generate: MqttPacketModule['generate'], packet: Publish): Encoded | null {
  const qos = packet.qos ?? 0
  if (qos !== 0 && qos !== 1 && qos !== 2) return null
  // A probe id, so its place in the bytes can be checked rather than assumed.
  const probe = 0xa55a
  let bytes: Buffer
  try {
    bytes = generate({ cmd: 'publish', topic: packet.topic, payload: packet.payload, qos, retain: packet.retain === true, dup: packet.dup === true, messageId: qos > 0 ? probe : undefined })
  } catch {
    return null
  }
  if (!Buffer.isBuffer(bytes) || bytes.length < packet.payload.length + 2) return null
  const idAt = qos > 0 ? bytes.length - packet.payload.length - 2 : -1
  if (idAt >= 0 && bytes.readUInt16BE(idAt) !== probe) return null
  if (!bytes.subarray(bytes.length - packet.payload.length).equals(packet.payload)) return null
  return { topic: packet.topic, qos, retain: packet.retain === true, dup: packet.dup === true, bytes, idAt }
}

/**
 * The bytes of one delivery: the shared encoding at QoS 0 (a written Buffer is never changed),
 * a copy with this delivery's packet id otherwise. Null when `packet` does not match `e`.
 */
export function deliveryBytes (e: Encoded, packet: Publish): Buffer | null {
  const qos = packet.qos ?? 0
  if (e.topic !== packet.topic || e.qos !== qos || e.retain !== (packet.retain === true) || e.dup !== (packet.dup === true)) return null
  if (e.idAt < 0) return e.bytes
  const id = packet.messageId
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 0xffff) return null
  const out = Buffer.allocUnsafe(e.bytes.length)
  e.bytes.copy(out)
  out.writeUInt16BE(id, e.idAt)
  return out
}

let installed: { applies: Array<(stream: Writable) => boolean>, restore: () => void } | null = null

/**
 * Puts the shared encoding in front of mqtt-packet's `writeToStream` (the module object aedes
 * calls it on) for the streams `applies` accepts. Idempotent per `applies`; returns how to take it
 * out again (the original is restored when the last one is taken out).
 */
export function shareEncodings (applies: (stream: Writable) => boolean): () => void {
  const mqttPacket = createRequire(import.meta.url)('mqtt-packet') as MqttPacketModule
  if (installed === null) {
    const original = mqttPacket.writeToStream
    const state = { applies: [] as Array<(stream: Writable) => boolean>, restore: () => { mqttPacket.writeToStream = original } }
    // Keyed by the payload: aedes gives every delivery of a message the same payload Buffer.
    const cache = new WeakMap<Buffer, Encoded>()
    const fast: WriteToStream = (packet, stream, opts) => {
      if (opts !== undefined || !isPlainPublish(packet) || !state.applies.some((f) => f(stream))) return original(packet, stream, opts)
      let e = cache.get(packet.payload)
      let bytes = e === undefined ? null : deliveryBytes(e, packet)
      if (bytes === null) {
        e = encodePublish(mqttPacket.generate, packet) ?? undefined
        if (e === undefined) return original(packet, stream, opts)
        cache.set(packet.payload, e)
        bytes = deliveryBytes(e, packet)
        if (bytes === null) return original(packet, stream, opts)
      }
      return stream.write(bytes)
    }
    mqttPacket.writeToStream = fast
    installed = state
  }
  const state = installed
  state.applies.push(applies)
  return () => {
    const i = state.applies.indexOf(applies)
    if (i >= 0) state.applies.splice(i, 1)
    if (state.applies.length === 0 && installed === state) {
      state.restore()
      installed = null
    }
  }
}
