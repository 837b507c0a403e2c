import { onBeforeUnmount, ref, shallowRef, type Ref } from 'vue'
import type { AudioSenderLike, TalkAnswer, TalkLink } from '../../lib'

/**
 * off: nothing is sent (`reason` may say why the last try was refused); asking: the browser is
 * asking for the microphone; waiting: the doorbell is asked for the talk lease; talking: the
 * microphone is sent; unavailable: talk is off, `reason` says why.
 */
export type TalkState = 'off' | 'asking' | 'waiting' | 'talking' | 'unavailable'

/** Why the doorbell refused the lease, or ended it, in the resident's words. */
export function whyRefused (a: Exclude<TalkAnswer, { ok: true }>): string {
  if (a.code === 'busy' && a.holder) return `${a.holder} is talking`
  if (a.code === 'no-speaker') return 'This camera has no speaker: talk is off.'
  return `Talk refused: ${a.message}`
}

const ENDED_TEXT: Record<string, string> = {
  silence: 'Talk ended: no sound for 2 s.',
  max: 'Talk ended: the longest talk allowed was reached. Talk again to go on.',
  'connection-lost': 'Talk ended: the connection was lost.'
}

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
export function talkControl (sender: () => AudioSenderLike | undefined, getUserMedia: GetUserMedia, link: () => TalkLink | undefined = () => undefined) {
  const state: Ref<TalkState> = ref('off')
  const reason = ref<string | null>(null)
  /** The microphone track while it is being sent (the call view's level meter reads it), else null. */
  const sending = shallowRef<MediaStreamTrack | null>(null)
  let microphone: MediaStreamTrack | null = null
  let wanted = false
  /** The lease this screen holds (its call's link), while it holds it. */
  let held: TalkLink | null = null
  let renewTimer: ReturnType<typeof setInterval> | undefined
  let offTalker: (() => void) | null = null

  const letGo = (): void => {
    clearInterval(renewTimer)
    offTalker?.()
    offTalker = null
    held?.release()
    held = null
  }
  /** The doorbell ended the lease (silence, the maximum, a lost connection): nothing more is sent. */
  const ended = async (why: string | null): Promise<void> => {
    if (held === null) return
    clearInterval(renewTimer)
    offTalker?.()
    offTalker = null
    held = null
    wanted = false
    reason.value = why === null ? null : ENDED_TEXT[why] ?? null
    state.value = 'off'
    sending.value = null
    await sender()?.replaceTrack(null)
  }

  /**
   * `hold`: the button is held, so the lease is renewed until it is let go; a toggle is not
   * renewed and ends at the doorbell's maximum (talk never stays open by accident).
   */
  const talk = async (on: boolean, o: { hold?: boolean } = {}): Promise<void> => {
    wanted = on
    if (state.value === 'unavailable') return
    if (on && state.value !== 'talking') reason.value = null
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
    const l = link()
    if (!wanted) {
      // Nothing is sent first, then the lease goes.
      await s.replaceTrack(null)
      sending.value = null
      letGo()
      state.value = 'off'
      return
    }
    if (l && held !== l) {
      // The microphone goes in only once the doorbell granted the lease.
      state.value = 'waiting'
      const answer = await l.request()
      if (!answer.ok) {
        reason.value = whyRefused(answer)
        state.value = 'off'
        wanted = false
        return
      }
      held = l
      let self = true
      offTalker = l.onTalker((v) => { if (self && !v.self) void ended(v.ended); self = v.self })
      if (o.hold) {
        renewTimer = setInterval(() => {
          void l.renew().then((r) => { if (!r.ok && held === l) void ended(null).then(() => { reason.value = whyRefused(r) }) })
        }, Math.max(1000, answer.leaseMs / 3))
      }
      // Let go while the doorbell was answering: release at once, nothing sent.
      if (!wanted) { letGo(); state.value = 'off'; return }
    }
    await s.replaceTrack(microphone)
    state.value = 'talking'
    sending.value = microphone
  }

  /**
   * The call ended or the card went away: the microphone is released (the browser's indicator
   * goes off), and the next call may ask again (the resident may have allowed it meanwhile).
   */
  const release = (): void => {
    wanted = false
    letGo()
    microphone?.stop()
    microphone = null
    sending.value = null
    state.value = 'off'
    reason.value = null
  }

  return { state, reason, sending, talk, release }
}

/** `talkControl` with the browser's microphone, released when the component goes. */
export function useTalk (sender: () => AudioSenderLike | undefined, link: () => TalkLink | undefined = () => undefined) {
  const control = talkControl(sender, async (c) => await navigator.mediaDevices.getUserMedia(c), link)
  onBeforeUnmount(control.release)
  return control
}
