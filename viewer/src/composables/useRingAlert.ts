import type { RingEvent, SnapshotEvent } from '@doorbell/core'

/** A ring's picture as the banner shows it: a data: URL (the CSP allows it), or why there is none. */
export interface RingPicture { ringId: string, seq: number, url: string | null, reason: string | null }

export const ringPicture = (s: SnapshotEvent): RingPicture => ({
  ringId: s.ringId,
  seq: s.seq,
  url: s.jpeg === null ? null : `data:image/jpeg;base64,${s.jpeg}`,
  reason: s.jpeg === null ? s.reason ?? 'no picture' : null
})

/** What the service worker's notification carries, and what it posts back when tapped (sw.js). */
export interface RingNotificationData { kind: 'ring', deviceId: string, ringId: string }
export interface RingNotificationAction { type: 'ring-notification', action: 'answer' | 'dismiss' | 'open', deviceId: string, ringId: string }

export const ringNotificationTag = (deviceId: string): string => `ring-${deviceId}`

/**
 * What a system notification of a ring says and shows: the doorbell's name, the time, the
 * visitor's picture when it has come, Answer and Dismiss. Pure, so it is tested without a browser.
 */
export function ringNotification (ring: RingEvent, picture: RingPicture | null): { title: string, options: NotificationOptions & { image?: string, actions?: Array<{ action: string, title: string }>, renotify?: boolean } } {
  const data: RingNotificationData = { kind: 'ring', deviceId: ring.deviceId, ringId: ring.ringId }
  const mine = picture?.ringId === ring.ringId ? picture : null
  return {
    title: `${ring.deviceName} is ringing`,
    options: {
      body: `at ${new Date(ring.at).toLocaleTimeString()}${mine && mine.url === null ? ' · no picture' : ''}`,
      tag: ringNotificationTag(ring.deviceId),
      requireInteraction: true,
      data,
      ...(mine?.url ? { image: mine.url } : {}),
      icon: '/icon.svg',
      actions: [{ action: 'answer', title: 'Answer' }, { action: 'dismiss', title: 'Dismiss' }]
    }
  }
}

/**
 * The ring as a resident notices it: a two-tone chime (WebAudio, no file to fetch) repeated
 * while the ring lasts, and where the resident allowed it (it matters most while the page is
 * hidden) a system notification through the service worker (`showNotification`: it has the picture, Answer and Dismiss, and a tap opens the app on
 * that ring). Without a service worker, a plain Notification without actions.
 */
export function useRingAlert (o: { serviceWorker?: () => Promise<ServiceWorkerRegistration | null> } = {}) {
  let audio: AudioContext | null = null
  const chimes = new Map<string, ReturnType<typeof setInterval>>()
  const notes = new Map<string, Notification>()
  /** The ring each doorbell is alerting for (and its picture once it has come). */
  const ringing = new Map<string, { ring: RingEvent, picture: RingPicture | null, shown: boolean }>()
  const registration = o.serviceWorker ?? (async () => {
    if (typeof navigator === 'undefined' || !('serviceWorker' in navigator) || !navigator.serviceWorker.controller) return null
    return await navigator.serviceWorker.getRegistration().then((r) => r ?? null, () => null)
  })

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

  const allowed = (): boolean => typeof Notification !== 'undefined' && Notification.permission === 'granted'

  /** Shows (or, with the picture now, replaces: same tag) the ring's notification, where the resident allowed them. */
  const notify = async (deviceId: string): Promise<void> => {
    const r = ringing.get(deviceId)
    if (!r || !allowed()) return
    const { title, options } = ringNotification(r.ring, r.picture)
    const reg = await registration()
    if (ringing.get(deviceId) !== r) return // silenced meanwhile
    if (reg) {
      await reg.showNotification(title, r.shown ? { ...options, renotify: false } : options).catch(() => {})
      r.shown = true
      return
    }
    notes.get(deviceId)?.close()
    const n = new Notification(title, { body: options.body ?? '', tag: options.tag ?? '', requireInteraction: true })
    n.onclick = () => { window.focus(); n.close() }
    notes.set(deviceId, n)
    r.shown = true
  }

  return {
    alert (deviceId: string, ring: RingEvent | null): void {
      this.silence(deviceId)
      chime()
      chimes.set(deviceId, setInterval(chime, 3000))
      if (ring) {
        ringing.set(deviceId, { ring, picture: null, shown: false })
        void notify(deviceId)
      }
    },
    /** The ring's picture has come: the notification shows it (the banner reads it from useHome). */
    picture (deviceId: string, picture: RingPicture): void {
      const r = ringing.get(deviceId)
      if (!r || r.ring.ringId !== picture.ringId) return
      r.picture = picture
      void notify(deviceId)
    },
    silence (deviceId: string): void {
      const timer = chimes.get(deviceId)
      if (timer) clearInterval(timer)
      chimes.delete(deviceId)
      notes.get(deviceId)?.close()
      notes.delete(deviceId)
      const was = ringing.get(deviceId)
      ringing.delete(deviceId)
      if (was?.shown) {
        void registration().then(async (reg) => {
          for (const n of await reg?.getNotifications({ tag: ringNotificationTag(deviceId) }) ?? []) n.close()
        })
      }
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
