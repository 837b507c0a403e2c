/**
 * The operator console through a real coturn (Debian's turnserver, started here with the shipped
 * deployment/coturn/turnserver.conf rendered for loopback) with the hub's relay-only policy: the
 * console gets TURN REST credentials minted for its member at GET /api/ice, the browser gathers
 * relay candidates only, the feed plays, and the tile says relay, with the relayed address in
 * coturn's relay port range.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openResident, videoIsPlaying, type Resident } from '../src/browser'
import { FIGURES, startNodeCamera, storedPairing, tileFigures, type CameraNode } from '../src/console'
import { startCoturn, type Coturn } from '../src/coturn'
import { kill, startHomeHub, type HomeHub } from '../src/hubProcess'
import { testCertificate } from '../src/nginx'

const CAMERA = { deviceId: 'tunnel-east', name: 'Tunnel east portal', zone: 'TUNNEL-03' }

test('operator console, relay only: the feed goes through coturn with TURN REST credentials from the hub, and the tile says relay', { timeout: 180_000 }, async (t) => {
  const cleanup: Array<() => Promise<void> | void> = []
  let passed = false
  let hub: HomeHub | null = null
  let turn: Coturn | null = null
  let operator: Resident | null = null
  let camera: CameraNode | null = null
  t.after(async () => {
    if (!passed) console.log([...(operator?.console ?? []), ...(camera?.lines.slice(-20) ?? []), ...(hub?.hub.lines.slice(-30) ?? []), ...(turn?.lines.slice(-30) ?? [])].join('\n'))
    for (const step of cleanup.reverse()) {
      try { await step() } catch (err) { console.log(`cleanup: ${(err as Error).message}`) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-relay-'))
  cleanup.push(() => { rmSync(dir, { recursive: true, force: true }) })

  const coturn = await startCoturn({ dir: join(dir, 'coturn'), ...await testCertificate(dir) })
  turn = coturn
  cleanup.push(async () => { await coturn.stop() })

  // The hub: TURN REST with coturn's secret, every call relayed.
  hub = await startHomeHub(dir, { mesh: { enabled: false }, turn: { urls: coturn.urls, secret: coturn.secret, ttlSeconds: 600 }, iceTransportPolicy: 'relay' })
  const home = hub
  cleanup.push(async () => { await kill(home.hub, 'SIGTERM') })

  const cam = await startNodeCamera(home, { ...CAMERA, dir })
  camera = cam
  cleanup.push(async () => { await cam.stop() })

  const invite = await home.asOwner.invite({ kind: 'viewer', role: 'operator', zones: [CAMERA.zone] })
  operator = await openResident(`${home.base}/`, 'Tunnel desk', invite.code)
  const o = operator
  cleanup.push(async () => { await o.close() })
  const page = o.page
  await page.setViewportSize({ width: 1280, height: 800 })
  await page.goto(`${home.base}/console`)

  await page.waitForSelector(`[data-testid="tile-${CAMERA.deviceId}"][data-state=live]`, { timeout: 45_000 })
  const video = await videoIsPlaying(page, `[data-testid="tile-${CAMERA.deviceId}"] video`)
  assert.ok(video.width > 0)
  await page.waitForFunction((id) => [...document.querySelectorAll(`[data-testid="tile-${id}"] [data-testid^="fig-"]`)]
    .every((el) => (el.textContent ?? '').trim() !== '' && !(el.textContent ?? '').includes('—')), CAMERA.deviceId, { timeout: 15_000 })
  const f = await tileFigures(page, CAMERA.deviceId)
  console.log(`relay-only console figures: ${FIGURES.map((k) => `${k}=${f.figures[k]}`).join('; ')}`)

  // The browser's side of the selected pair is a relay candidate: coturn's address, a port of its relay range.
  assert.match(f.figures.path!, /^relay → /)
  const relayed = /^127\.0\.0\.1:(\d+) udp/.exec(f.figures.local!)
  assert.ok(relayed, `the local candidate is coturn's relayed address (${f.figures.local})`)
  const port = Number(relayed[1])
  assert.ok(port >= coturn.minPort && port <= coturn.maxPort, `relayed port ${port} in coturn's range ${coturn.minPort}-${coturn.maxPort}`)

  // The credential it used was minted for this operator: the TURN REST user name is `<expiry>:<member id>`.
  const me = await storedPairing(page)
  const ice = await page.evaluate(async (token) => await (await fetch('/api/ice', { headers: { Authorization: `Bearer ${token}` } })).json() as { iceServers: Array<{ username?: string }>, iceTransportPolicy: string }, me.token)
  assert.equal(ice.iceTransportPolicy, 'relay')
  assert.match(ice.iceServers.at(-1)?.username ?? '', new RegExp(`^\\d+:${me.memberId}$`))
  passed = true
})
