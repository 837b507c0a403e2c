import type { Page } from 'playwright-core'
import type { HubApi } from '@doorbell/viewer/lib'
import { openResident, type Resident } from './browser'

export interface CameraNodePage extends Resident {
  deviceId: string
}

export interface OpenCameraNodeOptions {
  /** The owner's device invite (`https://hub/pair#code=…`), made with the node's zone. */
  inviteUrl: string
  name: string
  /** The id the invite names. */
  deviceId: string
  /** The home CA (PEM), for a hub on HTTPS. */
  caCert?: string
}

/**
 * A browser camera node, set up as a person does: Chromium with its fake camera opens
 * `/camera#code=…` (the invite's code, carried as the invitation link carries it), types the
 * camera's name and id, presses "Become a camera", and waits until the page says it is
 * connected to the hub: from then on it answers calls.
 */
export async function openCameraNode (hubUrl: string, o: OpenCameraNodeOptions): Promise<CameraNodePage> {
  const code = new URLSearchParams(new URL(o.inviteUrl).hash.slice(1)).get('code')
  if (!code) throw new Error(`not an invite URL (no #code=): ${o.inviteUrl}`)
  const node = await openResident(hubUrl, o.name, undefined, { fakeCamera: true, ...(o.caCert ? { caCert: o.caCert } : {}) })
  try {
    const page = node.page
    await page.goto(new URL(`/camera#code=${encodeURIComponent(code)}`, hubUrl).href)
    await page.getByTestId('node-name-input').fill(o.name)
    await page.getByTestId('node-id-input').fill(o.deviceId)
    await page.getByTestId('node-pair-submit').click()
    await waitForNodeState(page, 'connected')
    return { ...node, deviceId: o.deviceId }
  } catch (err) {
    const said = node.console.slice(-20).join('\n')
    await node.close()
    throw new Error(`the camera node did not come up: ${(err as Error).message}\nthe page said:\n${said}`)
  }
}

/** Waits until the node's hub status is `state` (connecting, connected, reconnecting, refused). */
export async function waitForNodeState (page: Page, state: string, timeout = 20_000): Promise<void> {
  await page.waitForSelector(`[data-testid=node-status][data-state=${state}]`, { timeout })
}

/** Waits until the node's page says `n` watchers are in a call with it. */
export async function waitForWatchers (page: Page, n: number, timeout = 15_000): Promise<void> {
  await page.waitForSelector(`[data-testid=node-watchers][data-count="${n}"]`, { timeout })
}

/**
 * A browser camera node in a zone, shaped like the console tests' `CameraNode` (tests/src/console.ts):
 * the owner's invite, then `openCameraNode`. `stop` leaves the page (the hub publishes its will:
 * offline); `restart` opens `/camera` again, which signs in with the pairing the page kept.
 */
export interface BrowserCamera {
  deviceId: string
  name: string
  zone: string
  page: Page
  /** The page's console, shown when a test fails. */
  lines: string[]
  stop: () => Promise<void>
  restart: () => Promise<void>
  /** Closes the browser for good. */
  close: () => Promise<void>
}

export async function startBrowserCamera (home: { base: string, asOwner: HubApi }, o: { deviceId: string, name: string, zone: string, caCert?: string }): Promise<BrowserCamera> {
  const hubUrl = home.base.endsWith('/') ? home.base : `${home.base}/`
  const invite = await home.asOwner.invite({ kind: 'device', deviceId: o.deviceId, zones: [o.zone] })
  const node = await openCameraNode(hubUrl, { inviteUrl: invite.url, name: o.name, deviceId: o.deviceId, ...(o.caCert ? { caCert: o.caCert } : {}) })
  return {
    deviceId: o.deviceId,
    name: o.name,
    zone: o.zone,
    page: node.page,
    lines: node.console,
    async stop () { await node.page.goto('about:blank') },
    async restart () {
      await node.page.goto(new URL('/camera', hubUrl).href)
      await waitForNodeState(node.page, 'connected')
    },
    close: node.close
  }
}
