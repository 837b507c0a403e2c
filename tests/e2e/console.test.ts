/**
 * The operator console in headless Chromium. A hub (its own process) and two browser camera nodes
 * (pages at /camera with Chromium's fake camera) in two zones (CBD-TRAFFIC-01, HARBOUR-02); an operator granted CBD-TRAFFIC-01 only pairs through the
 * pairing screen, follows the link to /console and sees exactly one tile: the CBD camera, playing,
 * every connection figure filled in and refreshed each second, the path on host candidates. The
 * tile enlarges and Escape brings the grid back. The camera is stopped: the tile says so; started
 * again (same pairing): the tile is live again by itself. The broker refuses the operator's
 * subscription to the harbour camera (SUBACK 0x80) and the console has no tile for it. An unpaired
 * browser is sent to pair; a resident's is told the console is for operators. The owner's
 * /inspector shows the tile's feed machine keeping the feed up through the drop.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HubClient } from '@doorbell/viewer/lib'
import { openResident, videoIsPlaying, type Resident } from '../src/browser'
import { eventually } from '../src/harness'
import { pairPage } from '../src/trust'
import { kill, startHomeHub, type HomeHub } from '../src/hubProcess'
import { FIGURES, grantedFor, storedPairing, tileFigures } from '../src/console'
import { startBrowserCamera, type BrowserCamera } from '../src/cameraNode'
import { inspectorShows, pairOwnerBrowser } from '../src/inspector'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))
const CBD = { deviceId: 'cbd-king-st', name: 'King St & George St', zone: 'CBD-TRAFFIC-01' }
const HARBOUR = { deviceId: 'harbour-pier-2', name: 'Pier 2 gate', zone: 'HARBOUR-02' }

test('operator console: one zone\'s feed with every figure, enlarge and back, a dropped feed comes back by itself, the other zone refused', { timeout: 240_000 }, async (t) => {
  // One ordered cleanup list, run in one hook.
  const cleanup: Array<() => Promise<void> | void> = []
  let passed = false
  let hub: HomeHub | null = null
  let operator: Resident | null = null
  const cameras: BrowserCamera[] = []
  t.after(async () => {
    if (!passed) console.log([...(operator?.console ?? []), ...cameras.flatMap((c) => c.lines.slice(-20)), ...(hub?.hub.lines.slice(-30) ?? [])].join('\n'))
    // Each step bounded: one that hangs is reported and the rest still run.
    for (const step of cleanup.reverse()) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const bounded = new Promise<void>((resolve) => { timer = setTimeout(() => { console.log(`cleanup: a step took over 20 s: ${step.toString().slice(0, 80)}`); resolve() }, 20_000) })
      try { await Promise.race([Promise.resolve().then(step), bounded]) } catch (err) { console.log(`cleanup: ${(err as Error).message}`) } finally { clearTimeout(timer) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-console-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  // The owner pairs in a browser, which shows /inspector (inspection on).
  const owners: Resident[] = []
  hub = await startHomeHub(dir, { mesh: { enabled: false }, inspect: true }, {
    pairOwner: async (base, code) => {
      const paired = await pairOwnerBrowser(base, code)
      owners.push(paired.owner)
      return paired.token
    }
  })
  const home = hub
  cleanup.push(async () => { await kill(home.hub, 'SIGTERM') })
  const inspector = owners[0]!.page
  cleanup.push(async () => { await owners[0]!.close() })
  await inspector.setViewportSize({ width: 1400, height: 1000 })
  await inspector.goto(`${home.base}/inspector`)

  // Two camera nodes in two zones: browser pages with Chromium's fake camera, paired at /camera.
  for (const c of [CBD, HARBOUR]) {
    const camera = await startBrowserCamera(home, c)
    cameras.push(camera)
    cleanup.push(async () => { await camera.close() })
  }
  const [cbd] = cameras as [BrowserCamera, BrowserCamera]

  // The owner invites an operator for the CBD zone; the operator's browser pairs through its screen.
  const invite = await home.asOwner.invite({ kind: 'viewer', role: 'operator', zones: [CBD.zone] })
  operator = await openResident(`${home.base}/`, 'Night desk', invite.code)
  const o = operator
  cleanup.push(async () => { await o.close() })
  const page = o.page
  assert.equal(await page.getByTestId('viewer-role').textContent(), 'operator')
  // The resident app sends an operator to the console (no doorbell cards for it).
  await page.getByRole('link', { name: 'Open the operator console' }).waitFor({ timeout: 10_000 })
  assert.equal(await page.locator('[data-testid^="doorbell-"]').count(), 0)
  await page.setViewportSize({ width: 1920, height: 1080 })
  await page.getByRole('link', { name: 'Open the operator console' }).click()
  await page.waitForURL(/\/console$/)

  // Exactly one tile: the CBD camera's, in its zone, playing.
  const tile = page.getByTestId(`tile-${CBD.deviceId}`)
  await page.waitForSelector(`[data-testid="tile-${CBD.deviceId}"][data-state=live]`, { timeout: 20_000 })
  assert.equal(await page.locator('article[data-testid^="tile-"]').count(), 1)
  assert.equal(await tile.getAttribute('data-zone'), CBD.zone)
  assert.match(await tile.textContent() ?? '', new RegExp(`${CBD.zone}.*${CBD.name}`))
  const video = await videoIsPlaying(page, `[data-testid="tile-${CBD.deviceId}"] video`)
  assert.ok(video.width > 0)
  assert.equal(await page.locator('video').evaluate((v) => (v as HTMLVideoElement).muted && v.hasAttribute('playsinline')), true)

  // Every figure filled in, and read again each second (the reading counter and its time move).
  await page.waitForFunction((id) => [...document.querySelectorAll(`[data-testid="tile-${id}"] [data-testid^="fig-"]`)]
    .every((el) => (el.textContent ?? '').trim() !== '' && !(el.textContent ?? '').includes('—')), CBD.deviceId, { timeout: 15_000 })
  const first = await tileFigures(page, CBD.deviceId)
  for (const k of FIGURES) assert.doesNotMatch(first.figures[k]!, /—/, `${k} is filled in`)
  assert.match(first.figures.path!, /^host → host$/)
  // address:port protocol (Chromium names its own host candidate by an mDNS name unless the page
  // has camera permission; the doorbell's is whichever interface ICE picked).
  const CANDIDATE = /^(\[[0-9a-f:]+\]|[0-9a-z.-]+|[0-9a-f]{4}…\.local):\d+ udp$/
  assert.match(first.figures.local!, CANDIDATE)
  assert.match(first.figures.remote!, CANDIDATE)
  assert.match(first.figures.rtt!, /ms$/)
  assert.match(first.figures.fps!, /^\d+ fps$/)
  assert.match(first.figures.bitrate!, /^\d+ kbit\/s$/)
  assert.match(first.figures.loss!, /%/)
  assert.match(first.figures.cipher!, /·/)
  assert.match(first.figures.ttff!, /^\d+ ms$/)
  await page.waitForFunction(([id, n]) => Number(document.querySelector(`[data-testid="tile-${id}"]`)?.getAttribute('data-readings')) > n, [CBD.deviceId, first.readings] as const, { timeout: 5000 })
  const second = await tileFigures(page, CBD.deviceId)
  assert.ok(second.readings > first.readings && second.readAt > first.readAt, 'the figures were read again')
  console.log(`console figures of ${CBD.deviceId} (reading ${second.readings}): ${FIGURES.map((k) => `${k}=${second.figures[k]}`).join('; ')}`)
  await mkdir(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOTS}/console.png` })

  // Enlarge with one click: the tile fills the console; Escape goes back; focus follows.
  const inGrid = (await tile.boundingBox())!
  await page.getByRole('button', { name: `Enlarge ${CBD.name}` }).click()
  await page.getByRole('dialog', { name: new RegExp(CBD.name) }).waitFor()
  const box = (await tile.boundingBox())!
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 1920, 1080], 'the enlarged tile fills the console')
  assert.ok(inGrid.y > 0 && inGrid.height < 1080, `in the grid it sits below the bar (${JSON.stringify(inGrid)})`)
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'close-enlarged')
  await page.keyboard.press('Escape')
  await page.getByRole('dialog').waitFor({ state: 'detached' })
  assert.deepEqual(await tile.boundingBox(), inGrid, 'back in its place in the grid')
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), `Enlarge ${CBD.name}`)
  // By keyboard alone: Enter on the focused button, then the close button.
  await page.keyboard.press('Enter')
  await page.getByRole('dialog').waitFor()
  await page.keyboard.press('Enter')
  await page.getByRole('dialog').waitFor({ state: 'detached' })

  // The camera goes away: the tile says the feed dropped.
  const stoppedAt = Date.now()
  await cbd.stop()
  await page.waitForSelector(`[data-testid="tile-${CBD.deviceId}"]:is([data-state=offline], [data-state=reconnecting])`, { timeout: 15_000 })
  const noticed = Date.now() - stoppedAt
  const dropped = await tile.getAttribute('data-state')
  assert.match(await tile.getByTestId('tile-message').textContent() ?? '', /reconnecting/i)
  // It comes back with the same pairing: live again, with no click.
  const restartedAt = Date.now()
  await cbd.restart()
  await page.waitForSelector(`[data-testid="tile-${CBD.deviceId}"][data-state=live]`, { timeout: 30_000 })
  const back = Date.now() - restartedAt
  await videoIsPlaying(page, `[data-testid="tile-${CBD.deviceId}"] video`)
  await page.waitForFunction((id) => [...document.querySelectorAll(`[data-testid="tile-${id}"] [data-testid^="fig-"]`)]
    .every((el) => (el.textContent ?? '').trim() !== '' && !(el.textContent ?? '').includes('—')), CBD.deviceId, { timeout: 15_000 })
  const after = await tileFigures(page, CBD.deviceId)
  assert.equal(after.state, 'live')
  // The owner's inspector shows the tile's feed machine: it called, lost the camera, waited or saw it offline, and called again.
  const feed = await eventually('the feed\'s way back in the inspector', async () => {
    const shown = await inspectorShows(inspector, `feed:${CBD.deviceId}`, 'viewer')
    const calls = shown.trail.filter((s) => s.includes('retry.starting')).length
    return calls >= 2 && shown.trail.some((s) => s === 'offline' || s.includes('retry.waiting')) ? shown : undefined
  }, 15_000)
  assert.ok(feed.states.includes('refused') && feed.states.includes('watching.stall.stalled'), `the feed's statechart: ${feed.states.join(', ')}`)
  console.log(`camera stopped -> tile ${dropped} in ${noticed} ms; camera restarted -> tile live in ${back} ms (start-up included); then: ${FIGURES.map((k) => `${k}=${after.figures[k]}`).join('; ')}`)

  // Neither the resident app nor the console asked the broker for what an operator may not have.
  const me = await storedPairing(page)
  assert.equal(me.role, 'operator')
  const refusedLines = (): string[] => home.hub.lines.filter((l) => l.includes('refused a subscription') && l.includes(`viewer-${me.viewerId}-`))
  assert.deepEqual(refusedLines(), [])

  // The harbour zone is not the operator's: the broker refuses its topics to these very credentials.
  const granted = await grantedFor(home.mqttUrl, { clientId: `viewer-${me.viewerId}-x`, username: me.memberId, password: me.token }, [
    `doorbell/home/${HARBOUR.deviceId}/state`,
    `doorbell/home/${CBD.deviceId}/state`
  ])
  assert.deepEqual(granted[`doorbell/home/${HARBOUR.deviceId}/state`], [128])
  assert.deepEqual(granted[`doorbell/home/${CBD.deviceId}/state`], [1], 'the same credentials do get their own zone')
  // The viewer's own hub client, asked for both cameras, lists the harbour one as refused and hears the CBD one.
  const client = new HubClient({
    url: home.mqttUrl,
    homeId: 'home',
    viewerId: me.viewerId,
    viewerName: 'Night desk (Node)',
    auth: { memberId: me.memberId, token: me.token },
    devices: [CBD.deviceId, HARBOUR.deviceId],
    log: () => {}
  })
  cleanup.push(async () => { await client.close() })
  const refusedEvents: string[] = []
  client.onRefused((id) => { refusedEvents.push(id) })
  const heard = new Set<string>()
  client.on('presence', (p) => { heard.add(p.deviceId) })
  await eventually('the harbour camera refused', () => client.refused.has(HARBOUR.deviceId))
  await eventually('the CBD camera\'s presence', () => heard.has(CBD.deviceId))
  assert.deepEqual([...client.refused], [HARBOUR.deviceId])
  assert.deepEqual(refusedEvents, [HARBOUR.deviceId])
  assert.ok(!heard.has(HARBOUR.deviceId))
  assert.ok(refusedLines().length >= 2, 'the hub logged both refusals (Node client and hub client)')
  assert.equal(await page.getByTestId(`tile-${HARBOUR.deviceId}`).count(), 0)
  assert.equal(await page.locator('article[data-testid^="tile-"]').count(), 1)

  // Another browser: unpaired, /console sends it to pair; paired as a resident, it is told the console is for operators.
  const other = await openResident(`${home.base}/`, 'Hall phone')
  cleanup.push(async () => { await other.close() })
  await other.page.goto(`${home.base}/console`)
  await other.page.getByTestId('console-unpaired').waitFor()
  assert.equal(await other.page.getByRole('link', { name: /pair it/i }).getAttribute('href'), '/')
  const residentInvite = await home.asOwner.invite({ kind: 'viewer', role: 'resident' })
  await pairPage(other.page, `${home.base}/`, residentInvite.code, 'Hall phone')
  await other.page.goto(`${home.base}/console`)
  await other.page.getByTestId('console-not-operator').waitFor()
  assert.match(await other.page.getByTestId('console-not-operator').textContent() ?? '', /The console is for operators/)
  assert.equal(await other.page.locator('article[data-testid^="tile-"]').count(), 0)
  passed = true
})
