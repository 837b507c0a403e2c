import { fileURLToPath } from 'node:url'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub, type Hub } from '@doorbell/hub'
import { memoryLogger, startDoorbell, SimulatedButton, SimulatedLock, type Doorbell } from '@doorbell/device'
import type { DeviceConfigInput, HubConfigInput } from '@doorbell/core'
import { deviceInvite } from './trust'

export const VIEWER_DIST = fileURLToPath(new URL('../../viewer/dist', import.meta.url))

export interface Lan {
  hub: Hub
  device: Doorbell
  lock: SimulatedLock
  button: SimulatedButton
  /** Everything the hub and device printed, for assertions and for failure reports. */
  lines: string[]
  printed: string[]
  stop: () => Promise<void>
}

/** A private data folder and free ports for one peer of the LAN mesh; `remove` deletes the folder. */
export function testMesh (name: string): { dataDir: string, mesh: { tcpPort: 0, directPort: 0 }, remove: () => void } {
  const dataDir = mkdtempSync(join(tmpdir(), `doorbell-${name}-`))
  return { dataDir, mesh: { tcpPort: 0, directPort: 0 }, remove: () => { rmSync(dataDir, { recursive: true, force: true }) } }
}

/**
 * A hub and a simulated doorbell with a test-pattern camera, on loopback, random ports. The hub
 * serves plain HTTP (allowed on loopback, for development; tests of TLS pass `tls: 'auto'`); the
 * doorbell pairs on its first start with a device invite, as a real one does.
 */
export async function startLan (device: DeviceConfigInput = {}, hubOptions: Partial<HubConfigInput> = {}): Promise<Lan> {
  const lines: string[] = []
  const printed: string[] = []
  const hubMesh = testMesh('hub')
  const deviceMesh = testMesh('device')
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', viewerDir: VIEWER_DIST, dataDir: hubMesh.dataDir, mesh: hubMesh.mesh, ...hubOptions }, { log: memoryLogger(lines, 'hub') })
  const lock = new SimulatedLock((line) => { printed.push(line) })
  const button = new SimulatedButton()
  const doorbell = await startDoorbell({
    hubUrl: hub.mqttUrl,
    pairing: { url: await deviceInvite(hub, device.deviceId ?? 'front-door') },
    dataDir: deviceMesh.dataDir,
    mesh: deviceMesh.mesh,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    relockSeconds: 1,
    ringTimeoutSeconds: 30,
    ...device
  }, { log: memoryLogger(lines, 'device'), drivers: { button, lock } })
  await doorbell.hubConnected(AbortSignal.timeout(10_000))
  return {
    hub,
    device: doorbell,
    lock,
    button,
    lines,
    printed,
    async stop () {
      await doorbell.stop()
      await hub.stop()
      hubMesh.remove()
      deviceMesh.remove()
    }
  }
}

/** Polls until `check` returns a truthy value; fails with `what` after the timeout. */
export async function eventually<T> (what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
    } catch (err) { last = err }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`)
}

/**
 * Removes a test's temporary folder once everything in it was stopped. A process that is still
 * finishing a write makes the first attempt fail with ENOTEMPTY: what was left is printed (so the
 * late writer can be named), and the removal retried for up to a second.
 */
export function removeTestDir (dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err
    const left = existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : []
    console.log(`[removeTestDir] still being written in ${dir} after its processes stopped: ${left.join(', ')}`)
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 })
  }
}
