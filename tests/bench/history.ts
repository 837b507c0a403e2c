/**
 * Issue 19's figures, against the real parts on 127.0.0.1:
 *
 *   press → snapshot shown: the device (its own process, 640x480 H.264 test pattern, a keyframe
 *         every 15 frames) rings; the figure ends when headless Chromium's ring banner has decoded
 *         the picture (`img.decode()` resolved). Both clocks are this machine's epoch clock.
 *   history page: `GET /api/events?limit=50` from a real hub (startHub, node:sqlite) holding
 *         10,000 events (rings with a real 640 px snapshot file each, door attempts), as the owner.
 *   disk per 1,000 events: the history's folder (database, WAL, pictures) divided by the count.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { startHub } from '@doorbell/hub'
import { findFfmpeg } from '@doorbell/device'
import { memoryLogger, newId, type CallRecord } from '@doorbell/core'
import { openResident } from '../src/browser'
import { VIEWER_DIST } from '../src/harness'
import { deviceInvite, inviteCode } from '../src/trust'
import { percentile, round, type Bench, type Figure } from './lib'
import { epochNow, startDeviceProcess } from './proc'
import { clipOverhead } from './historyClip'

/** In the page: when the ring banner's picture was decoded, as epoch ms (0 until then). */
const WATCH_PICTURE = `(() => {
  window.pictureAt = 0
  new MutationObserver(() => {
    const img = document.querySelector('[data-testid=ring-snapshot-img]')
    if (!img || img.dataset.benchSeen) return
    img.dataset.benchSeen = '1'
    img.decode().then(() => { if (!window.pictureAt) window.pictureAt = performance.timeOrigin + performance.now() }, () => {})
  }).observe(document.body, { subtree: true, childList: true, attributes: true })
})()`

async function folderBytes (dir: string): Promise<number> {
  let total = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    total += e.isDirectory() ? await folderBytes(join(dir, e.name)) : (await stat(join(dir, e.name))).size
  }
  return total
}

async function pressToPicture (rings: number, decoder: 'running' | 'one-shot', log: (line: string) => void): Promise<number[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-history-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  // Each press must be a new ring (a press while ringing re-alerts the same one): each ring ends by
  // its timeout before the next press; long enough for a loaded machine's picture to arrive.
  const device = await startDeviceProcess({ hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, 'front-door') }, ringTimeoutSeconds: 6, camera: { snapshotDecoder: decoder } }, `history-device-${decoder}`)
  const resident = await openResident(hub.url, 'Bench', await inviteCode(hub, 'owner'))
  const { page } = resident
  const samples: number[] = []
  try {
    await page.getByTestId('doorbell-front-door').waitFor({ timeout: 15_000 })
    // The camera's first group of pictures is cached before the first press.
    await page.waitForTimeout(2000)
    await page.evaluate(WATCH_PICTURE)
    for (let i = 0; i < rings; i++) {
      await page.evaluate('window.pictureAt = 0')
      const pressedAt = epochNow()
      device.ring()
      await page.waitForFunction(() => (window as unknown as { pictureAt: number }).pictureAt > 0, undefined, { timeout: 10_000 }).catch(async (err: Error) => {
        const banner = await page.getByTestId(`doorbell-front-door`).innerHTML().catch(() => '(no card)')
        throw new Error(`no picture in the banner: ${err.message}; card: ${banner.slice(0, 600)}; device: ${device.lines.slice(-8).map((l) => l.text).join(' | ')}`)
      })
      samples.push(await page.evaluate('window.pictureAt') as number - pressedAt)
      log(`history (${decoder}): press → picture ${round(samples.at(-1)!)} ms`)
      // The ring ends by its timeout (missed); the second snapshot (3 s) lands meanwhile.
      await page.waitForSelector('[data-testid=ended]', { timeout: 15_000 })
      await page.waitForTimeout(1000)
    }
  } finally {
    await resident.close()
    await device.stop()
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
  return samples
}

/** A real snapshot-sized JPEG: one frame of the test pattern, 640 px wide, as the doorbell makes it. */
function samplePicture (): Buffer {
  const r = spawnSync(findFfmpeg(), ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=640x480:rate=1', '-frames:v', '1', '-q:v', '5', '-f', 'mjpeg', 'pipe:1'], { maxBuffer: 1 << 20 })
  if (r.status !== 0) throw new Error(`ffmpeg: ${r.stderr.toString()}`)
  return r.stdout
}

async function historyPage (events: number, requests: number): Promise<{ pageMs: number[], bytesPer1000: number, pictureBytes: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-history-api-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false }, history: { retentionDays: 3650, maxMegabytes: 100_000 } }, { log: memoryLogger([], 'hub') })
  try {
    const picture = samplePicture()
    const store = hub.history.store
    const start = Date.now() - events * 60_000
    for (let i = 0; i < events; i++) {
      const at = start + i * 60_000
      if (i % 10 === 9) {
        await store.addDoor({ id: newId('a'), deviceId: 'front-door', at, outcome: i % 20 === 19 ? 'denied' : 'allowed', reason: i % 20 === 19 ? 'no-door-right' : 'ok', message: 'bench', memberId: null, viewerId: null, viewerName: 'Bench', role: null, path: 'lan' }, 'Front door')
        continue
      }
      const ringId = newId('r')
      const id = await store.addRing({ type: 'ring', deviceId: 'front-door', deviceName: 'Front door', ringId, at, count: 1 })
      await store.setSnapshot(id, 1, picture)
      const record: CallRecord = { deviceId: 'front-door', ringId, startedAt: at, endedAt: at + 20_000, outcome: i % 3 ? 'missed' : 'answered', answeredBy: i % 3 ? [] : [{ viewerId: 'v1', viewerName: 'Kitchen tablet' }], unlocks: [] }
      await store.endRing(record, 'Front door')
    }
    const owner = hub.trust.setupCode()!.code
    const { exportPublicKey, generateSigningKey } = await import('@doorbell/core')
    const keys = await generateSigningKey(false)
    const paired = await hub.trust.pair({ kind: 'viewer', code: owner, id: newId('v'), name: 'Bench', key: await exportPublicKey(keys.publicKey) })
    const url = new URL('api/events?limit=50', hub.url)
    const headers = { authorization: `Bearer ${paired.token}` }
    for (let i = 0; i < 10; i++) await (await fetch(url, { headers })).arrayBuffer() // warm-up, not counted
    const pageMs: number[] = []
    for (let i = 0; i < requests; i++) {
      const t0 = performance.now()
      const res = await fetch(url, { headers })
      const body = await res.json() as { events: unknown[] }
      pageMs.push(performance.now() - t0)
      if (res.status !== 200 || body.events.length !== 50) throw new Error(`GET /api/events: ${res.status}, ${body.events.length} events`)
    }
    const bytes = await folderBytes(join(dataDir, 'history'))
    return { pageMs, bytesPer1000: bytes / (events / 1000), pictureBytes: picture.length }
  } finally {
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

export const historyBench: Bench = async ({ smoke, log }) => {
  const rings = smoke ? 2 : 20
  const events = smoke ? 1000 : 10_000
  const requests = smoke ? 20 : 200
  // Side by side on the same loaded machine: the running decoder (the default) and the one-shot
  // ffmpeg per picture it replaced, alternating so that both see the same load.
  const picture: number[] = []
  const oneShot: number[] = []
  for (let pass = 0; pass < 2; pass++) {
    picture.push(...await pressToPicture(rings / 2, 'running', log))
    oneShot.push(...await pressToPicture(rings / 2, 'one-shot', log))
  }
  const page = await historyPage(events, requests)
  // The clip's cost on the doorbell: rings with the owner's clip setting on and off, alternating.
  const clip = await clipOverhead(smoke ? 1 : 5, smoke ? 2 : 10, log)
  const where = `loopback, ${cpus().length} shared cores`
  const shown = `${where}; the device in its own process (640x480@30 H.264 test pattern, keyframe every 15 frames; the picture is its cached keyframe, fed to one ffmpeg decoder kept running), hub (startHub), headless Chromium (Debian); press → the banner's <img> decoded; ${picture.length} rings`
  const shownOneShot = shown.replace('fed to one ffmpeg decoder kept running', 'one ffmpeg started per picture (camera.snapshotDecoder: one-shot)')
  const api = `${where}; hub (startHub, node:sqlite) holding ${events} events (90 % rings with a ${page.pictureBytes} B snapshot file each, 10 % door attempts); GET /api/events?limit=50 as the owner, ${requests} requests after 10 not counted, one at a time (fetch)`
  const clipShown = `${where}; the device in its own process (640x480@30 H.264 test pattern, 1500 kbit/s, keyframe every 15 frames) and what it runs (encoder, snapshot decoder, the clip's ffmpeg -c copy remux), % of one core over ${clip.windowMs / 1000} s from each press (the clip's ${clip.seconds} s, its remux and its parts to the hub), ${clip.on.length} rings with the owner's clip setting on and ${clip.off.length} off, alternating; clips ${clip.clipBytes.length ? Math.round(percentile(clip.clipBytes, 50) / 1024) : 0} KB (median)`
  const figures: Figure[] = [
    { id: 'snapshot-shown-p50', name: 'press → snapshot shown in the banner, p50', value: round(percentile(picture, 50)), unit: 'ms', conditions: shown, group: 'history' },
    { id: 'snapshot-shown-p95', name: 'press → snapshot shown in the banner, p95', value: round(percentile(picture, 95)), unit: 'ms', target: { op: '<=', value: 500 }, conditions: shown, group: 'history' },
    { id: 'snapshot-shown-one-shot-p50', name: 'press → snapshot shown, one ffmpeg start per picture (the old path, same run), p50', value: round(percentile(oneShot, 50)), unit: 'ms', conditions: shownOneShot, group: 'history' },
    { id: 'snapshot-shown-one-shot-p95', name: 'press → snapshot shown, one ffmpeg start per picture (the old path, same run), p95', value: round(percentile(oneShot, 95)), unit: 'ms', conditions: shownOneShot, group: 'history' },
    { id: 'clip-cpu-on-p50', name: `device CPU during a ring with the clip on (${clip.seconds} s clip), median`, value: round(percentile(clip.on, 50)), unit: '%', conditions: clipShown, group: 'history' },
    { id: 'clip-cpu-off-p50', name: 'device CPU during a ring with the clip off (same run), median', value: round(percentile(clip.off, 50)), unit: '%', conditions: clipShown, group: 'history' },
    { id: 'clip-cpu-ratio', name: 'device CPU during a ring, clip on ÷ off (medians)', value: round(percentile(clip.on, 50) / percentile(clip.off, 50), 2), unit: 'x', conditions: clipShown, group: 'history' },
    { id: 'history-page-p95', name: `history first page (50 of ${events} events), p95`, value: round(percentile(page.pageMs, 95), 2), unit: 'ms', target: { op: '<=', value: 50 }, conditions: api, group: 'history' },
    { id: 'history-disk-per-1000', name: 'history on disk per 1,000 events (rows and pictures)', value: round(page.bytesPer1000 / 1024 / 1024, 2), unit: 'MB', conditions: api, group: 'history' }
  ]
  return figures
}
