import { ref, type Ref } from 'vue'
import { talkControl, type TalkState } from '../components/call/useTalk'
import type { TileFeed } from './tileFeed'

type GetUserMedia = Parameters<typeof talkControl>[1]

/**
 * Talk from the operator console: the resident's talk control (components/call/useTalk.ts: the
 * microphone asked for once, swapped into the call's audio sender once the device granted the
 * talk lease, released on let-go) pointed at one tile at a time. Talking on another tile first
 * lets go of the one before (its lease released, nothing sent to it), so the console has one
 * microphone and at most one lease. The device checks the talk right of the operator's zone; a
 * refusal shows on the tile that asked (`active`).
 */
export function consoleTalk (feedOf: (deviceId: string) => TileFeed | undefined, getUserMedia: GetUserMedia) {
  /** The tile talking, or that last asked to (its refusal or end is shown on it). */
  const active: Ref<string | null> = ref(null)
  const control = talkControl(
    () => active.value === null ? undefined : feedOf(active.value)?.sender.value ?? undefined,
    getUserMedia,
    () => active.value === null ? undefined : feedOf(active.value)?.link.value ?? undefined
  )
  /** The tile the operator wants to talk to now (null: none); each step of the chain acts on the latest wish. */
  let wanted: string | null = null
  let chain: Promise<void> = Promise.resolve()

  const settle = async (hold: boolean): Promise<void> => {
    const want = wanted
    // Switching tiles: the one before lets go first, so its sender and lease are the ones let go.
    if (active.value !== null && active.value !== want) await control.talk(false)
    if (want === null) return
    if (active.value !== want) {
      active.value = want
      control.reason.value = null
    }
    await control.talk(true, { hold })
  }
  const queue = (step: () => Promise<void>): Promise<void> => {
    chain = chain.then(step, step)
    return chain
  }

  /** Talk to this tile's camera (`hold`: the lease is renewed until `stop`; else it ends at the device's maximum). */
  const start = async (deviceId: string, o: { hold?: boolean } = {}): Promise<void> => {
    wanted = deviceId
    await queue(async () => { if (wanted === deviceId) await settle(o.hold === true) })
  }

  /** Stop talking to this tile (a hold let go, the toggle pressed again); a no-op for another tile. */
  const stop = async (deviceId: string): Promise<void> => {
    if (wanted === deviceId) wanted = null
    // At once too: a hold let go while the device is still answering wins (nothing is sent).
    if (active.value === deviceId) void control.talk(false)
    await queue(async () => { if (active.value === deviceId && wanted !== deviceId && control.state.value !== 'off') await control.talk(false) })
  }

  /** This tile's call ended (or the tile went): whatever it held is let go; the microphone too. */
  const dropped = (deviceId: string): void => {
    if (active.value !== deviceId) return
    if (wanted === deviceId) wanted = null
    control.release()
  }

  /** What the tile shows of talk: its state, and why it is off, for the tile that asked. */
  const stateOf = (deviceId: string): { state: TalkState, reason: string | null } =>
    active.value === deviceId ? { state: control.state.value, reason: control.reason.value } : { state: 'off', reason: null }

  return { active, state: control.state, reason: control.reason, sending: control.sending, start, stop, dropped, stateOf, release: control.release }
}

export type ConsoleTalk = ReturnType<typeof consoleTalk>
