import { onBeforeUnmount, ref, watch, type Ref } from 'vue'

/** The quietest level the meter shows (dBFS): below it the bar is empty. Speech sits around -30 to -10. */
export const FLOOR_DB = -60
/** How often the meter is read: fast enough to follow speech, slow enough to cost nothing. */
export const LEVEL_EVERY_MS = 100

/**
 * The level of one block of samples (-1..1) as the meter shows it: 0 (silence, or under
 * FLOOR_DB) to 100 (full scale), linear in dB, from the block's RMS.
 */
export function levelOf (samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0
  let sum = 0
  for (let i = 0; i < samples.length; i++) sum += samples[i]! ** 2
  const rms = Math.sqrt(sum / samples.length)
  if (rms <= 0) return 0
  const db = 20 * Math.log10(rms)
  return Math.round(Math.min(100, Math.max(0, (db - FLOOR_DB) / -FLOOR_DB * 100)))
}

/**
 * The level of a microphone track while it is sent: a WebAudio AnalyserNode on it, read every
 * LEVEL_EVERY_MS. No track (not talking): 0 and no audio graph. The context is closed when the
 * track changes or the component goes, so nothing keeps the microphone's audio alive.
 */
export function useLevel (track: () => MediaStreamTrack | null): Ref<number> {
  const level = ref(0)
  let context: AudioContext | null = null
  let timer: ReturnType<typeof setInterval> | undefined
  const stop = (): void => {
    clearInterval(timer)
    timer = undefined
    void context?.close().catch(() => {})
    context = null
    level.value = 0
  }
  watch(track, (t) => {
    stop()
    if (!t || typeof AudioContext === 'undefined') return
    const ctx = new AudioContext()
    context = ctx
    const analyser = ctx.createAnalyser()
    analyser.fftSize = 2048
    ctx.createMediaStreamSource(new MediaStream([t])).connect(analyser)
    const block = new Float32Array(analyser.fftSize)
    // The graph runs only in a running context; answering (a user gesture) lets it resume.
    void ctx.resume().catch(() => {})
    timer = setInterval(() => {
      analyser.getFloatTimeDomainData(block)
      level.value = levelOf(block)
    }, LEVEL_EVERY_MS)
  }, { immediate: true })
  onBeforeUnmount(stop)
  return level
}
