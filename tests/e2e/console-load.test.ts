/**
 * Sixteen feeds in one operator console (issue 8). A hub in its own process; sixteen Node
 * doorbells in four zones, each paired with its own device invite and with its own werift peer,
 * all fed by one test-pattern encoder (640×360 at 15 fps, H.264, a keyframe a second); an
 * operator granted the four zones pairs in Chromium and opens /console at 1920×1080. Every one of
 * the sixteen tiles goes live and its video decodes (a picture, and frames that keep coming), and
 * keeps decoding through a 10 s window in which the console page's CPU is read from Chromium's
 * own process list. The CPU, fps and dropped frames are printed, not asserted: speed belongs to
 * the bench (tests/bench/console.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LOAD_SOURCE, SIXTEEN_IN_FOUR_ZONES, describeReading, startConsoleLoad, type ConsoleLoad } from '../src/consoleLoad'

test('sixteen feeds in one console page: all live and decoding; the page\'s CPU reported', { timeout: 240_000 }, async (t) => {
  // One ordered cleanup list, run in one hook: the doorbells, the camera, the hub, the browser (load.stop), then the folder.
  const cleanup: Array<() => Promise<void> | void> = []
  let passed = false
  let load: ConsoleLoad | null = null
  t.after(async () => {
    if (!passed && load) console.log(load.diagnostics())
    for (const step of cleanup) {
      try { await step() } catch (err) { console.log(`cleanup: ${(err as Error).message}`) }
    }
  })
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-console-load-'))
  const zones = SIXTEEN_IN_FOUR_ZONES
  load = await startConsoleLoad({ dir, zones })
  const l = load
  cleanup.push(async () => { await l.stop() }, () => { rmSync(dir, { recursive: true, force: true }) })
  assert.equal(l.nodes.length, 16)
  assert.equal(new Set(l.nodes.map((n) => n.doorbell.camera)).size, 1, 'one encoder feeds them all')

  // The operator granted all four zones: sixteen tiles, every one live and decoding (openConsole waits for that, bounded).
  const screen = await l.openConsole({ zones: zones.map((z) => z.zone), name: 'Control room' })
  const { page } = screen
  assert.equal(await page.locator('article[data-testid^="tile-"]').count(), 16)
  for (const z of zones) {
    assert.equal(await page.locator(`[data-testid="zone-${z.zone}"] article[data-testid^="tile-"]`).count(), 4, `four tiles in ${z.zone}`)
  }
  // Ten seconds of the sixteen feeds: the console page's renderer CPU, the other processes, fps and drops.
  const r = await screen.measure(10_000)
  console.log(`console load: ${describeReading(r)}`)
  console.log(`console load: per tile fps ${r.tiles.map((x) => `${x.deviceId} ${x.fps.toFixed(1)}`).join(', ')}`)
  assert.equal(r.tiles.length, 16)
  for (const tile of r.tiles) {
    assert.equal(tile.state, 'live', `${tile.deviceId} stayed live`)
    assert.equal(tile.width, LOAD_SOURCE.width, `${tile.deviceId} shows the camera's picture`)
    assert.ok(tile.fps > 0, `${tile.deviceId} kept decoding (${tile.fps} fps)`)
  }
  assert.ok(Number.isFinite(r.rendererCpu) && r.rendererCpu > 0, `the console page's CPU was read (${r.rendererCpu})`)

  // 4×4 on one 1920×1080 screen: every tile in view, none scrolled away.
  const boxes = await page.locator('article[data-testid^="tile-"]').evaluateAll((els) => els.map((el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height } }))
  assert.equal(new Set(boxes.map((b) => Math.round(b.x))).size, 4, `four columns: ${JSON.stringify(boxes)}`)
  for (const b of boxes) assert.ok(b.y >= 0 && b.y + b.h <= 1080 && b.x + b.w <= 1920, `a tile out of the screen: ${JSON.stringify(b)}`)
  passed = true
})
