/**
 * The hub the broker bench measures, with its members paired and a probe on its ring path: started
 * the same way whether it runs in the bench's own process (`inProcessHub` in broker.ts) or in a
 * process of its own (hubProcess.ts, as a home runs it).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, topics } from '@doorbell/core'
import { startHub } from '@doorbell/hub'
import { pairDeviceInProcess, pairViewerInProcess } from './lib'

export const HOME = 'home'
export const DEVICE = 'front-door'
export const DEVICE_CLIENT_ID = `device-${DEVICE}`
export const RING_TOPIC = topics.ring(HOME, DEVICE)

/** How one client signs in: the member id and token from pairing; a viewer's client id starts with `viewer-{viewerId}-`. */
export interface Login { clientPrefix: string, username: string, password: string }

export interface BenchHub {
  url: string
  deviceLogin: Login
  /** Sign-ins for `count` viewers (paired members, paired once and reused by every run on this hub). */
  viewerLogins: (count: number) => Promise<Login[]>
  /** Takes the fan-out times (ms) of the rings so far: gate entered → written to every subscriber. */
  takeFanout: () => Promise<number[]>
  /** CPU time of the history's own thread so far, in ms (hub/src/history/threadStore.ts); NaN where Node cannot say. */
  historyCpuMs: () => Promise<number>
  stop: () => Promise<void>
}

const now = (): number => performance.timeOrigin + performance.now()

export async function startBenchHub (): Promise<BenchHub> {
  // Plain MQTT on loopback (tls 'off'), as the other brokers: the gate is measured, not TLS.
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-hub-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  const device = await pairDeviceInProcess(hub, DEVICE)
  const viewers: Login[] = []
  // A probe inside the broker, for the figure without the viewers' side: when a ring enters the
  // gate, and when aedes reports it published (after its write to every subscriber). The bench
  // never has two rings in flight, so one timestamp is enough.
  const gate = hub.broker.authorizePublish
  let entered = NaN
  const fanout: number[] = []
  hub.broker.authorizePublish = (client, packet, callback) => {
    if (packet.topic === RING_TOPIC) entered = now()
    gate.call(hub.broker, client, packet, callback)
  }
  // First among the 'publish' listeners: the hub's own (the history's row) come after the fan-out.
  hub.broker.prependListener('publish', (packet) => {
    if (packet.topic !== RING_TOPIC || Number.isNaN(entered)) return
    fanout.push(now() - entered)
    entered = NaN
  })
  const historyThread = hub.history.store as { cpuUsage?: () => Promise<NodeJS.CpuUsage | null> }
  return {
    url: hub.mqttUrl,
    deviceLogin: { clientPrefix: DEVICE_CLIENT_ID, username: device.memberId, password: device.token },
    async viewerLogins (count) {
      while (viewers.length < count) {
        const v = await pairViewerInProcess(hub, { name: `Bench ${viewers.length}` })
        viewers.push({ clientPrefix: `viewer-${v.viewerId}-`, username: v.memberId, password: v.token })
      }
      return viewers.slice(0, count)
    },
    takeFanout: async () => fanout.splice(0),
    async historyCpuMs () {
      const u = await historyThread.cpuUsage?.()
      return u === undefined || u === null ? Number.NaN : (u.user + u.system) / 1000
    },
    async stop () {
      await hub.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}
