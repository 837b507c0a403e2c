import { z } from 'zod'
import { ChannelArn, ChannelName, Endpoint, KVS_PAYLOAD_MAX, Region } from './cloud'
import { Id } from './ids'

/**
 * The stock KVS protocol, as the doorbell seed and AWS's own KVS WebRTC examples speak it
 * (docs/cloud.md "With the stock KVS protocol"), recognized per message beside our envelope:
 *
 *   viewer -> master   SDP_OFFER with a bare session description `{type:'offer', sdp}`, then
 *                      ICE_CANDIDATE with each candidate as it is found (trickle ICE)
 *   master -> viewer   SDP_ANSWER `{type:'answer', sdp}` and ICE_CANDIDATE, addressed to the viewer
 *   data channel       labelled `commands`; open the door with `{"command":"OPEN_DOOR"}`
 *   ring               AWS IoT Core topic `doorbell/<channel>/ring`, QoS 1,
 *                      `{"event":"ring","channel":"<channel>","timestamp":<unix seconds>}`
 *
 * Nothing in it is signed: access to the channel (AWS IAM) is the only check.
 */

/** The data channel a stock viewer opens for commands. */
export const STOCK_COMMANDS_CHANNEL = 'commands'

/** An SDP as KVS can carry it: the base64 of its JSON must fit KVS's 10 KB payload limit. */
const Sdp = z.string().min(1).max(KVS_PAYLOAD_MAX)

/** A bare session description (no envelope): what a stock viewer offers and a stock master answers. */
export const StockSdp = z.object({ type: z.enum(['offer', 'answer']), sdp: Sdp })
export type StockSdp = z.infer<typeof StockSdp>

/** A trickled ICE candidate as the KVS SDK sends it (RTCIceCandidate's JSON). */
export const StockCandidate = z.object({
  candidate: z.string().max(1024).regex(/^(candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ \S+.*)?$/, 'an ICE candidate line ("candidate:… typ …"), or empty for the end of candidates'),
  sdpMid: z.string().max(64).nullable().optional(),
  sdpMLineIndex: z.number().int().min(0).max(64).nullable().optional(),
  usernameFragment: z.string().max(256).nullable().optional()
})
export type StockCandidate = z.infer<typeof StockCandidate>

/** A message on the `commands` channel. The seed knows one command. */
export const StockCommand = z.strictObject({ command: z.literal('OPEN_DOOR') })
export type StockCommand = z.infer<typeof StockCommand>

/** What a master says back on the `commands` channel (the seed's master only prints; ours tells the viewer). */
export const StockCommandReply = z.strictObject({
  result: z.enum(['opened', 'refused', 'error']),
  message: z.string().max(300)
})
export type StockCommandReply = z.infer<typeof StockCommandReply>

/** What a reply on the `commands` channel says, for a resident (the seed's master says nothing; ours answers a StockCommandReply). */
export function describeStockReply (text: string): string {
  try {
    const r = StockCommandReply.safeParse(JSON.parse(text))
    if (r.success) return r.data.result === 'opened' ? `The doorbell says: ${r.data.message}` : `The doorbell refused: ${r.data.message}`
  } catch {}
  return `The doorbell says: ${text.slice(0, 200)}`
}

/** Is a KVS payload (already decoded from base64 JSON by the SDK) a bare session description, not our envelope? */
export function isStockSdp (payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && !Array.isArray(payload) && 'sdp' in payload && 'type' in payload
}

/** The size KVS counts for a stock payload: the base64 of its JSON. */
export function stockPayloadSize (payload: unknown): number {
  return Math.ceil(new TextEncoder().encode(JSON.stringify(payload)).length / 3) * 4
}

// ---------------------------------------------------------------- the seed's ring, and a stock doorbell as our viewer knows it

/** The seed's ring topic for a channel: `doorbell/<channel>/ring`. */
export const seedRingTopic = (channel: string): string => `doorbell/${channel}/ring`

/** The seed's ring payload on AWS IoT Core (QoS 1): `{"event":"ring","channel":"<channel>","timestamp":<unix seconds>}`. */
export const SeedRing = z.strictObject({
  event: z.literal('ring'),
  channel: ChannelName,
  /** Unix seconds (not milliseconds): between 2001 and 2286. */
  timestamp: z.number().int().min(1_000_000_000).max(9_999_999_999)
})
export type SeedRing = z.infer<typeof SeedRing>

/** An MQTT topic a viewer may subscribe to for a stock doorbell's rings: levels of letters, digits, `_ . : -`, no wildcards. */
const RingTopic = z.string().max(256).regex(/^[a-zA-Z0-9_.:-]+(\/[a-zA-Z0-9_.:-]+){0,7}$/, 'an MQTT topic such as doorbell/<channel>/ring (no wildcards, no leading or trailing "/")')
const HttpsUrl = z.string().regex(/^https:\/\/[^\s/?#]+\/?$/, 'an https:// URL with no path')
const WssUrl = z.string().regex(/^wss:\/\/[^\s?#]+$/, 'a wss:// URL')

/**
 * A stock KVS doorbell (the seed's KVS C master on a Pi or an AmebaPro2) added to our viewer:
 * kept in that browser, with the resident's AWS keys from the Away-from-home settings. Nothing of
 * it reaches our hub; the doorbell checks nothing but AWS access.
 */
export const StockDoorbell = z.strictObject({
  /** The viewer's own handle for it (stable across edits). */
  id: z.string().regex(/^kvs-[a-z0-9]{4,32}$/),
  name: z.string().trim().min(1, 'a name for this doorbell').max(64),
  region: Region,
  /** The channel's name, or its ARN. */
  channel: z.union([ChannelName, ChannelArn], { error: 'a KVS channel name or ARN' }),
  /** The account's iot:Data-ATS endpoint (browsers use wss://{iotEndpoint}/mqtt). */
  iotEndpoint: Endpoint,
  /** Where its rings come; default `doorbell/<channel name>/ring`. */
  ringTopic: RingTopic,
  /** Overrides (stand-ins). */
  iotWssUrl: WssUrl.optional(),
  kvsEndpoint: HttpsUrl.optional()
})
export type StockDoorbell = z.infer<typeof StockDoorbell>

/** The channel name of a name or an ARN (`arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<created>`). */
export function stockChannelName (channel: string): string {
  const arn = /^arn:aws[a-z-]*:kinesisvideo:[a-z0-9-]+:\d{12}:channel\/([a-zA-Z0-9_.-]{1,256})\/\d+$/.exec(channel)
  return arn !== null ? arn[1]! : channel
}

// ---------------------------------------------------------------- the owner's settings, signed by the home

/**
 * The owner's settings for one doorbell, set in Home settings: "accept unsigned OPEN_DOOR from KVS
 * viewers" and "live preview" (docs/preview.md). One record per doorbell (the name is the first
 * setting's: records signed before `livePreview` existed read the same). The hub signs it with the
 * home's key and sends it with the revocation list (retained, `doorbell/{home}/revocations`); the
 * doorbell checks the signature against the home key it pinned at pairing, its home and its own
 * id, and keeps the highest `seq`. A setting present overrides the doorbell's config
 * (`acceptUnsignedOpenDoor`, `livePreview`); one absent leaves the config's value, the default
 * until the owner says otherwise. (A doorbell older than `livePreview` refuses a record holding it.)
 */
export const StockDoorSetting = z.strictObject({
  home: Id,
  device: Id,
  /** Grows with every change of this doorbell's settings. */
  seq: z.number().int().min(1),
  at: z.number().int().nonnegative(),
  acceptUnsignedOpenDoor: z.boolean().optional(),
  /** Screens may watch the visitor live while it rings (false: the snapshot only); from the next ring. */
  livePreview: z.boolean().optional(),
  /** Record a clip of the first seconds after each press and hand it to the hub (docs/history.md); from the next ring. */
  clip: z.boolean().optional()
})
export type StockDoorSetting = z.infer<typeof StockDoorSetting>

/** The owner's request (`PUT /api/devices/:id/stock-setting`). */
export const StockDoorSettingRequest = z.strictObject({ acceptUnsignedOpenDoor: z.boolean() })
export type StockDoorSettingRequest = z.infer<typeof StockDoorSettingRequest>

/** The owner's request (`PUT /api/devices/:id/live-preview`). */
export const LivePreviewSettingRequest = z.strictObject({ livePreview: z.boolean() })
export type LivePreviewSettingRequest = z.infer<typeof LivePreviewSettingRequest>

/** What `GET /api/devices/stock-settings` answers: the owner's settings of each doorbell that has any (absent: not set, the doorbell's config decides). */
export const StockDoorSettingView = z.strictObject({
  deviceId: Id,
  acceptUnsignedOpenDoor: z.boolean().optional(),
  livePreview: z.boolean().optional(),
  clip: z.boolean().optional(),
  seq: z.number().int().min(1),
  at: z.number().int().nonnegative()
})
export type StockDoorSettingView = z.infer<typeof StockDoorSettingView>
export const StockDoorSettingList = z.strictObject({ settings: z.array(StockDoorSettingView).max(1024) })
export type StockDoorSettingList = z.infer<typeof StockDoorSettingList>

/** How many signed settings ride with the revocation list (one per doorbell). */
export const MAX_STOCK_SETTINGS = 256
