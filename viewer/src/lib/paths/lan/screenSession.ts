/**
 * Which MQTT session a screen keeps on the hub. A screen is one member in one browser install:
 * its session id is kept in that browser's storage, so the hub queues the ring events pressed
 * while the screen (or the hub) was away and hands them over when the screen is back
 * (`clean: false`, QoS 1). A second tab of the same install must not take the session over
 * (MQTT-3.1.4-2: the same client id ends the first connection, and the two would kick each other
 * off for ever), so the session is held by one tab at a time with a Web Lock: the first tab holds
 * it while it lives; a tab opened beside it gets a clean session of its own (live events only,
 * which the first tab also gets), and takes the persistent one over when the first tab closes
 * (it asks again on its next start). Without Web Locks, every tab gets a clean session, as before.
 */

/** The parts of `navigator.locks` this needs. */
export interface LockManagerLike {
  request: (name: string, options: { ifAvailable: true }, callback: (lock: unknown) => Promise<unknown>) => Promise<unknown>
}

export interface StorageLike {
  getItem: (key: string) => string | null
  setItem: (key: string, value: string) => void
}

const INSTALL_KEY = 'doorbell.screen-session'
/** The id's own characters: the hub takes `viewer-{member}-{session}`, 64 characters at most in all. */
const SESSION_ID = /^[a-z0-9]{12}$/

const newSessionId = (): string => Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')

/** This browser install's session id: made once, then read from storage (a damaged value is replaced). */
export function installSessionId (storage: StorageLike): string {
  const kept = storage.getItem(INSTALL_KEY)
  if (kept !== null && SESSION_ID.test(kept)) return kept
  const id = newSessionId()
  storage.setItem(INSTALL_KEY, id)
  return id
}

/**
 * The persistent session's id if this tab may hold it (the install's Web Lock was free and is now
 * held until the tab closes); undefined: another tab holds it, or there are no Web Locks (a clean
 * session for this tab). `memberId` keys the lock, so two members paired in one browser each keep their own.
 */
export async function screenSession (storage: StorageLike, locks: LockManagerLike | undefined, memberId: string): Promise<string | undefined> {
  if (locks === undefined) return undefined
  // This tab asked before (its Home was made again): the lock it holds is its own.
  const asked = askedBy.get(locks)?.get(memberId)
  if (asked !== undefined) return await asked
  const id = installSessionId(storage)
  const answer = new Promise<string | undefined>((resolve) => {
    locks.request(`doorbell-screen-session-${memberId}`, { ifAvailable: true }, async (lock) => {
      if (lock === null) { resolve(undefined); return }
      resolve(id)
      // Held while the tab lives: the browser lets it go when the tab closes.
      await new Promise(() => {})
    }).catch(() => { resolve(undefined) })
  })
  const mine = askedBy.get(locks) ?? new Map<string, Promise<string | undefined>>()
  askedBy.set(locks, mine.set(memberId, answer))
  return await answer
}

const askedBy = new WeakMap<LockManagerLike, Map<string, Promise<string | undefined>>>()
