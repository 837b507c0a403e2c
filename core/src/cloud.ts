import { z } from 'zod'
import { Id } from './ids'
import { SignalToDevice, SignalToViewer } from './schemas'

/**
 * The cloud path (away from home): AWS IoT Core carries the events, a KVS signaling channel per
 * doorbell carries the call's offer and answer. The same messages as on the LAN, checked by the
 * same schemas; only the carriage differs:
 *
 *   IoT Core topics   things/{thingName}/ring|state|presence|calls|snapshot   (the device's certificate may
 *                     publish only under its own thing; viewers subscribe, they publish nothing)
 *   KVS signaling     viewer -> device: every message (offer, bye) as the payload of SDP_OFFER
 *                     device -> viewer: every message (answer, bye) as the payload of SDP_ANSWER
 *
 * KVS relays payloads without reading them, and has no message for a bye, so each payload is one
 * of our messages as ASCII-only JSON text (see toKvsPayload). A stock KVS viewer sends a bare
 * session description instead, which fails these schemas and is recognized per message as the
 * stock protocol (kvsStock.ts).
 */

/** AWS region, e.g. eu-west-1. */
export const Region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, 'an AWS region such as eu-west-1')
/** What AWS IoT allows in a thing name. */
export const ThingName = z.string().regex(/^[a-zA-Z0-9:_-]{1,128}$/, 'a thing name: letters, digits, ":", "_", "-" (at most 128)')
/** What KVS allows in a signaling channel name. */
export const ChannelName = z.string().regex(/^[a-zA-Z0-9_.-]{1,256}$/, 'a channel name: letters, digits, "_", ".", "-" (at most 256)')
export const ChannelArn = z.string().regex(/^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:\d{12}:channel\/[a-zA-Z0-9_.-]{1,256}\/\d+$/, 'a KVS channel ARN')
/** host or host:port (AWS endpoints are host names; stand-ins add a port). */
export const Endpoint = z.string().regex(/^[a-zA-Z0-9.-]+(:\d{1,5})?$/, 'a host name, or host:port')
const HttpsUrl = z.string().regex(/^https:\/\/[^\s/?#]+\/?$/, 'an https:// URL with no path')
const WssUrl = z.string().regex(/^wss:\/\/[^\s?#]+$/, 'a wss:// URL')

/** The device's cloud settings, written by the setup command (`npm run cloud-setup --workspace device`). */
export const DeviceCloudConfig = z.strictObject({
  region: Region,
  thingName: ThingName,
  /** The account's iot:Data-ATS endpoint; the device connects with MQTT over mutual TLS (port 8883 unless given). */
  iotEndpoint: Endpoint,
  /** The thing's certificate and private key (PEM files, kept in dataDir: git-ignored, 0600). */
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  /** CA bundle for IoT Core and KVS; default: the system's (Amazon's roots are in it). */
  caFile: z.string().min(1).optional(),
  /** The iot:CredentialProvider endpoint and role alias: short-lived AWS credentials for KVS, got with the certificate (no long-lived keys on the doorbell). */
  credentialsEndpoint: Endpoint,
  roleAlias: z.string().regex(/^[\w=,@-]{1,128}$/, 'a role alias name'),
  channelName: ChannelName,
  /** KVS control plane override (stand-ins); default https://kinesisvideo.{region}.amazonaws.com. */
  kvsEndpoint: HttpsUrl.optional(),
  /** The master renews its signaling connection after this long (KVS closes it at one hour). */
  renewAfterSeconds: z.number().int().min(10).max(3540).default(3300),
  /**
   * Stock KVS viewers (AWS's test page, the seed's viewer) may open the door with their unsigned
   * `{"command":"OPEN_DOOR"}`. Off by default: when on, anyone with access to the channel can open
   * the door, and no person is named (docs/cloud.md). Set on the doorbell itself, by its owner.
   */
  acceptUnsignedOpenDoor: z.boolean().default(false),
  /**
   * Also publish every ring to the seed's topic `doorbell/<channelName>/ring` in the seed's
   * payload (core/src/kvsStock.ts), so the seed's viewer is told. The doorbell's IoT policy must
   * allow it (`cloud-setup --seed-topics` grants exactly that topic).
   */
  seedTopics: z.boolean().default(false)
})
export type DeviceCloudConfig = z.infer<typeof DeviceCloudConfig>

/** One doorbell as the cloud knows it. */
export const CloudDevice = z.strictObject({
  deviceId: Id,
  thingName: ThingName,
  channelName: ChannelName
})
export type CloudDevice = z.infer<typeof CloudDevice>

/** What a viewer needs to use the cloud path (nothing secret: the AWS credentials are the resident's own, entered in the browser). */
export const ViewerCloudConfig = z.strictObject({
  region: Region,
  /** The account's iot:Data-ATS endpoint; browsers use wss://{iotEndpoint}/mqtt. */
  iotEndpoint: Endpoint,
  /** Override of the IoT WebSocket URL (stand-ins). */
  iotWssUrl: WssUrl.optional(),
  /** KVS control plane override (stand-ins). */
  kvsEndpoint: HttpsUrl.optional(),
  devices: z.array(CloudDevice).min(1).max(64)
})
export type ViewerCloudConfig = z.infer<typeof ViewerCloudConfig>

/** A resident's AWS credentials, typed into the settings form and kept only in that browser. */
export const AwsCredentials = z.strictObject({
  accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, 'an access key id: 16 to 128 capital letters and digits'),
  secretAccessKey: z.string().min(16, 'the secret access key is at least 16 characters').max(128),
  sessionToken: z.string().min(1).max(8192).optional()
})
export type AwsCredentials = z.infer<typeof AwsCredentials>

export type CloudTopicKind = 'ring' | 'state' | 'presence' | 'calls' | 'snapshot'
/** The ring's picture (docs/history.md) is a message of its own, at most ~88 KB: under IoT Core's 128 KB. */
const CLOUD_KINDS: readonly CloudTopicKind[] = ['ring', 'state', 'presence', 'calls', 'snapshot']
/** IoT Core refuses a publish whose payload is over 128 KB (AWS IoT Core quotas); the stand-in does too. */
export const IOT_MAX_PAYLOAD_BYTES = 128 * 1024

export const cloudTopics = {
  of: (thing: string, kind: CloudTopicKind) => `things/${thing}/${kind}`,
  /** What a viewer subscribes to for one doorbell. */
  events: (thing: string) => CLOUD_KINDS.map((kind) => `things/${thing}/${kind}`)
}

/** Parses an IoT topic of ours; null otherwise. */
export function parseCloudTopic (topic: string): { thing: string, kind: CloudTopicKind } | null {
  const p = topic.split('/')
  if (p.length !== 3 || p[0] !== 'things' || !ThingName.safeParse(p[1]).success) return null
  const kind = p[2] as CloudTopicKind
  return CLOUD_KINDS.includes(kind) ? { thing: p[1]!, kind } : null
}

/** KVS refuses a message payload over 10 KB (the base64 text the SDK sends). */
export const KVS_PAYLOAD_MAX = 10 * 1024

/** KVS refuses an 11th viewer connection on a signaling channel (`ClientLimitExceededException`). */
export const KVS_MAX_VIEWERS = 10

/**
 * Live previews the doorbell holds on the cloud path: each is one screen's KVS viewer connection,
 * and one of KVS's 10 is kept free so a screen without a preview can still Answer.
 */
export const KVS_MAX_PREVIEWS = KVS_MAX_VIEWERS - 1

/**
 * One of our messages as a KVS payload: JSON text with every non-ASCII character escaped. The SDK
 * JSON-encodes what it is given and base64s it with btoa, which throws on non-Latin-1 text in a
 * browser and garbles UTF-8 in Node; a string of ASCII passes through both unchanged.
 */
export function toKvsPayload (message: SignalToDevice | SignalToViewer | { type: string }): string {
  return JSON.stringify(message).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** The size KVS counts: base64 of the JSON the SDK makes of the payload. */
export function kvsPayloadSize (payload: string): number {
  return Math.ceil(JSON.stringify(payload).length / 3) * 4
}

export type KvsDecoded<T> = { ok: true, message: T } | { ok: false, error: string }

export function fromKvs<T> (schema: z.ZodType<T>, payload: unknown): KvsDecoded<T> {
  if (typeof payload !== 'string') return { ok: false, error: 'not a doorbell message (a bare session description?)' }
  let json: unknown
  try { json = JSON.parse(payload) } catch { return { ok: false, error: 'the payload is not JSON' } }
  const r = schema.safeParse(json)
  if (!r.success) return { ok: false, error: r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') }
  return { ok: true, message: r.data }
}

/** What the device receives (the SDK's sdpOffer payload). */
export const decodeKvsToDevice = (payload: unknown): KvsDecoded<SignalToDevice> => fromKvs(SignalToDevice, payload)
/** What a viewer receives (the SDK's sdpAnswer payload). */
export const decodeKvsToViewer = (payload: unknown): KvsDecoded<SignalToViewer> => fromKvs(SignalToViewer, payload)
