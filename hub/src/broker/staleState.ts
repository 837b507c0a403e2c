import type { AedesOptions } from 'aedes'
import { Presence, decode, parseTopic } from '@doorbell/core'

/**
 * Fail-secure for the screens that subscribe while a doorbell is offline. Its last state stays
 * retained on the broker, and after a SIGKILL while the door was open it says `unlocked`: a
 * screen opened then must not be told that. So when a doorbell's presence says offline (its will,
 * or its own goodbye), that state is marked stale and withheld from every forward (`authorizeForward`)
 * until the doorbell publishes a state again; the screen gets the presence alone and shows the lock
 * as unknown. Nothing is deleted: the doorbell's next state replaces the retained one.
 *
 * Both sides are observed in `authorizePublish` (`observe`), which runs before the broker stores or
 * forwards a message: the stale mark is set before the will goes out, and cleared before the
 * doorbell's next state goes out (the same bytes, after a short drop of its link, are its word again).
 */
/** What is read of a publish: its topic and payload. */
interface Published { topic: string, payload: string | Buffer }

export interface StaleStates {
  /** Called for every publish the broker has authorized (the wills included). */
  observe: (packet: Published) => void
  authorizeForward: NonNullable<AedesOptions['authorizeForward']>
  /** The devices whose retained state is withheld now (for tests and logs). */
  withheld: () => string[]
}

export function staleStates (): StaleStates {
  /** Per `home/device`: the payload of its newest state, and the one withheld while it is offline. */
  const last = new Map<string, Buffer>()
  const stale = new Map<string, Buffer>()
  const bytes = (p: string | Buffer): Buffer => Buffer.isBuffer(p) ? p : Buffer.from(p)
  return {
    observe (packet) {
      const t = parseTopic(packet.topic)
      if (t === null || (t.kind !== 'state' && t.kind !== 'presence')) return
      const key = `${t.home}/${t.device}`
      if (t.kind === 'state') {
        last.set(key, bytes(packet.payload))
        stale.delete(key)
        return
      }
      const presence = decode(Presence, bytes(packet.payload), packet.topic)
      if (!presence.ok || presence.value.online) return
      const state = last.get(key)
      if (state !== undefined) stale.set(key, state)
    },
    authorizeForward (_client, packet) {
      if (stale.size === 0 || !packet.topic.endsWith('/state')) return packet
      const t = parseTopic(packet.topic)
      const withheld = t?.kind === 'state' ? stale.get(`${t.home}/${t.device}`) : undefined
      return withheld !== undefined && withheld.equals(bytes(packet.payload)) ? null : packet
    },
    withheld: () => [...stale.keys()]
  }
}
