import { z } from 'zod'
import { Id } from './ids'
import { MAX_COMMAND_BYTES, MAX_COMMAND_RESULT_BYTES, OutOfCallCommand } from './commands'

/**
 * Commands outside a call on the direct path (docs/commands.md): with the hub down, a screen
 * sends the same signed command it would publish on the hub's MQTT (a quick reply from the ring
 * banner) to the doorbell itself, on `/doorbell/command/1.0.0` of the connection it already holds
 * for events. One request per stream: the command, parsed by the same union the broker's gate
 * parses (bad input is answered `invalid-command` and reaches nothing), then one
 * `CommandResult`. The doorbell checks the command exactly as one from the hub (DoorGuard,
 * `outOfCallCommands`): the signature, not the stream, says who sent it.
 */
export const DIRECT_COMMAND_PROTOCOL = '/doorbell/command/1.0.0'

export const DirectCommandRequest = z.strictObject({
  homeId: Id,
  /** The sender's viewer id: the command's grant must be this viewer's (as the hub's command topic names it). */
  viewerId: Id,
  command: OutOfCallCommand
})
export type DirectCommandRequest = z.infer<typeof DirectCommandRequest>

/** A request frame at most: the command and its envelope. */
export const MAX_DIRECT_COMMAND_BYTES = MAX_COMMAND_BYTES + 256
/** An answer frame at most (a kept trace's chunk is the largest result). */
export const MAX_DIRECT_RESULT_BYTES = MAX_COMMAND_RESULT_BYTES
