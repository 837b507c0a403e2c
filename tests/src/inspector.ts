import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { extname, join, normalize } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import { VIEWER_DIST } from './harness'
import { openResident, type Resident } from './browser'
import { pairPage } from './trust'

/**
 * The owner's browser, paired through the pairing screen with the hub's one-time setup code (as
 * at home), so it may open /inspector; the owner's API token is read from the pairing answer, for
 * the test's own API calls (invites, the audit log); its public key from the pairing request.
 */
export async function pairOwnerBrowser (base: string, code: string, name = 'Owner'): Promise<{ owner: Resident, token: string, key: string }> {
  const owner = await openResident(`${base}/`, name)
  try {
    const answer = owner.page.waitForResponse((r) => r.url().endsWith('/api/pair') && r.request().method() === 'POST', { timeout: 20_000 })
    await pairPage(owner.page, `${base}/`, code, name)
    const response = await answer
    const body = await response.json() as { token?: unknown }
    if (typeof body.token !== 'string') throw new Error('the pairing answer has no token')
    // The member's public key, as the browser sent it: a trace must not carry it either.
    const sent = response.request().postDataJSON() as { key?: unknown }
    return { owner, token: body.token, key: typeof sent.key === 'string' ? sent.key : JSON.stringify(sent.key) }
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

/** Each chart's state per actor name, as the page shows it now (`data-value` of each card). */
export async function chartStates (page: Page): Promise<Record<string, string>> {
  return await page.locator('article[data-testid^="actor-"][data-machine]').evaluateAll((els) =>
    Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.testid!.slice('actor-'.length), (e as HTMLElement).dataset.value ?? ''])))
}

/** Freezes the page at time `at` with its scrub bar, as a person dragging it would. */
export async function scrubTo (page: Page, at: number): Promise<void> {
  await page.getByTestId('scrub').evaluate((el, t) => {
    const input = el as HTMLInputElement
    input.value = String(t)
    input.dispatchEvent(new Event('input', { bubbles: true }))
  }, at)
  await page.waitForSelector(`[data-testid=cursor][data-time="${at}"]`)
}

/** The events of the sequence view, oldest first: event, lifelines, time. */
export async function sequenceEvents (page: Page): Promise<Array<{ event: string, from: string, to: string, at: number }>> {
  return await page.getByTestId('seq-event').evaluateAll((els) => els.map((e) => {
    const d = (e as HTMLElement).dataset
    return { event: d.event!, from: d.from!, to: d.to!, at: Number(d.at) }
  }))
}

/**
 * The built viewer served as plain files, with no hub and no doorbell behind it: where a saved
 * trace is replayed "in any inspector". Every path without a file gets index.html (the page
 * picks itself by path); /api answers 404, as from a server that is not a hub.
 */
export async function serveViewerOnly (): Promise<{ url: string, close: () => Promise<void> }> {
  const types: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.svg': 'image/svg+xml', '.json': 'application/json', '.webmanifest': 'application/manifest+json' }
  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname
      if (path.startsWith('/api/')) { res.writeHead(404).end(); return }
      const file = normalize(join(VIEWER_DIST, path))
      const inside = file.startsWith(VIEWER_DIST) && extname(file) !== ''
      try {
        const served = inside ? file : join(VIEWER_DIST, 'index.html')
        res.writeHead(200, { 'content-type': types[extname(served)] ?? 'application/octet-stream' }).end(await readFile(served))
      } catch {
        res.writeHead(404).end()
      }
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, close: async () => { await new Promise<void>((resolve) => server.close(() => resolve())) } }
}
