import { ref } from 'vue'
import { fromB64url } from '@doorbell/core'
import { ApiError, type HubApi } from '../lib'

/**
 * "Notify this screen when the page is closed" (docs/history.md, "Web Push"): the browser's push
 * subscription, made with the hub's VAPID key and handed to the hub for this member. The browser's
 * push service is on the internet (Google's, Mozilla's, Apple's): with no internet at home nothing
 * can wake a closed page, and an open page still rings over its own connection.
 */

export type PushStatus =
  | { state: 'checking' | 'off' | 'on' | 'working' }
  /** This browser has no Web Push, or the hub has it off: why. */
  | { state: 'unavailable', why: string }
  | { state: 'error', why: string }

/** Does this subscription use the hub's key? (a subscription made for another hub, or before a new key, would be refused by the push service). */
export function sameKey (applicationServerKey: ArrayBuffer | null | undefined, hubKey: string): boolean {
  if (!applicationServerKey) return false
  const a = new Uint8Array(applicationServerKey)
  const b = fromB64url(hubKey)
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/** Why a browser cannot be woken by Web Push here, or null when it can. */
export function pushUnsupported (g: { navigator?: unknown, PushManager?: unknown, Notification?: unknown, isSecureContext?: boolean } = globalThis as never): string | null {
  if (!g.navigator || !('serviceWorker' in (g.navigator as object))) return 'this browser has no service worker here'
  if (g.PushManager === undefined || g.Notification === undefined) return 'this browser has no Web Push'
  if (g.isSecureContext === false) return 'Web Push needs the hub\'s page over https'
  return null
}

const SUBSCRIBE_TIMEOUT_MS = 15_000

async function withTimeout<T> (p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(message)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

export function usePushSubscription (o: { api: () => HubApi | null, screen: () => string, registration?: () => Promise<ServiceWorkerRegistration | null> }) {
  const status = ref<PushStatus>({ state: 'checking' })
  const registration = o.registration ?? (async () => await navigator.serviceWorker.ready)
  let hubKey: string | null = null

  const failed = (err: unknown, doing: string): PushStatus => {
    const why = err instanceof ApiError ? err.message : (err as Error).message || String(err)
    return { state: 'error', why: `Could not ${doing}: ${why}` }
  }

  const refresh = async (): Promise<void> => {
    const unsupported = pushUnsupported()
    if (unsupported) { status.value = { state: 'unavailable', why: unsupported }; return }
    const api = o.api()
    if (!api) { status.value = { state: 'unavailable', why: 'the hub is out of reach' }; return }
    try {
      hubKey = (await api.pushKey()).publicKey
    } catch (err) {
      status.value = err instanceof ApiError && err.status === 409 ? { state: 'unavailable', why: err.message } : failed(err, 'ask the hub')
      return
    }
    const sub = await (await registration())?.pushManager.getSubscription().catch(() => null) ?? null
    status.value = { state: sub && sameKey(sub.options.applicationServerKey, hubKey) ? 'on' : 'off' }
  }

  const turnOn = async (): Promise<void> => {
    const api = o.api()
    if (!api || !hubKey) return
    status.value = { state: 'working' }
    try {
      if (Notification.permission !== 'granted' && await Notification.requestPermission() !== 'granted') {
        status.value = { state: 'error', why: 'Notifications are blocked for this page: allow them in the browser\'s site settings.' }
        return
      }
      const reg = await registration()
      if (!reg) throw new Error('no service worker')
      const old = await reg.pushManager.getSubscription()
      if (old && !sameKey(old.options.applicationServerKey, hubKey)) await old.unsubscribe()
      // The browser asks its push service on the internet: without one it may wait for ever.
      const sub = await withTimeout(reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromB64url(hubKey) as Uint8Array<ArrayBuffer> }), SUBSCRIBE_TIMEOUT_MS, 'the browser\'s push service did not answer')
      await api.subscribePush(sub.toJSON(), o.screen())
      status.value = { state: 'on' }
    } catch (err) {
      status.value = failed(err, 'turn it on (the browser needs its push service on the internet)')
    }
  }

  const turnOff = async (): Promise<void> => {
    const api = o.api()
    status.value = { state: 'working' }
    try {
      const sub = await (await registration())?.pushManager.getSubscription() ?? null
      if (sub) {
        await sub.unsubscribe()
        await api?.unsubscribePush(sub.endpoint).catch((err: unknown) => { if (!(err instanceof ApiError && err.status === 404)) throw err })
      }
      status.value = { state: 'off' }
    } catch (err) {
      status.value = failed(err, 'turn it off')
    }
  }

  return { status, refresh, turnOn, turnOff }
}
