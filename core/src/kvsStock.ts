import { z } from 'zod'
import { KVS_PAYLOAD_MAX } from './cloud'

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

/** Is a KVS payload (already decoded from base64 JSON by the SDK) a bare session description, not our envelope? */
export function isStockSdp (payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && !Array.isArray(payload) && 'sdp' in payload && 'type' in payload
}

/** The size KVS counts for a stock payload: the base64 of its JSON. */
export function stockPayloadSize (payload: unknown): number {
  return Math.ceil(new TextEncoder().encode(JSON.stringify(payload)).length / 3) * 4
}
