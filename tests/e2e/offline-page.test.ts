import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer as createNetServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/device'
import { VIEWER_DIST } from '../src/harness'
import { CHROMIUM, CHROMIUM_ARGS } from '../src/browser'
import { inviteCode, pairPage } from '../src/trust'

/** A browser profile of its own (its own service workers and caches), closed and removed after the test. */
async function browserProfile (t: { after: (fn: () => Promise<void>) => void }, serviceWorkers: 'allow' | 'block' = 'allow'): Promise<{ context: BrowserContext, page: Page, console: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-chromium-'))
  const context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, serviceWorkers })
  t.after(async () => {
    await context.close()
    await rm(dir, { recursive: true, force: true })
  })
  const page = context.pages()[0] ?? await context.newPage()
  const lines: string[] = []
  page.on('console', (m) => { lines.push(`${m.type()}: ${m.text()}`) })
  page.on('pageerror', (e) => { lines.push(`pageerror: ${e.message}`) })
  return { context, page, console: lines }
}

/** What a resident sees: the hub's name as the heading, and the connection status. */
const screen = async (page: Page): Promise<{ url: string, title: string, heading: string, link: string, alert: string | null }> => ({
  url: page.url(),
  title: await page.title(),
  heading: (await page.locator('h1').textContent({ timeout: 5000 }))?.trim() ?? '',
  link: (await page.getByTestId('link').textContent({ timeout: 5000 }))?.trim() ?? '',
  alert: await page.locator('[role=alert]').count() > 0 ? await page.locator('[role=alert]').textContent() : null
})

test('the viewer page still loads from the browser\'s cache when the hub is down; a browser that never saw it does not', { timeout: 90_000 }, async (t) => {
  const lines: string[] = []
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-offline-hub-'))
  t.after(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, hubName: 'Offline test hub', mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  let hubUp = true
  t.after(async () => { if (hubUp) await hub.stop() })
  const resident = await browserProfile(t)
  const { page } = resident
  t.after(() => { if (process.exitCode) console.log([...lines, ...resident.console].join('\n')) })

  // The hub serves the worker fresh on every check for updates, from the root (so no
  // Service-Worker-Allowed header is needed), and the manifest with its own type.
  const sw = await fetch(new URL('/sw.js', hub.url))
  assert.equal(sw.status, 200)
  assert.equal(sw.headers.get('cache-control'), 'no-cache')
  assert.match(sw.headers.get('content-type') ?? '', /^text\/javascript/)
  const manifest = await fetch(new URL('/manifest.webmanifest', hub.url))
  assert.equal(manifest.headers.get('content-type'), 'application/manifest+json')
  assert.equal((await manifest.json() as { start_url: string }).start_url, '/')

  // A hub whose /api/info answers nonsense (and nothing remembered): the app says so and keeps
  // retrying; nothing crashes. (Workers blocked so that the route sees the page's request.)
  const confused = await browserProfile(t, 'block')
  await confused.page.route('**/api/info', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: '{"homeId":42}' }))
  await confused.page.goto(hub.url)
  await confused.page.waitForSelector('[role=alert]', { timeout: 5000 })
  assert.match((await confused.page.locator('[role=alert]').textContent()) ?? '', /unexpected shape; no earlier answer/)
  assert.equal((await confused.page.locator('h1').textContent())?.trim(), 'Doorbell')
  assert.deepEqual(confused.console.filter((l) => l.startsWith('pageerror')), [])

  // With the hub up: the resident's browser pairs (the owner's setup code, through the pairing
  // screen), then the app loads, reaches the hub, and the service worker takes control.
  await pairPage(page, hub.url, await inviteCode(hub, 'owner'), 'Kitchen tablet')
  await page.goto(hub.url)
  await page.waitForSelector('[data-testid=link][data-up=true]', { timeout: 10_000 })
  assert.equal(await page.evaluate(() => window.isSecureContext), true, '127.0.0.1 is a secure context')
  const active = await page.evaluate(async () => await Promise.race([
    navigator.serviceWorker.ready.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(resolve, 10_000, false))
  ]))
  assert.ok(active, 'the service worker registered and became active')
  // clients.claim() should make the worker control this very page; reload once if it has not (yet).
  const claimed = await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 5000 }).then(() => true, () => false)
  if (!claimed) {
    await page.reload()
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 5000 })
  }
  // On install the worker stored the shell and every hashed file it references (this page loaded
  // its script before the worker existed, so the fetch handler never saw those requests). The
  // hub's info was fetched before the worker too: after the reload below it comes from localStorage.
  const { cached, referenced } = await page.evaluate(async () => {
    const names = await caches.keys()
    const keys = (await Promise.all(names.map(async (n) => (await caches.open(n)).keys()))).flat()
    const referenced = [...document.querySelectorAll<HTMLScriptElement | HTMLLinkElement>('script[src], link[rel=stylesheet]')]
      .map((el) => new URL(el instanceof HTMLScriptElement ? el.src : el.href).pathname)
    return { cached: keys.map((r) => new URL(r.url).pathname), referenced }
  })
  assert.ok(cached.includes('/'), `the shell is cached: ${cached.join(', ')}`)
  assert.ok(referenced.length >= 2, `the page references its script and style: ${referenced.join(', ')}`)
  for (const path of referenced) assert.ok(cached.includes(path), `${path} is cached (${cached.join(', ')})`)

  // The hub goes away.
  await hub.stop()
  hubUp = false

  // A reload still shows the app, promptly: the hub's name from the remembered info, and the link
  // status saying it is not connected; no error page, no "cannot reach the hub" alert.
  const started = Date.now()
  const res = await page.reload({ timeout: 10_000 })
  await page.waitForSelector('[data-testid=link]', { timeout: 5000 })
  const loadMs = Date.now() - started
  assert.equal(res?.status(), 200)
  assert.equal(res?.fromServiceWorker(), true, 'the page came from the service worker')
  const seen = await screen(page)
  assert.equal(seen.url, hub.url, 'not a chrome-error:// page')
  assert.equal(seen.title, 'Doorbell')
  assert.equal(seen.heading, 'Offline test hub')
  assert.match(seen.link, /Connecting|No connection/)
  assert.equal(await page.getByTestId('link').getAttribute('data-up'), 'false')
  assert.equal(seen.alert, null, 'no error shown: the app started from the remembered hub info')
  assert.ok(loadMs < 5000, `the page loaded in ${loadMs} ms with the hub down`)
  assert.deepEqual(resident.console.filter((l) => l.startsWith('pageerror')), [], 'no uncaught errors')

  // The control: a browser that never loaded the page while the hub was up cannot load it now.
  const stranger = await browserProfile(t)
  await assert.rejects(stranger.page.goto(hub.url, { timeout: 10_000 }), /ERR_CONNECTION_REFUSED/)

  // A frozen hub: its port accepts connections and nothing ever answers. The worker gives up on the
  // network after its timeout (2.5 s), the page on /api/info after its own (4 s): late, not hung.
  const held = new Set<Socket>()
  const frozenHub = createNetServer((socket) => { held.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => frozenHub.listen(Number(new URL(hub.url).port), '127.0.0.1', resolve))
  t.after(() => { for (const socket of held) socket.destroy(); frozenHub.close() })
  const frozenStart = Date.now()
  await page.reload({ timeout: 15_000 })
  await page.waitForSelector('[data-testid=link]', { timeout: 10_000 })
  const frozenMs = Date.now() - frozenStart
  const frozenSeen = await screen(page)
  assert.ok(held.size > 0, 'the browser did try the frozen hub')
  assert.equal(frozenSeen.url, hub.url)
  assert.equal(frozenSeen.heading, 'Offline test hub')
  assert.equal(frozenSeen.alert, null)
  assert.ok(frozenMs < 12_000, `the page loaded in ${frozenMs} ms with the hub frozen`)
  t.diagnostic(`controlled without a reload: ${claimed}; reload with the hub stopped: ${loadMs} ms, frozen: ${frozenMs} ms`)
})
