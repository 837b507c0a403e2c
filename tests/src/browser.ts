import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { pairPage } from './trust'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Chromium's own fake camera (a moving test pattern) and microphone, granted without a prompt. These
 * also switch off mDNS host-candidate obfuscation (FIELD-NOTES.md).
 */
export const FAKE_CAMERA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']

/** Flags that work headless as root here; loopback ICE needs its own flag (FIELD-NOTES.md). */
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'
]

export interface Resident {
  context: BrowserContext
  page: Page
  console: string[]
  close: () => Promise<void>
}

/**
 * One resident = one browser profile (its own storage, its own viewer id and key). With a code
 * the browser is paired through its pairing screen first. Certificate errors are never ignored: a
 * test over HTTPS trusts the hub's CA the way a person installs it, in the NSS database that
 * Chromium on Linux reads from $HOME/.pki/nssdb (here a HOME made for this profile).
 * `fakeCamera`: the browser has a camera (Chromium's test pattern) and may use it unasked, as a
 * camera node needs (tests/src/cameraNode.ts). `microphone`: a WAV file the fake microphone
 * plays (granted unasked), or 'refused': the browser has a microphone and the person says no.
 */
export async function openResident (url: string, name: string, code?: string, options: { caCert?: string, fakeCamera?: boolean, microphone?: string } = {}): Promise<Resident> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-chromium-'))
  const env = options.caCert ? { HOME: await homeTrusting(dir, options.caCert) } : null
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.fakeCamera ? FAKE_CAMERA_ARGS : []), ...microphoneArgs(options.microphone)],
    viewport: { width: 480, height: 900 },
    ...(env ? { env: { ...process.env, ...env } as Record<string, string> } : {})
  })
  const page = context.pages()[0] ?? await context.newPage()
  const lines: string[] = []
  page.on('console', (m) => { lines.push(`${m.type()}: ${m.text()}`) })
  page.on('pageerror', (e) => { lines.push(`pageerror: ${e.message}`) })
  if (code) await pairPage(page, url, code, name)
  else await page.goto(`${url}?name=${encodeURIComponent(name)}`)
  return {
    context,
    page,
    console: lines,
    async close () {
      await context.close()
      await rm(dir, { recursive: true, force: true })
      await rm(`${dir}-home`, { recursive: true, force: true })
    }
  }
}

/** Chromium's fake microphone playing a file (FIELD-NOTES: 16-bit PCM; it loops), or a microphone whose prompt is refused. */
function microphoneArgs (microphone: string | undefined): string[] {
  if (microphone === undefined) return []
  if (microphone === 'refused') return ['--use-fake-device-for-media-stream', '--deny-permission-prompts']
  return [...FAKE_CAMERA_ARGS, `--use-file-for-fake-audio-capture=${microphone}`]
}

/** A HOME whose NSS database trusts `caCert` (PEM) for websites; certutil comes with libnss3-tools. */
async function homeTrusting (dir: string, caCert: string): Promise<string> {
  const home = `${dir}-home`
  const db = `sql:${home}/.pki/nssdb`
  await mkdir(`${home}/.pki/nssdb`, { recursive: true })
  await writeFile(`${home}/ca.pem`, caCert)
  execFileSync('certutil', ['-d', db, '-N', '--empty-password'])
  execFileSync('certutil', ['-d', db, '-A', '-t', 'C,,', '-n', 'doorbell home CA', '-i', `${home}/ca.pem`])
  return home
}

/** Video that a person would call "playing": it has a size and its frame count grows. */
export async function videoIsPlaying (page: Page, selector = '[data-testid=video]'): Promise<{ width: number, frames: number }> {
  const sample = async (): Promise<{ width: number, frames: number }> => page.$eval(selector, (el) => {
    const v = el as HTMLVideoElement
    return { width: v.videoWidth, frames: v.getVideoPlaybackQuality().totalVideoFrames }
  })
  const deadline = Date.now() + 15_000
  let first = await sample()
  while (Date.now() < deadline) {
    await page.waitForTimeout(200)
    const now = await sample()
    if (now.width > 0 && first.width > 0 && now.frames > first.frames + 2) return now
    if (first.width === 0) first = now
  }
  throw new Error(`video did not play: ${JSON.stringify(await sample())}`)
}

/** Press and hold the open-door control as a person would. */
export async function holdToOpen (page: Page, holdMs = 900): Promise<void> {
  const button = page.getByTestId('open-door')
  await button.waitFor({ state: 'visible' })
  await page.waitForFunction(() => !(document.querySelector('[data-testid=open-door]') as HTMLButtonElement).disabled)
  const box = (await button.boundingBox())!
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
  await page.mouse.down()
  await page.waitForTimeout(holdMs)
  await page.mouse.up()
}

/** The page shows this path (lan, direct, cloud) in its link status. */
export const waitForPath = async (page: Page, path: string, timeout = 20_000): Promise<void> => {
  await page.waitForSelector(`[data-testid=link][data-path=${path}]`, { timeout })
}
export const waitForText = async (page: Page, testId: string, pattern: RegExp, timeout = 10_000): Promise<void> => {
  await page.waitForFunction(
    ([id, source]) => new RegExp(source).test(document.querySelector(`[data-testid=${id}]`)?.textContent ?? ''),
    [testId, pattern.source] as const,
    { timeout }
  )
}
/**
 * performance.now() in the page when the first video frame is shown (requestVideoFrameCallback).
 * Functions, not strings: the hub's Content-Security-Policy (script-src 'self') forbids the eval
 * Playwright would use for a string.
 */
export const firstFrame = async (page: Page): Promise<number> => await page.evaluate(async () => {
  // No named inner functions: tsx would wrap them in a helper (__name) the page does not have.
  let v: HTMLVideoElement | null = null
  while ((v = document.querySelector('[data-testid=video]')) === null) await new Promise((resolve) => setTimeout(resolve, 5))
  return await new Promise<number>((resolve) => { v!.requestVideoFrameCallback(() => { resolve(performance.now()) }) })
})
/** When the page last set the performance mark `name` (its startTime), or null. */
export const mark = async (page: Page, name: string): Promise<number | null> =>
  await page.evaluate((n) => performance.getEntriesByName(n).at(-1)?.startTime ?? null, name)

/**
 * A page's own peer connection with a data channel, as the data-channel diagnostics and tests make
 * it: `window.pc` receives video (shown in `<video id="v">` with `showVideo`), `window.dc` is the
 * channel 'commands'. Resolves to its offer once gathered.
 */
export async function pageOffer (page: Page, o: { showVideo?: boolean } = {}): Promise<string> {
  if (o.showVideo === true) await page.setContent('<video id="v" autoplay muted playsinline></video>')
  return await page.evaluate(`(async () => {
    const pc = window.pc = new RTCPeerConnection()
    pc.addTransceiver('video', { direction: 'recvonly' })
    if (${o.showVideo === true}) pc.ontrack = (e) => { document.getElementById('v').srcObject = new MediaStream([e.track]) }
    window.dc = pc.createDataChannel('commands')
    await pc.setLocalDescription()
    if (pc.iceGatheringState !== 'complete') await new Promise((r) => pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') r() }))
    return pc.localDescription.sdp
  })()`) as string
}

/** The answer to `pageOffer`, applied; resolves once the page's data channel is open. */
export async function pageAnswer (page: Page, sdp: string): Promise<void> {
  await page.evaluate(`(async () => {
    await window.pc.setRemoteDescription({ type: 'answer', sdp: ${JSON.stringify(sdp)} })
    if (window.dc.readyState !== 'open') await new Promise((r) => window.dc.addEventListener('open', r))
  })()`)
}
