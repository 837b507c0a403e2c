import { z } from 'zod'
import { CommandResult, OutOfCallCommand } from './commands'
import { fromKvs, type KvsDecoded } from './cloud'

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

/** Whether a KVS payload is a command (its JSON's `type`), before it is parsed in full; anything else is signaling. */
export function isCloudCommand (payload: unknown): boolean {
  if (typeof payload !== 'string' || !payload.includes('"command"')) return false
  try {
    return (JSON.parse(payload) as { type?: unknown } | null)?.type === 'command'
  } catch {
    return false
  }
}

/** Whether a KVS payload from the doorbell is a command's result; anything else is signaling. */
export function isCloudCommandResult (payload: unknown): boolean {
  if (typeof payload !== 'string' || !payload.includes('"command-result"')) return false
  try {
    return (JSON.parse(payload) as { type?: unknown } | null)?.type === 'command-result'
  } catch {
    return false
  }
}

export const decodeCloudCommand = (payload: unknown): KvsDecoded<CloudCommand> => fromKvs(CloudCommand, payload)
export const decodeCloudCommandResult = (payload: unknown): KvsDecoded<CloudCommandResult> => fromKvs(CloudCommandResult, payload)
