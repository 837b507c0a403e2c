/**
 * The operator console on a real cluster (docs/cluster.md, issue 24): three hub processes sharing
 * Redis and PostgreSQL, nginx in front with the shipped cluster configs, all started by the test
 * on loopback. A browser camera node (Chromium's fake camera at /camera) comes in through nginx,
 * which hands its WebSocket to one hub ("A", whichever it picked); the operator's console is
 * opened on another hub's own address ("B"). The tile shows the camera live, a decoded picture
 * with every figure filled in. Then A is SIGKILLed: the camera node reconnects through nginx to a
 * surviving hub by itself, and the tile on B is live again without the operator touching
 * anything. Last, the camera leaves and comes back on the surviving cluster: the tile drops and
 * is live again through a new call signalled across the hubs. axe finds nothing on the console.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { openResident, videoIsPlaying, type Resident } from '../src/browser'
import { axeViolations, describeViolations } from '../src/axe'
import { startBrowserCamera, waitForNodeState, waitForWatchers, type BrowserCamera } from '../src/cameraNode'
import { makeHomeKey, pairOwner, startClusterHub, startClusterNginx, type ClusterHub } from '../src/cluster'
import { FIGURES, tileFigures } from '../src/console'
import { eventually } from '../src/harness'
import type { Nginx } from '../src/nginx'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'

const CAMERA = { deviceId: 'cbd-king-st', name: 'King St & George St', zone: 'CBD-TRAFFIC-01' }
const TILE = `[data-testid="tile-${CAMERA.deviceId}"]`
const CLIENT_ID = `device-${CAMERA.deviceId}`

interface Connected { clientId: string, kind: string, name: string, hub: string }

/** Who is connected where, as the owner reads it through `via` (`GET /api/presence`, shared in Redis). */
async function presence (via: ClusterHub, token: string): Promise<Connected[]> {
  const res = await fetch(`${via.base}/api/presence`, { headers: { Authorization: `Bearer ${token}` } })
  if (!res.ok) throw new Error(`presence through ${via.name}: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { connected: Connected[] }).connected
}

/**
 * The hub the camera node is signed in on now (nginx chose it), other than `not`: a killed hub's
 * entries stay in Redis until they expire, so the dead one is left out by name.
 */
async function hubOfCamera (hubs: ClusterHub[], via: ClusterHub, token: string, not?: ClusterHub): Promise<ClusterHub | undefined> {
  const on = (await presence(via, token)).filter((c) => c.clientId === CLIENT_ID && c.hub !== not?.name)
  return on.length === 1 ? hubs.find((h) => h.name === on[0]!.hub) : undefined
}

/** Every figure of the tile filled in (none shows "—"), as the single-hub console test asks. */
async function figuresFilled (page: Page): Promise<void> {
  await page.waitForFunction((sel) => [...document.querySelectorAll(`${sel} [data-testid^="fig-"]`)]
    .every((el) => (el.textContent ?? '').trim() !== '' && !(el.textContent ?? '').includes('—')), TILE, { timeout: 30_000 })
}

/** The figures are right for two browsers on loopback, and read again each second. */
async function figuresRight (page: Page): Promise<Record<string, string>> {
  await figuresFilled(page)
  const first = await tileFigures(page, CAMERA.deviceId)
  assert.equal(first.state, 'live')
  assert.match(first.figures.path!, /^host → host$/)
  const CANDIDATE = /^(\[[0-9a-f:]+\]|[0-9a-z.-]+|[0-9a-f]{4}…\.local):\d+ udp$/
  assert.match(first.figures.local!, CANDIDATE)
  assert.match(first.figures.remote!, CANDIDATE)
  assert.match(first.figures.rtt!, /ms$/)
  assert.match(first.figures.fps!, /^\d+ fps$/)
  assert.match(first.figures.bitrate!, /^\d+ kbit\/s$/)
  assert.match(first.figures.loss!, /%/)
  assert.match(first.figures.cipher!, /·/)
  assert.match(first.figures.ttff!, /^\d+ ms$/)
  await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.getAttribute('data-readings')) > n, [TILE, first.readings] as const, { timeout: 15_000 })
  const second = await tileFigures(page, CAMERA.deviceId)
  assert.ok(second.readAt > first.readAt, 'the figures were read again')
  return second.figures
}

/**
 * A decoded picture in the tile: the fake camera's frame drawn to a canvas has a size and is not
 * one flat colour (a black or frozen-blank video would be).
 */
async function decodedPicture (page: Page): Promise<{ width: number, height: number, spread: number }> {
  await videoIsPlaying(page, `${TILE} video`)
  return await page.$eval(`${TILE} video`, (el) => {
    const v = el as HTMLVideoElement
    const canvas = document.createElement('canvas')
    canvas.width = v.videoWidth
    canvas.height = v.videoHeight
    const g = canvas.getContext('2d')!
    g.drawImage(v, 0, 0)
    const px = g.getImageData(0, 0, canvas.width, canvas.height).data
    let min = 255
    let max = 0
    for (let i = 0; i < px.length; i += 4 * 97) {
      const luma = (px[i]! * 3 + px[i + 1]! * 6 + px[i + 2]!) / 10
      if (luma < min) min = luma
      if (luma > max) max = luma
    }
    return { width: canvas.width, height: canvas.height, spread: max - min }
  })
}

async function accessible (page: Page, what: string): Promise<void> {
  const found = await axeViolations(page)
  assert.equal(found.length, 0, `${what}: axe-core found WCAG 2 A/AA violations:\n${describeViolations(found)}`)
}

test('operator console on three hubs: the camera on A, the tile on B, A SIGKILLed, the camera back through nginx and the tile live again by itself', { timeout: 420_000 }, async (t) => {
  // One ordered clean-up list, run last in first out, each step bounded.
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  let passed = false
  const hubs: ClusterHub[] = []
  let operator: Resident | null = null
  let camera: BrowserCamera | null = null
  let nginx: Nginx | null = null
  t.after(async () => {
    if (!passed) {
      console.log([...(operator?.console.slice(-30) ?? []), '----', ...(camera?.lines.slice(-30) ?? []), '----', ...(nginx?.lines.slice(-20) ?? [])].join('\n'))
      for (const h of hubs) console.log(`---- hub ${h.name}:\n${h.proc.lines.slice(-25).join('\n')}`)
    }
    for (const step of cleanup.reverse()) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const bounded = new Promise<void>((resolve) => { timer = setTimeout(() => { console.log(`clean-up: a step took over 20 s: ${step.toString().slice(0, 80)}`); resolve() }, 20_000) })
      try { await Promise.race([Promise.resolve().then(step), bounded]) } catch (err) { console.log(`clean-up: ${(err as Error).message}`) } finally { clearTimeout(timer) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-console-cluster-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const redis = await TestRedis.start()
  cleanup.push(() => redis.destroy())
  const db = await TestPostgres.start()
  cleanup.push(() => db.destroy())
  const postgresUrl = await db.createDatabase('city')
  const homeKey = makeHomeKey(join(dir, 'provisioned'))
  // The first hub alone migrates the empty database and prints the owner's setup code; then two more.
  for (const name of ['a', 'b', 'c']) {
    const hub = await startClusterHub(dir, name, { redis, postgresUrl, homeKey })
    hubs.push(hub)
    cleanup.push(() => hub.stop('SIGKILL'))
  }
  const owner = await pairOwner(hubs[0]!)
  const front = await startClusterNginx(join(dir, 'nginx'), hubs)
  nginx = front.nginx
  cleanup.push(() => front.nginx.stop())

  // The camera node pairs and connects through nginx (HTTPS, WSS), as a camera in the city would.
  const cam = await startBrowserCamera({ base: front.httpsUrl, asOwner: owner.on(hubs[1]!) }, { ...CAMERA, caCert: front.cert.caPem })
  camera = cam
  cleanup.push(() => cam.close())
  const A = await eventually('the hub nginx gave the camera node', async () => await hubOfCamera(hubs, hubs[2]!, owner.token), 30_000)
  const others = hubs.filter((h) => h !== A)
  const B = others[0]!
  console.log(`camera node on hub ${A.name} (through nginx); console on hub ${B.name}`)

  // The operator for that zone pairs on B's own address and opens the console there.
  const invite = await owner.on(B).invite({ kind: 'viewer', role: 'operator', zones: [CAMERA.zone] })
  const desk = await openResident(`${B.base}/`, 'Night desk', invite.code)
  operator = desk
  cleanup.push(() => desk.close())
  const page = desk.page
  assert.equal(await page.getByTestId('viewer-role').textContent(), 'operator')
  await page.setViewportSize({ width: 1280, height: 800 })
  await page.getByRole('link', { name: 'Open the operator console' }).click()
  await page.waitForURL(/\/console$/)
  await page.waitForSelector(`${TILE}[data-state=live]`, { timeout: 45_000 })
  assert.equal(await page.locator('article[data-testid^="tile-"]').count(), 1)
  assert.equal(await page.locator(TILE).getAttribute('data-zone'), CAMERA.zone)
  const picture = await decodedPicture(page)
  assert.ok(picture.width > 0 && picture.height > 0, `a decoded frame: ${JSON.stringify(picture)}`)
  assert.ok(picture.spread > 20, `the fake camera's picture, not a flat frame: ${JSON.stringify(picture)}`)
  const before = await figuresRight(page)
  // The node counts the operator as its one watcher; the cluster's presence has the operator on B.
  await waitForWatchers(cam.page, 1, 30_000)
  await eventually('the operator on B in the presence', async () => (await presence(A, owner.token)).some((c) => c.kind === 'viewer' && c.name === 'Night desk' && c.hub === B.name), 30_000)
  console.log(`tile on ${B.name}, camera on ${A.name}: ${FIGURES.map((k) => `${k}=${before[k]}`).join('; ')}`)
  await accessible(page, 'the console with a live tile on a cluster')

  // SIGKILL hub A. The node's link reconnects through nginx, which skips the dead hub.
  const states = new Set<string>()
  const watchStates = setInterval(() => { void page.locator(TILE).getAttribute('data-state').then((s) => { if (s) states.add(s) }, () => {}) }, 100)
  cleanup.push(() => { clearInterval(watchStates) })
  const killedAt = Date.now()
  await A.stop('SIGKILL')
  const again = await eventually('the camera node on a surviving hub', async () => await hubOfCamera(hubs, B, owner.token, A), 60_000)
  await waitForNodeState(cam.page, 'connected', 60_000)
  const nodeBack = Date.now() - killedAt
  assert.notEqual(again, A)
  // The tile is live again (or never stopped: the media is browser to browser) with no click.
  await page.waitForSelector(`${TILE}[data-state=live]`, { timeout: 60_000 })
  const afterKill = await decodedPicture(page)
  assert.ok(afterKill.spread > 20, `the picture after the failover: ${JSON.stringify(afterKill)}`)
  await figuresRight(page)
  const tileBack = Date.now() - killedAt
  await waitForWatchers(cam.page, 1, 30_000)
  console.log(`hub ${A.name} SIGKILLed → camera node connected on ${again.name} in ${nodeBack} ms; tile live in ${tileBack} ms; tile states seen: ${[...states].join(', ')}`)

  // The camera leaves and comes back on the surviving cluster: its will (offline) is published by
  // its new hub and reaches B over Redis; the tile drops, then calls again by itself.
  clearInterval(watchStates)
  await cam.stop()
  await page.waitForSelector(`${TILE}:is([data-state=offline], [data-state=reconnecting])`, { timeout: 30_000 })
  await eventually('the camera node gone from the presence', async () => await hubOfCamera(hubs, B, owner.token, A) === undefined, 30_000)
  await cam.restart()
  const third = await eventually('the camera node back', async () => await hubOfCamera(hubs, B, owner.token, A), 60_000)
  await page.waitForSelector(`${TILE}[data-state=live]`, { timeout: 60_000 })
  const last = await decodedPicture(page)
  assert.ok(last.spread > 20, `the picture after the camera came back: ${JSON.stringify(last)}`)
  const figures = await figuresRight(page)
  await waitForWatchers(cam.page, 1, 30_000)
  console.log(`camera back on ${third.name}, tile live on ${B.name}: ${FIGURES.map((k) => `${k}=${figures[k]}`).join('; ')}`)
  await accessible(page, 'the console after the failover')
  passed = true
})
