import { z } from 'zod'
import { CommandResult, OutOfCallCommand } from './commands'
import { fromKvs, type KvsDecoded } from './cloud'
import { DismissDirectAnswer, DismissDirectRequest } from './directDismiss'
import { Id } from './ids'

/**
 * Commands outside a call on the cloud path (docs/commands.md): a screen away from home sends the
 * same signed command it would publish on the hub's MQTT (a quick reply from the ring banner) on
 * the doorbell's KVS signaling channel, which the cloud path already holds open for calls (the
 * ring warms it). Like every viewer -> device message there it rides SDP_OFFER, and the answer
 * rides SDP_ANSWER to that viewer's client id alone. Not IoT Core: there the doorbell subscribes
 * to nothing (its policy, docs/cloud.md) and a result would reach every screen of the home.
 * KVS checks the sender's AWS signature; the doorbell checks the command (DoorGuard,
 * `outOfCallCommands`) exactly as one from the hub, with the KVS sender id as the viewer id.
 */
export const CloudCommand = z.strictObject({ type: z.literal('command'), command: OutOfCallCommand })
export type CloudCommand = z.infer<typeof CloudCommand>

/** Device -> viewer: the command's result (a refusal is a result too). */
export const CloudCommandResult = z.strictObject({ type: z.literal('command-result'), result: CommandResult })
export type CloudCommandResult = z.infer<typeof CloudCommandResult>

/**
 * A dismissal away from home (docs/history.md): the direct path's signed request as is (its proof
 * names the ring), checked by the doorbell's one dismissal handler (device/src/paths/dismissal.ts),
 * with an id its answer carries back (a KVS channel, unlike a libp2p stream, carries many at once).
 * The doorbell also requires the request's viewer id to be the KVS sender's, as for a command.
 */
export const CloudDismiss = z.strictObject({ type: z.literal('dismiss'), id: Id, request: DismissDirectRequest })
export type CloudDismiss = z.infer<typeof CloudDismiss>

/** Device -> viewer: the dismissal's answer, the direct path's (`id` null: the request could not be read). */
export const CloudDismissResult = z.strictObject({ type: z.literal('dismiss-result'), id: Id.nullable(), answer: DismissDirectAnswer })
export type CloudDismissResult = z.infer<typeof CloudDismissResult>

/** Whether a KVS payload is JSON of our envelope with this `type`, before it is parsed in full. */
export function hasType (payload: unknown, type: string): boolean {
  if (typeof payload !== 'string' || !payload.includes(`"${type}"`)) return false
  try {
    return (JSON.parse(payload) as { type?: unknown } | null)?.type === type
  } catch {
    return false
  }
}

/** Whether a KVS payload is a command (its JSON's `type`), before it is parsed in full; anything else is signaling. */
export const isCloudCommand = (payload: unknown): boolean => hasType(payload, 'command')
/** Whether a KVS payload from the doorbell is a command's result; anything else is signaling. */
export const isCloudCommandResult = (payload: unknown): boolean => hasType(payload, 'command-result')
/** Whether a KVS payload is a dismissal; anything else is signaling. */
export const isCloudDismiss = (payload: unknown): boolean => hasType(payload, 'dismiss')
/** Whether a KVS payload from the doorbell is a dismissal's answer; anything else is signaling. */
export const isCloudDismissResult = (payload: unknown): boolean => hasType(payload, 'dismiss-result')

export const decodeCloudCommand = (payload: unknown): KvsDecoded<CloudCommand> => fromKvs(CloudCommand, payload)
export const decodeCloudCommandResult = (payload: unknown): KvsDecoded<CloudCommandResult> => fromKvs(CloudCommandResult, payload)
export const decodeCloudDismiss = (payload: unknown): KvsDecoded<CloudDismiss> => fromKvs(CloudDismiss, payload)
export const decodeCloudDismissResult = (payload: unknown): KvsDecoded<CloudDismissResult> => fromKvs(CloudDismissResult, payload)
