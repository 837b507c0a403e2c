import type { AedesOptions } from 'aedes'
import { DeviceState, Presence, decode, parseTopic } from '@doorbell/core'

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
  /**
   * Called at start for each retained state and presence read from disk (states first). A state
   * that says the doorbell is ringing was written before the hub went down, and the ring may have
   * ended meanwhile: it is withheld too until the doorbell confirms it (its next state, sent as it
   * reconnects), so a screen that connects in between never alerts for a ring that is over.
   */
  restore: (packet: Published) => void
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
    restore (packet) {
      this.observe(packet)
      const t = parseTopic(packet.topic)
      if (t?.kind !== 'state') return
      const state = decode(DeviceState, bytes(packet.payload), packet.topic)
      if (state.ok && state.value.call.status === 'ringing') stale.set(`${t.home}/${t.device}`, bytes(packet.payload))
    },
    authorizeForward (_client, packet) {
      if (!packet.topic.endsWith('/state')) return packet
      const t = parseTopic(packet.topic)
      if (t?.kind !== 'state') return packet
      const key = `${t.home}/${t.device}`
      const payload = bytes(packet.payload)
      const withheld = stale.get(key)
      if (withheld !== undefined && withheld.equals(payload)) return null
      // A retained copy read before the doorbell's newer state was taken (a SUBSCRIBE's retained
      // messages are read, then sent a turn later): overtaken, so not sent. Live states pass.
      const newest = last.get(key)
      if (packet.retain && newest !== undefined && !newest.equals(payload)) return null
      return packet
    },
    withheld: () => [...stale.keys()]
  }
}
