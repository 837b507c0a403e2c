import { Id, type Reply } from '@doorbell/core'
import type { Door } from '@doorbell/device/answering'

/** What a camera node says to any open-door command: it has no door. */
export const NO_DOOR = { code: 'no-door', message: 'this camera node has no door' } as const

/** A nack's message is bounded by the Reply schema. */
const NACK_MESSAGE_MAX = 300

/**
 * The camera node's answer to a message on the call's `control` data channel. It has no door, so
 * it checks no signature: an open-door command (anything of type "unlock", signed or not) gets
 * `no-door`, naming the command's id when it has a readable one; anything else is refused as an
 * invalid command. Never throws.
 */
export function controlReply (data: unknown): Reply {
  let text: string
  if (typeof data === 'string') text = data
  else if (data instanceof ArrayBuffer) text = new TextDecoder().decode(data)
  else if (ArrayBuffer.isView(data)) text = new TextDecoder().decode(data)
  else return invalid('a command is a JSON text message')
  if (text.length > 64 * 1024) return invalid('the command is too large')
  let message: unknown
  try {
    message = JSON.parse(text)
  } catch {
    return invalid('the command is not JSON')
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return invalid('a command is a JSON object')
  const { type, id } = message as { type?: unknown, id?: unknown }
  const readableId = Id.safeParse(id).success ? id as string : null
  if (type === 'unlock') return { type: 'nack', id: readableId, error: { ...NO_DOOR } }
  return { type: 'nack', id: readableId, error: { code: 'invalid-command', message: `unknown command type ${JSON.stringify(type ?? null).slice(0, 64)}`.slice(0, NACK_MESSAGE_MAX) } }
}

const invalid = (message: string): Reply => ({ type: 'nack', id: null, error: { code: 'invalid-command', message } })

/** A camera node's door, as the shared answering session takes it: every command is answered by `controlReply`. */
export const noDoor: Door = {
  session: (s) => ({
    opened () {},
    async command (data) {
      const reply = controlReply(data)
      if (reply.type === 'nack' && reply.error.code === 'no-door') s.log.info('refused a door command: no door', { viewer: s.viewerName })
      else s.log.warn('rejected a command', { viewer: s.viewerName, error: reply.type === 'nack' ? reply.error.message : '' })
      s.reply(reply)
    },
    stop () {}
  })
}
