import { onBeforeUnmount, ref, shallowRef, type Ref } from 'vue'
import type { AudioSenderLike } from '../../lib'

/** off: nothing is sent; asking: the browser is asking for the microphone; talking: it is sent; unavailable: talk is off, `reason` says why. */
export type TalkState = 'off' | 'asking' | 'talking' | 'unavailable'

/** What a resident at the door needs: their voice, not the room's echo, hum or level swings. */
export const MICROPHONE_CONSTRAINTS = { audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false } as const

/** Why talk is off, in the resident's words, from what getUserMedia threw. Listening goes on in every case. */
export function whyNoTalk (err: unknown): string {
  const name = (err as { name?: string } | null)?.name
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Talk is off: the microphone was not allowed. Allow it for this site in the browser\'s settings to talk; you can still listen.'
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'Talk is off: this screen has no microphone. You can still listen.'
    case 'NotReadableError':
    case 'AbortError':
      return 'Talk is off: the microphone is in use by another app or could not be started. You can still listen.'
    default:
      return `Talk is off: the microphone could not be used (${err instanceof Error ? err.message : String(err)}). You can still listen.`
  }
}

type GetUserMedia = (constraints: typeof MICROPHONE_CONSTRAINTS) => Promise<MediaStream>

/**
 * Talk in one call: the microphone is asked for on first use only, then swapped into the
 * call's audio sender with `replaceTrack` (and swapped out to stop: nothing is sent, no
 * renegotiation). A refused or missing microphone sets `reason` and leaves listening alone.
 * `talk(false)` while the browser is still asking (a hold let go early) wins: nothing is sent.
 */
export function talkControl (sender: () => AudioSenderLike | undefined, getUserMedia: GetUserMedia) {
  const state: Ref<TalkState> = ref('off')
  const reason = ref<string | null>(null)
  /** The microphone track while it is being sent (the call view's level meter reads it), else null. */
  const sending = shallowRef<MediaStreamTrack | null>(null)
  let microphone: MediaStreamTrack | null = null
  let wanted = false

  const talk = async (on: boolean): Promise<void> => {
    wanted = on
    if (state.value === 'unavailable') return
    if (on && !microphone) {
      state.value = 'asking'
      try {
        const stream = await getUserMedia(MICROPHONE_CONSTRAINTS)
        microphone = stream.getAudioTracks()[0] ?? null
        if (!microphone) throw Object.assign(new Error('no audio track'), { name: 'NotFoundError' })
      } catch (err) {
        state.value = 'unavailable'
        reason.value = whyNoTalk(err)
        return
      }
    }
    const s = sender()
    if (!s) { state.value = 'off'; return }
    await s.replaceTrack(wanted ? microphone : null)
    state.value = wanted ? 'talking' : 'off'
    sending.value = wanted ? microphone : null
  }

  /**
   * The call ended or the card went away: the microphone is released (the browser's indicator
   * goes off), and the next call may ask again (the resident may have allowed it meanwhile).
   */
  const release = (): void => {
    wanted = false
    microphone?.stop()
    microphone = null
    sending.value = null
    state.value = 'off'
    reason.value = null
  }

  return { state, reason, sending, talk, release }
}

/** `talkControl` with the browser's microphone, released when the component goes. */
export function useTalk (sender: () => AudioSenderLike | undefined) {
  const control = talkControl(sender, async (c) => await navigator.mediaDevices.getUserMedia(c))
  onBeforeUnmount(control.release)
  return control
}
