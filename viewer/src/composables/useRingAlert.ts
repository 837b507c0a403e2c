import type { RingEvent } from '@doorbell/core'

/**
 * The ring as a resident notices it: a two-tone chime (WebAudio, no file to fetch) repeated
 * while the ring lasts, and a system Notification where the resident allowed it.
 */
export function useRingAlert () {
  let audio: AudioContext | null = null
  const chimes = new Map<string, ReturnType<typeof setInterval>>()
  const notes = new Map<string, Notification>()

  const chime = (): void => {
    try {
      audio ??= new AudioContext()
      const t = audio.currentTime
      for (const [i, freq] of [659.25, 523.25].entries()) {
        const osc = audio.createOscillator()
        const gain = audio.createGain()
        osc.frequency.value = freq
        gain.gain.setValueAtTime(0.0001, t + i * 0.45)
        gain.gain.exponentialRampToValueAtTime(0.3, t + i * 0.45 + 0.02)
        gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.45 + 0.9)
        osc.connect(gain).connect(audio.destination)
        osc.start(t + i * 0.45)
        osc.stop(t + i * 0.45 + 1)
      }
    } catch { /* no audio output: the banner still shows */ }
  }

  return {
    alert (deviceId: string, ring: RingEvent | null): void {
      this.silence(deviceId)
      chime()
      chimes.set(deviceId, setInterval(chime, 3000))
      if (typeof Notification !== 'undefined' && Notification.permission === 'granted' && ring) {
        const n = new Notification(`${ring.deviceName} is ringing`, {
          body: `at ${new Date(ring.at).toLocaleTimeString()}`,
          tag: `ring-${deviceId}`,
          requireInteraction: true
        })
        n.onclick = () => { window.focus(); n.close() }
        notes.set(deviceId, n)
      }
    },
    silence (deviceId: string): void {
      const timer = chimes.get(deviceId)
      if (timer) clearInterval(timer)
      chimes.delete(deviceId)
      notes.get(deviceId)?.close()
      notes.delete(deviceId)
    },
    /** Browsers allow sound and notifications only after a gesture: call from a click. */
    async enable (): Promise<NotificationPermission | 'unsupported'> {
      audio ??= new AudioContext()
      await audio.resume().catch(() => {})
      if (typeof Notification === 'undefined') return 'unsupported'
      return Notification.permission === 'default' ? await Notification.requestPermission() : Notification.permission
    }
  }
}
