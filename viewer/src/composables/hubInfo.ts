/**
 * What the hub says about itself (`/api/info`), and where its MQTT WebSocket is: one place for every page.
 * `paired` (an owner exists) and `caFingerprint` (the home CA's, for phones) came later: an answer
 * remembered from an older hub has neither.
 */
export interface HubInfo {
  homeId: string
  hubName: string
  mqttPath: string
  inspect: boolean
  paired?: boolean
  caFingerprint?: string | null
}

/** The last good answer, so the app can start while the hub is down. */
export const HUB_INFO_KEY = 'doorbell.hubInfo'
/** Set by the service worker (public/sw.js) on an answer it took from its cache because the hub did not answer. */
const SW_FALLBACK_HEADER = 'X-Doorbell-Cache'

/** The known fields of a hub info, or null when `value` is not one (a bad body or a bad stored value). */
export function parseHubInfo (value: unknown): HubInfo | null {
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  if (typeof v.homeId !== 'string' || v.homeId === '') return null
  if (typeof v.hubName !== 'string') return null
  if (typeof v.mqttPath !== 'string' || !v.mqttPath.startsWith('/')) return null
  if (typeof v.inspect !== 'boolean') return null
  if (v.paired !== undefined && typeof v.paired !== 'boolean') return null
  if (v.caFingerprint !== undefined && v.caFingerprint !== null && (typeof v.caFingerprint !== 'string' || v.caFingerprint.length > 200)) return null
  return {
    homeId: v.homeId,
    hubName: v.hubName,
    mqttPath: v.mqttPath,
    inspect: v.inspect,
    ...(v.paired !== undefined ? { paired: v.paired } : {}),
    ...(v.caFingerprint !== undefined ? { caFingerprint: v.caFingerprint } : {})
  }
}

/** How long to wait for /api/info: a hub that accepts connections but does not answer (frozen) must not hang the page. */
export const HUB_INFO_TIMEOUT_MS = 4000

/** GET /api/info, checked: a failed or late request, a body that is not JSON or has the wrong shape all throw. */
async function requestHubInfo (timeoutMs: number): Promise<{ info: HubInfo, fromSwCache: boolean }> {
  let res: Response
  try {
    res = await fetch('/api/info', { signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    throw (err as Error).name === 'TimeoutError' ? new Error(`no answer within ${timeoutMs} ms`) : err
  }
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  const body: unknown = await res.json().catch(() => { throw new Error('/api/info is not JSON') })
  const info = parseHubInfo(body)
  if (!info) throw new Error('/api/info has an unexpected shape')
  return { info, fromSwCache: res.headers.get(SW_FALLBACK_HEADER) !== null }
}

export async function fetchHubInfo (timeoutMs = HUB_INFO_TIMEOUT_MS): Promise<HubInfo> {
  return (await requestHubInfo(timeoutMs)).info
}

/**
 * The hub's info, remembered: a fresh answer is stored in `storage`; when the hub cannot be
 * reached (or answers badly, or not within `timeoutMs`) the last good answer comes back with
 * `cached: true`, so the app can start with the hub down. Throws only when there is neither.
 */
export async function loadHubInfo (storage: Pick<Storage, 'getItem' | 'setItem'> = localStorage, timeoutMs = HUB_INFO_TIMEOUT_MS): Promise<HubInfo & { cached: boolean }> {
  let failure: Error
  try {
    const { info, fromSwCache } = await requestHubInfo(timeoutMs)
    if (!fromSwCache) {
      try { storage.setItem(HUB_INFO_KEY, JSON.stringify(info)) } catch { /* storage full or disabled: carry on */ }
    }
    return { ...info, cached: fromSwCache }
  } catch (err) {
    failure = err as Error
  }
  const remembered = readRemembered(storage)
  if (remembered) return { ...remembered, cached: true }
  throw new Error(`${failure.message}; no earlier answer from the hub is remembered`)
}

function readRemembered (storage: Pick<Storage, 'getItem'>): HubInfo | null {
  try {
    const raw = storage.getItem(HUB_INFO_KEY)
    return raw === null ? null : parseHubInfo(JSON.parse(raw))
  } catch {
    return null
  }
}
