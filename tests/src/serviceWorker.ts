import type { Page } from 'playwright-core'

/** A notification as a page reads it back from its service worker's registration. */
export interface ShownNotification {
  title: string
  body: string
  image: string | null
  actions: string[]
  data: unknown
}

/**
 * Waits until the page's service worker is ready and controls the page. A first visit's worker
 * may not claim the page that registered it: the page is then loaded again, once.
 */
export async function controlled (page: Page, timeoutMs = 15_000): Promise<void> {
  await page.evaluate(async () => { await navigator.serviceWorker.ready })
  const claimed = await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: timeoutMs }).then(() => true, () => false)
  if (!claimed) {
    await page.reload()
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: timeoutMs })
  }
}

/** The notification with this tag that the site's service worker (scope `/`) shows now, or null. */
export async function shownNotification (page: Page, tag: string): Promise<ShownNotification | null> {
  return await page.evaluate(async (tag) => {
    const reg = await navigator.serviceWorker.getRegistration('/')
    const [n] = await reg!.getNotifications({ tag }) as Array<Notification & { image?: string, actions: Array<{ action: string }> }>
    return n ? { title: n.title, body: n.body, image: n.image ?? null, actions: n.actions.map((a) => a.action), data: n.data as unknown } : null
  }, tag)
}
