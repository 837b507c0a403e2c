import { join } from 'node:path'
import mqtt from 'mqtt'
import type { Page } from 'playwright-core'
import type { DeviceConfigInput } from '@doorbell/core'
import { memoryLogger, startDoorbell, type Doorbell } from '@doorbell/device'
import type { HomeHub } from './hubProcess'

/**
 * Helpers for the operator console's tests: camera nodes in zones, the figures a tile shows, and
 * the operator's own broker credentials.
 *
 * A camera node is anything that answers calls as a device of one zone. Today: a simulated Node
 * doorbell with the test-pattern camera. A browser camera node (viewer/src/camera) can stand in by
 * implementing the same `CameraNode`: the console test only starts, stops and restarts it.
 */
export interface CameraNode {
  deviceId: string
  name: string
  zone: string
  /** Its log lines, shown when a test fails. */
  lines: string[]
  /** Ends it as a power cut would not: cleanly (it says it goes offline). */
  stop: () => Promise<void>
  /** Starts it again with the same data folder, so the same pairing. */
  restart: () => Promise<void>
}

export interface CameraNodeOptions {
  deviceId: string
  name: string
  zone: string
  /** Its data folder (the pairing is kept there across restarts). */
  dir: string
  /** Default: the 640×480 test pattern. */
  camera?: DeviceConfigInput['camera']
}

/** A Node doorbell paired into one zone with the owner's device invite, test-pattern camera, no mesh (loopback only). */
export async function startNodeCamera (home: HomeHub, o: CameraNodeOptions): Promise<CameraNode> {
  const invite = await home.asOwner.invite({ kind: 'device', deviceId: o.deviceId, zones: [o.zone] })
  const lines: string[] = []
  const config = {
    hubUrl: home.mqttUrl,
    pairing: { url: invite.url },
    deviceId: o.deviceId,
    deviceName: o.name,
    dataDir: join(o.dir, o.deviceId),
    mesh: { enabled: false },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    // A camera for the console, which plays no sound.
    audio: { source: 'none' as const },
    ...(o.camera ? { camera: o.camera } : {})
  }
  const start = async (): Promise<Doorbell> => {
    const device = await startDoorbell(config, { log: memoryLogger(lines, o.deviceId), print: (line) => { lines.push(line) } })
    try {
      await device.hubConnected(AbortSignal.timeout(15_000))
    } catch (err) {
      await device.stop()
      throw err
    }
    return device
  }
  let device: Doorbell | null = await start()
  return {
    deviceId: o.deviceId,
    name: o.name,
    zone: o.zone,
    lines,
    async stop () {
      const d = device
      device = null
      await d?.stop()
    },
    async restart () {
      if (device) throw new Error(`${o.deviceId} is running`)
      device = await start()
    }
  }
}

/** The nine figures of a tile as it shows them, and its stats reading counter. */
export interface TileFigures {
  state: string | null
  readings: number
  readAt: number
  figures: Record<string, string>
}

export const FIGURES = ['path', 'local', 'remote', 'rtt', 'fps', 'bitrate', 'loss', 'cipher', 'ttff'] as const

export async function tileFigures (page: Page, deviceId: string): Promise<TileFigures> {
  const tile = page.getByTestId(`tile-${deviceId}`)
  const figures: Record<string, string> = {}
  for (const k of FIGURES) figures[k] = (await tile.getByTestId(`fig-${k}`).textContent())?.trim() ?? ''
  return {
    state: await tile.getAttribute('data-state'),
    readings: Number(await tile.getAttribute('data-readings')),
    readAt: Number(await tile.getAttribute('data-read-at')),
    figures
  }
}

/** What this browser's pairing holds (IndexedDB `doorbell` / `pairing` / `current`): its viewer id and its broker credentials. */
export async function storedPairing (page: Page): Promise<{ viewerId: string, memberId: string, token: string, role: string }> {
  // No named inner functions: tsx would wrap them in a helper (__name) the page does not have.
  return await page.evaluate(async () => await new Promise<{ viewerId: string, memberId: string, token: string, role: string }>((resolve, reject) => {
    const open = indexedDB.open('doorbell')
    open.onerror = () => { reject(new Error('IndexedDB would not open')) }
    open.onsuccess = () => {
      const get = open.result.transaction('pairing', 'readonly').objectStore('pairing').get('current')
      get.onerror = () => { reject(new Error('no pairing record')) }
      get.onsuccess = () => {
        const r = get.result as { viewerId: string, memberId: string, token: string, role: string } | undefined
        open.result.close()
        if (!r) { reject(new Error('this browser is not paired')); return }
        resolve({ viewerId: r.viewerId, memberId: r.memberId, token: r.token, role: r.role })
      }
    }
  }))
}

/** The SUBACK codes the broker gives these credentials for each filter (one SUBSCRIBE each). */
export async function grantedFor (url: string, who: { clientId: string, username: string, password: string }, filters: string[]): Promise<Record<string, number[]>> {
  const client = mqtt.connect(url, { clientId: who.clientId, username: who.username, password: who.password, clean: true, reconnectPeriod: 0, connectTimeout: 5000 })
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => { resolve() })
      client.once('error', reject)
    })
    const out: Record<string, number[]> = {}
    for (const filter of filters) {
      out[filter] = await new Promise<number[]>((resolve, reject) => {
        client.subscribe(filter, { qos: 1 }, (err, _granted, packet) => {
          // A refusal arrives as an error whose SUBACK packet holds the codes.
          const codes = (packet as { granted?: number[] } | undefined)?.granted
          if (codes) resolve(codes)
          else reject(err ?? new Error('no SUBACK'))
        })
      })
    }
    return out
  } finally {
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()))
  }
}
