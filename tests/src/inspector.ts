import type { Page } from 'playwright-core'
import { openResident, type Resident } from './browser'
import { pairPage } from './trust'

/**
 * The owner's browser, paired through the pairing screen with the hub's one-time setup code (as
 * at home), so it may open /inspector; the owner's API token is read from the pairing answer, for
 * the test's own API calls (invites, the audit log).
 */
export async function pairOwnerBrowser (base: string, code: string, name = 'Owner'): Promise<{ owner: Resident, token: string }> {
  const owner = await openResident(`${base}/`, name)
  try {
    const answer = owner.page.waitForResponse((r) => r.url().endsWith('/api/pair') && r.request().method() === 'POST', { timeout: 20_000 })
    await pairPage(owner.page, `${base}/`, code, name)
    const body = await (await answer).json() as { token?: unknown }
    if (typeof body.token !== 'string') throw new Error('the pairing answer has no token')
    return { owner, token: body.token }
  } catch (err) {
    await owner.close()
    throw err
  }
}

/** /inspector in the owner's browser, in a page of its own. */
export async function openInspector (owner: Resident, base: string): Promise<Page> {
  const page = await owner.context.newPage()
  await page.setViewportSize({ width: 1400, height: 1000 })
  await page.goto(`${base}/inspector`)
  return page
}

/**
 * Waits until the inspector shows a machine named `name` (or, for a RegExp, any matching name)
 * reported by a `source` ('device' or 'viewer'), drawn as a statechart (not a bare actor), with
 * at least one state reached; returns its name and the states it passed through.
 */
export async function inspectorShows (page: Page, name: string | RegExp, source: 'device' | 'viewer', timeoutMs = 30_000): Promise<{ name: string, trail: string[], states: string[] }> {
  const match = typeof name === 'string' ? { exact: name } : { pattern: name.source }
  const found = await page.waitForFunction(({ exact, pattern, source }) => {
    for (const el of document.querySelectorAll<HTMLElement>('article[data-testid^="actor-"]')) {
      const actor = el.dataset.testid!.slice('actor-'.length)
      const named = exact !== undefined ? actor === exact : new RegExp(pattern!).test(actor)
      if (!named || el.dataset.source !== source) continue
      const states = [...el.querySelectorAll<HTMLElement>('[data-state]')].map((s) => s.dataset.state!)
      const trail = [...el.querySelectorAll('[data-testid^="trail-"] li')].map((li) => li.textContent ?? '')
      if (states.length > 0 && trail.length > 0) return { name: actor, trail, states }
    }
    return null
  }, { ...match, source }, { timeout: timeoutMs })
  return await found.jsonValue() as { name: string, trail: string[], states: string[] }
}
