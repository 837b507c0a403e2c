import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { RingEvent, encode, newId, topics } from '@doorbell/core'
import type { PairedDevice, PairedScreen } from '../src/cluster'
import { eventually } from '../src/harness'
import { sleep } from './lib'
import { rssMb } from './proc'

/**
 * The cluster bench's scale step: how many screens this machine carries across the three hubs,
 * in client processes of their own (clusterClients.ts, up to `perProcess` screens each, spread
 * evenly over the hubs). Steps up to the goal; stops at the first step that does not connect
 * every screen within its bound, or when the whole step runs out of time. At the largest step
 * held: RSS per hub per 1,000 connections and ring → notification over a few rings.
 */
const CLIENT = fileURLToPath(new URL('./clusterClients.ts', import.meta.url))
/** What clusterClients.ts takes for "no user name, no password". */
const ANONYMOUS = '-'
const now = (): number => performance.timeOrigin + performance.now()
/** What a hub logs when it closes a connection past `mqtt.maxPendingConnections` (hub/src/broker/connectionGuard.ts). */
const TOO_MANY_WAITING = 'too many waiting to sign in'

/**
 * held: the largest step fully connected; connected: screens up when the rings were pressed; rss:
 * each hub's whole RSS then, MB; connectMs: how long the last step took to connect; refused: its
 * connection attempts that ended without a CONNACK (the screens tried again), by kind.
 */
export interface ScaleResult { held: number, tried: number, connected: number, limit: string, rss: number[], rssPer1000: number[], samples: number[], missing: number, connectMs: number, refused: Record<string, number> }

/**
 * `screen` and `device` null: a broker without sign-in (mosquitto, the comparison row), whose
 * clients connect anonymously with the same client ids and topics.
 */
export async function clusterScale (o: { urls: string[], pids: number[], screen: PairedScreen | null, device: PairedDevice | null, home: string, steps: number[], perProcess: number, stepBoundMs: number, totalBoundMs: number, rings: number, log: (l: string) => void, hubLines?: () => string[] }): Promise<ScaleResult> {
  const children: ChildProcess[] = []
  const state = new Map<ChildProcess, { connected: number, failed: number, done: boolean, lastError: string, kinds: Record<string, number> }>()
  const arrivals = new Map<string, number[]>()
  const onMessage = (child: ChildProcess) => (m: { ring?: string, at?: number, progress?: number, connected?: number, failed?: number, lastError?: string, kinds?: Record<string, number> }): void => {
    if (m.ring !== undefined) { arrivals.get(m.ring)?.push(m.at!); return }
    const s = state.get(child)!
    if (m.kinds !== undefined) s.kinds = m.kinds
    if (m.progress !== undefined) { s.connected = m.progress; s.failed = m.failed ?? 0 }
    if (m.connected !== undefined) { s.connected = m.connected; s.failed = m.failed ?? 0; s.done = true; s.lastError = m.lastError ?? '' }
  }
  /** Each child's counts are its own totals: summed over the children. */
  const refusedSoFar = (): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const s of state.values()) for (const [k, n] of Object.entries(s.kinds)) out[k] = (out[k] ?? 0) + n
    return out
  }
  const perUrl = o.urls.map(() => 0)
  const started = Date.now()
  let held = 0
  let tried = 0
  let limit = `reached the goal of ${o.steps.at(-1)}`
  let connectMs = 0
  let refusedBefore: Record<string, number> = {}
  let refused: Record<string, number> = {}
  const topic = topics.homeEvents(o.home)[0]!
  try {
    for (const total of o.steps) {
      if (Date.now() - started > o.totalBoundMs) { limit = `the bench's time bound (${o.totalBoundMs / 1000} s) before ${total}`; break }
      tried = total
      // New processes for the screens this step adds: the hubs' shares even, up to perProcess each.
      for (let i = 0; i < o.urls.length; i++) {
        const target = Math.floor(total / o.urls.length) + (i < total % o.urls.length ? 1 : 0)
        while (perUrl[i]! < target) {
          const count = Math.min(o.perProcess, target - perUrl[i]!)
          const child = fork(CLIENT, [o.urls[i]!, o.screen?.memberId ?? ANONYMOUS, o.screen?.token ?? ANONYMOUS, o.screen?.viewerId ?? 'bench', String(count), topic], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
          state.set(child, { connected: 0, failed: 0, done: false, lastError: '', kinds: {} })
          child.on('message', onMessage(child))
          child.on('exit', () => { const s = state.get(child)!; s.done = true })
          children.push(child)
          perUrl[i]! += count
        }
      }
      const stepStart = Date.now()
      const hubRefusedBefore = o.hubLines?.().filter((l) => l.includes(TOO_MANY_WAITING)).length ?? 0
      const allDone = await eventually(`${total} screens connected`, () => [...state.values()].every((s) => s.done), o.stepBoundMs).then(() => true, () => false)
      connectMs = Date.now() - stepStart
      const connected = [...state.values()].reduce((a, s) => a + s.connected, 0)
      const failed = [...state.values()].reduce((a, s) => a + s.failed, 0)
      const all = refusedSoFar()
      refused = Object.fromEntries(Object.entries(all).map(([k, n]) => [k, n - (refusedBefore[k] ?? 0)]).filter(([, n]) => (n as number) > 0))
      refusedBefore = all
      const byHubs = o.hubLines === undefined ? '' : `; the hubs logged ${o.hubLines().filter((l) => l.includes(TOO_MANY_WAITING)).length - hubRefusedBefore} "${TOO_MANY_WAITING}"`
      o.log(`cluster bench: scale: ${connected}/${total} screens connected in ${Math.round(connectMs / 1000)} s (${failed} failed) over ${children.length} client processes; attempts ended without a CONNACK (tried again): ${JSON.stringify(refused)}${byHubs}`)
      if (!allDone || connected < total) {
        const err = [...state.values()].find((s) => s.lastError)?.lastError
        limit = !allDone ? `${total} did not all connect within ${o.stepBoundMs / 1000} s (${connected} did)` : `${total - connected} of ${total} refused${err ? `: ${err}` : ''}`
        break
      }
      held = total
    }
    // The whole RSS over the connections (an upper bound: it includes the hub's own memory). After
    // minus before, as at 600, came out negative here: the hubs' garbage from the earlier rounds
    // was collected meanwhile and outweighed what the connections added.
    const rss = await Promise.all(o.pids.map(rssMb))
    const rssPer1000 = o.pids.map((_, i) => rss[i]! / Math.max(1, perUrl[i]!) * 1000)
    // Rings at what is connected now (the largest step held, or the one that failed, partly).
    const connected = [...state.values()].reduce((a, s) => a + s.connected, 0)
    const samples: number[] = []
    let missing = 0
    const deviceId = o.device?.deviceId ?? 'front-door'
    const device = mqtt.connect(o.urls[0]!, { clientId: `device-${deviceId}`, reconnectPeriod: 0, ...(o.device ? { username: o.device.memberId, password: o.device.token } : {}) })
    try {
      await new Promise<void>((resolve, reject) => { device.once('connect', () => { resolve() }); device.once('error', reject) })
      for (let r = 0; r < o.rings; r++) {
        const ringId = newId('r')
        arrivals.set(ringId, [])
        const sentAt = now()
        await device.publishAsync(topics.ring(o.home, deviceId), encode(RingEvent, { type: 'ring', deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
        await eventually(`ring ${r} on ${connected} screens`, () => arrivals.get(ringId)!.length >= connected, 60_000).catch(() => null)
        const got = arrivals.get(ringId)!
        samples.push(...got.map((at) => at - sentAt))
        missing += Math.max(0, connected - got.length)
        await sleep(500)
      }
    } finally {
      await device.endAsync(true).catch(() => {})
    }
    return { held, tried, connected, limit, rss, rssPer1000, samples, missing, connectMs, refused }
  } finally {
    for (const c of children) { try { c.send('stop') } catch { c.kill('SIGKILL') } }
    await sleep(1000)
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  }
}
