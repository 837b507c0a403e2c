import { z } from 'zod'
import { Signed } from './trust'
import { Id } from './ids'
import { CallRecord, DeviceState, DirectReach, Presence, RingEvent } from './schemas'
import { MAX_MESSAGE_BYTES, decode, encode, type Decoded } from './codec'
import { MAX_SNAPSHOT_MESSAGE_BYTES, SnapshotEvent } from './snapshot'

/**
 * The LAN mesh's libp2p protocols. Each stream carries length-prefixed JSON frames, parsed by
 * the schemas below before anything acts on them.
 *
 *   /doorbell/hub/1.0.0     device -> hub     one request, one reply: "I am this device of this home;
 *                                             where is your broker?"
 *   /doorbell/events/1.0.0  viewer -> device  the viewer says hello, then the device pushes its
 *                                             presence and state at once, and every ring, state
 *                                             and call record after that
 *   /doorbell/signal/1.0.0  viewer -> device  one stream per call session: the offer and a bye
 *                                             one way, the answer and a bye the other
 */
export const PROTOCOLS = {
  hub: '/doorbell/hub/1.0.0',
  events: '/doorbell/events/1.0.0',
  signal: '/doorbell/signal/1.0.0',
  /** The rings the doorbell keeps, read by a screen while the hub is down (directKept.ts). */
  kept: '/doorbell/kept/1.0.0',
  /** A ring dismissed on the doorbell by a screen while the hub is down (directDismiss.ts). */
  dismiss: '/doorbell/dismiss/1.0.0'
} as const

/** mDNS service name of this product: other libp2p peers on the LAN are not ours. */
export const MDNS_SERVICE_TAG = '_doorbell._udp.local'

/**
 * The device repeats its presence on every events stream this often, so a viewer knows it is
 * alive: a killed doorbell (SIGKILL, power cut) closes nothing, and a browser's WebRTC connection
 * notices only after ~30 s of failed consent checks.
 */
export const DIRECT_HEARTBEAT_MS = 2000
/** A viewer that hears nothing from a device for this long (three heartbeats) shows it offline and lets the connection go. */
export const DIRECT_SILENCE_MS = 3 * DIRECT_HEARTBEAT_MS

/** Largest frame a peer may send; the reader stops at the length prefix. */
export const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES
/** A viewer's events stream from a device: room for the ring's picture (the one frame over MAX_FRAME_BYTES). */
export const MAX_EVENT_FRAME_BYTES = MAX_SNAPSHOT_MESSAGE_BYTES + 64

export const HubHello = z.strictObject({
  homeId: Id,
  deviceId: Id,
  deviceName: z.string().trim().min(1).max(64),
  direct: DirectReach.optional()
})
export type HubHello = z.infer<typeof HubHello>

export const HubReply = z.discriminatedUnion('ok', [
  z.strictObject({
    ok: z.literal(true),
    homeId: Id,
    hubName: z.string().min(1).max(64),
    /** The broker's TCP port on the address the device reached the hub at. */
    mqttPort: z.number().int().min(1).max(65535),
    /** The broker speaks MQTT over TLS (mqtts) on that port. */
    tls: z.boolean().optional(),
    /** Set when the hub knows better (a name): then the device uses it as is. */
    mqttUrl: z.string().regex(/^(mqtts?|wss?):\/\//).optional()
  }),
  z.strictObject({ ok: z.literal(false), error: z.enum(['other-home', 'bad-request']), message: z.string().max(200) })
])
export type HubReply = z.infer<typeof HubReply>

/** A viewer's stored address book: device id -> how to reach it directly. */
export const DirectBook = z.record(Id, DirectReach)

export const ViewerHello = z.strictObject({
  homeId: Id,
  viewerId: Id,
  viewerName: z.string().trim().min(1).max(64),
  /** The viewer's grant, signed by the home: the device talks to members only. */
  credential: Signed,
  /** A ViewClaim for this device and HELLO_SESSION signed by the grant's key (trust.ts). */
  proof: Signed
})
export type ViewerHello = z.infer<typeof ViewerHello>

/** What the events stream carries: the same payloads as the hub's topics. */
export const EventFrame = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('ring'), payload: RingEvent }),
  z.strictObject({ kind: z.literal('state'), payload: DeviceState }),
  z.strictObject({ kind: z.literal('presence'), payload: Presence }),
  z.strictObject({ kind: z.literal('calls'), payload: CallRecord }),
  /** The visitor's picture after a ring (docs/history.md). */
  z.strictObject({ kind: z.literal('snapshot'), payload: SnapshotEvent }),
  /** The hello was refused (another home); the device closes the stream after it. */
  z.strictObject({ kind: z.literal('refused'), message: z.string().max(200) })
])
export type EventFrame = z.infer<typeof EventFrame>


/** The part of a length-prefixed stream the framing needs (@libp2p/utils' lpStream fits). */
export interface FrameIo {
  read: () => Promise<{ subarray: () => Uint8Array }>
  write: (data: Uint8Array) => Promise<void>
}

const utf8 = new TextEncoder()

/**
 * Reads one frame and parses it; a stream that ends or errors rejects, a bad frame resolves to an
 * error. With `timeoutMs`, a peer that sends nothing in time rejects too (the caller closes the stream).
 */
export async function readFrame<S extends z.ZodType> (io: FrameIo, schema: S, where: string, timeoutMs?: number, maxBytes = MAX_FRAME_BYTES): Promise<Decoded<z.infer<S>>> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const bytes = timeoutMs === undefined
      ? await io.read()
      : await Promise.race([io.read(), new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${where}: nothing in ${timeoutMs} ms`)), timeoutMs) })])
    return decode(schema, bytes.subarray(), where, maxBytes)
  } finally {
    clearTimeout(timer)
  }
}

export async function writeFrame<S extends z.ZodType> (io: FrameIo, schema: S, value: z.input<S>): Promise<void> {
  await io.write(utf8.encode(encode(schema, value)))
}
