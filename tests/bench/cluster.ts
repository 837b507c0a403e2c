/**
 * The cluster (docs/cluster.md), bounded, on loopback: N screens spread over three hubs that share
 * Redis and PostgreSQL, against the same N on one hub (the single-hub mode, node:sqlite) and on
 * mosquitto, side by side in one run.
 *
 *   ring → notification, p50 and p99 over every (ring × screen) sample: the doorbell publishes
 *          QoS 1 through hub A; a third of the screens are on each hub (on B and C the ring
 *          crosses Redis).
 *   RSS per hub per 1,000 connections: each hub process's RSS with its screens connected, minus
 *          before, scaled to 1,000.
 *   scale: the most screens the three hubs carry here, in client processes of their own
 *          (clusterScale.ts: steps up to CLUSTER_BENCH_SCALE_GOAL, 10,000 by default, bounded in
 *          time), with RSS per hub per 1,000 and ring → notification at the largest step; then
 *          the same screens (as many as the cluster's last step tried, the same client processes
 *          and rings) on 1 hub and on mosquitto, one after the other in the same run.
 *   failover: screens with persistent sessions connected through nginx (MQTT over TLS, the
 *          shipped stream config) to the three hubs; one hub SIGKILLed; for each screen it had,
 *          the time from the kill until that screen is connected again (through nginx, to another
 *          hub): p50, p99, max, and how many were not back within the bound.
 *
 * Every hub is a process of its own (hub/src/main.ts); the screens are mqtt.js clients in this
 * process (one member with many tabs: each connection a `viewer-{id}-{tab}` client of one paired
 * screen, so pairing does not dominate the set-up). On a 2-core machine the three hubs, Redis,
 * PostgreSQL and the clients share two cores: the figures show what the cluster costs on one
 * machine, not how it scales across machines.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { RingEvent, encode, newId, topics } from '@doorbell/core'
import { makeHomeKey, pairDevice, pairOwner, pairScreen, startClusterHub, startClusterNginx, type ClusterHub, type PairedDevice, type PairedScreen } from '../src/cluster'
import { eventually } from '../src/harness'
import { freePort } from '../src/hubProcess'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'
import { clusterScale, type ScaleResult } from './clusterScale'
import { percentile, round, sleep, type Bench, type Figure } from './lib'
import { rssMb } from './proc'

const HOME = 'home'
const RINGS = topics.homeEvents(HOME)[0]!
const MOSQUITTO = process.env.MOSQUITTO ?? '/usr/sbin/mosquitto'
const now = (): number => performance.timeOrigin + performance.now()

interface Target { name: string, urls: string[], screen: PairedScreen | null, device: PairedDevice | null, pids: number[] }

async function connectMany (url: string, screen: PairedScreen | null, count: number, onRing: (ringId: string) => void): Promise<MqttClient[]> {
  const clients: MqttClient[] = []
  const batch = 50
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, async () => {
      const clientId = screen ? `viewer-${screen.viewerId}-${newId().slice(1, 9)}` : newId('b')
      const client = mqtt.connect(url, { clientId, reconnectPeriod: 0, connectTimeout: 30_000, keepalive: 300, ...(screen ? { username: screen.memberId, password: screen.token } : {}) })
      clients.push(client)
      await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('error', reject) })
      client.on('error', () => {})
      client.on('message', (_topic, payload) => { onRing((JSON.parse(payload.toString()) as { ringId: string }).ringId) })
      await client.subscribeAsync(RINGS, { qos: 1 })
    }))
  }
  return clients
}

/** Rings through the first URL, to `viewers` screens spread evenly over every URL; samples in ms, and RSS per 1,000 per process. */
async function measure (t: Target, o: { viewers: number, rings: number, log: (l: string) => void }): Promise<{ samples: number[], missing: number, rssPer1000: number[] }> {
  const sentAt = new Map<string, number>()
  const samples: number[] = []
  const got = new Map<string, number>()
  const onRing = (ringId: string): void => {
    const at = sentAt.get(ringId)
    if (at === undefined) return
    samples.push(now() - at)
    got.set(ringId, (got.get(ringId) ?? 0) + 1)
  }
  const before = await Promise.all(t.pids.map(rssMb))
  const per = t.urls.map((_, i) => Math.floor(o.viewers / t.urls.length) + (i < o.viewers % t.urls.length ? 1 : 0))
  const clients: MqttClient[] = []
  try {
    for (const [i, url] of t.urls.entries()) clients.push(...await connectMany(url, t.screen, per[i]!, onRing))
    await sleep(500)
    const after = await Promise.all(t.pids.map(rssMb))
    const rssPer1000 = t.pids.map((_, i) => (after[i]! - before[i]!) / Math.max(1, per[i] ?? 0) * 1000)
    const deviceId = t.device?.deviceId ?? 'front-door'
    const device = mqtt.connect(t.urls[0]!, { clientId: `device-${deviceId}`, reconnectPeriod: 0, ...(t.device ? { username: t.device.memberId, password: t.device.token } : {}) })
    clients.push(device)
    await new Promise<void>((resolve, reject) => { device.once('connect', () => { resolve() }); device.once('error', reject) })
    for (let r = 0; r < o.rings; r++) {
      const ringId = newId('r')
      const payload = encode(RingEvent, { type: 'ring', deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 })
      sentAt.set(ringId, now())
      await device.publishAsync(topics.ring(HOME, deviceId), payload, { qos: 1 })
      await eventually(`ring ${r} on every screen (${t.name})`, () => (got.get(ringId) ?? 0) >= o.viewers, 30_000).catch(() => null)
      await sleep(100)
    }
    const missing = o.rings * o.viewers - samples.length
    o.log(`cluster bench: ${t.name}: ${o.viewers} screens, ${o.rings} rings, ${samples.length} samples, ${missing} missing`)
    return { samples, missing, rssPer1000 }
  } finally {
    await Promise.all(clients.map(async (c) => { await c.endAsync(true).catch(() => {}) }))
  }
}

const FAILOVER_BOUND_MS = 60_000

/**
 * Screens through nginx to the three hubs, then `victim` SIGKILLed: per screen it had, kill → connected again.
 * Persistent sessions (`clean: false`), as screens keep them; mqtt.js retries every 250 ms.
 */
async function failover (o: { hubs: ClusterHub[], victim: ClusterHub, screen: PairedScreen, count: number, dir: string, log: (l: string) => void }): Promise<{ samples: number[], affected: number, notBack: number }> {
  const front = await startClusterNginx(join(o.dir, 'nginx'), o.hubs)
  const clients: MqttClient[] = []
  try {
    const batch = 25
    for (let i = 0; i < o.count; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, o.count - i) }, async () => {
        const client = mqtt.connect(front.mqttsUrl, {
          clientId: `viewer-${o.screen.viewerId}-${newId().slice(1, 9)}`, username: o.screen.memberId, password: o.screen.token,
          ca: front.cert.caPem, clean: false, reconnectPeriod: 250, connectTimeout: 30_000, keepalive: 300
        })
        clients.push(client)
        await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('error', reject) })
        client.on('error', () => {})
        await client.subscribeAsync(RINGS, { qos: 1 })
      }))
    }
    const lost = new Set<MqttClient>()
    const back = new Map<MqttClient, number>()
    for (const c of clients) {
      c.once('close', () => {
        lost.add(c)
        c.once('connect', () => { back.set(c, now()) })
      })
    }
    const killedAt = now()
    await o.victim.stop('SIGKILL')
    // Every close the kill causes arrives within a moment; then all of them must come back.
    await sleep(1000)
    await eventually('every screen of the killed hub back through nginx', () => lost.size > 0 && back.size >= lost.size, FAILOVER_BOUND_MS).catch(() => null)
    const samples = [...back.values()].map((t) => t - killedAt)
    o.log(`cluster bench: failover: ${o.count} screens through nginx, ${lost.size} on hub ${o.victim.name}, ${back.size} back, max ${round(Math.max(0, ...samples))} ms`)
    return { samples, affected: lost.size, notBack: lost.size - back.size }
  } finally {
    await Promise.all(clients.map(async (c) => { await c.endAsync(true).catch(() => {}) }))
    await front.nginx.stop()
  }
}

async function startMosquitto (dir: string): Promise<{ url: string, pid: number, stop: () => void }> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(conf, [...(process.getuid?.() === 0 ? ['user root'] : []), `listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'max_connections -1', ''].join('\n'))
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' })
  const url = `mqtt://127.0.0.1:${port}`
  await eventually('mosquitto', async () => await new Promise<boolean>((resolve) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 1000 })
    c.once('connect', () => { c.end(true); resolve(true) })
    c.once('error', () => { c.end(true); resolve(false) })
  }))
  return { url, pid: proc.pid!, stop: () => { proc.kill('SIGKILL') } }
}

export const clusterBench: Bench = async ({ smoke, log }) => {
  // 10,000 screens (the figure) do not fit on 2 cores in bounded time beside 3 hubs, Redis and PostgreSQL: 600 do.
  const viewers = smoke ? 30 : Number(process.env.CLUSTER_BENCH_VIEWERS ?? 600)
  const rings = smoke ? 3 : 20
  const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-'))
  const redis = await TestRedis.start()
  const db = await TestPostgres.start()
  const hubs: ClusterHub[] = []
  let mosquitto: Awaited<ReturnType<typeof startMosquitto>> | null = null
  try {
    const homeKey = makeHomeKey(join(dir, 'key'))
    const cityUrl = await db.createDatabase('city')
    const A = await startClusterHub(dir, 'a', { redis, postgresUrl: cityUrl, homeKey })
    hubs.push(A)
    const owner = await pairOwner(A)
    hubs.push(await startClusterHub(dir, 'b', { redis, postgresUrl: cityUrl, homeKey }), await startClusterHub(dir, 'c', { redis, postgresUrl: cityUrl, homeKey }))
    const cluster: Target = { name: '3 hubs', urls: hubs.map((h) => h.mqttUrl), screen: await pairScreen(owner.on(A), A, 'Bench screen'), device: await pairDevice(owner.on(A), A), pids: hubs.map((h) => h.proc.proc.pid!) }
    // The single hub: the same hub program without a cluster section (its own node:sqlite), so no Redis on its path.
    const single = await startSingleHub(dir)
    hubs.push(single.hub)
    mosquitto = await startMosquitto(dir)
    const onMosquitto: Target = { name: 'mosquitto', urls: [mosquitto.url], screen: null, device: null, pids: [mosquitto.pid] }
    const targets: Target[] = [cluster, single.target, onMosquitto]
    const results = new Map<string, Awaited<ReturnType<typeof measure>>>()
    for (const t of targets) results.set(t.name, await measure(t, { viewers, rings, log }))
    const conditions = (t: string): string => `${viewers} screens (${t}), ${rings} QoS 1 rings through one broker, loopback; hubs, Redis, PostgreSQL and clients share this machine's cores`
    const figures: Figure[] = []
    for (const [name, key] of [['3 hubs', '3hubs'], ['1 hub', '1hub'], ['mosquitto', 'mosquitto']] as const) {
      const r = results.get(name)!
      figures.push(
        { id: `cluster-ring-p50-${key}`, name: `ring → notification, p50, ${name}`, value: round(percentile(r.samples, 50)), unit: 'ms', conditions: conditions(name), group: 'cluster' },
        { id: `cluster-ring-p99-${key}`, name: `ring → notification, p99, ${name}`, value: round(percentile(r.samples, 99)), unit: 'ms', target: { op: '<=', value: 100 }, conditions: `${conditions(name)}; ${r.missing} samples missing`, group: 'cluster' }
      )
    }
    const goal = smoke ? 30 : Number(process.env.CLUSTER_BENCH_SCALE_GOAL ?? 10_000)
    const steps = smoke ? [30] : [1000, 2500, 5000, 10_000, goal].filter((n, i, a) => n <= goal && a.indexOf(n) === i).sort((a, b) => a - b)
    const perProcess = smoke ? 10 : 1000
    const sc = await clusterScale({ urls: cluster.urls, pids: cluster.pids, screen: cluster.screen!, device: cluster.device!, home: HOME, steps, perProcess, stepBoundMs: 180_000, totalBoundMs: 480_000, rings: 3, log, hubLines: () => hubs.slice(0, 3).flatMap((h) => h.proc.lines) })
    // The comparison rows at that scale: the same screens in the same kind of client processes, the
    // same 3 rings, on the single hub and on mosquitto (one step each, bounded as the cluster's).
    const compared = new Map<string, ScaleResult>()
    for (const t of [single.target, onMosquitto]) {
      compared.set(t.name, await clusterScale({ urls: t.urls, pids: t.pids, screen: t.screen, device: t.device, home: HOME, steps: [sc.tried], perProcess, stepBoundMs: 180_000, totalBoundMs: 480_000, rings: 3, log, ...(t === single.target ? { hubLines: () => single.hub.proc.lines } : {}) }))
    }
    const scaleConditions = `steps ${steps.join(', ')} screens over 3 hubs, in client processes of their own (up to ${smoke ? 10 : 1000} each) on this machine; stopped: ${sc.limit}`
    figures.push(
      { id: 'cluster-scale-viewers', name: 'screens carried by 3 hubs (largest step fully connected)', value: sc.held, unit: 'viewers', target: { op: '>=', value: 10_000 }, conditions: scaleConditions, group: 'cluster' },
      { id: 'cluster-scale-ring-p50', name: 'ring → notification, p50, at the scale step', value: round(sc.samples.length ? percentile(sc.samples, 50) : 0), unit: 'ms', conditions: `${sc.connected} screens connected when the rings were pressed (step ${sc.tried}), 3 rings; ${sc.missing} samples missing`, group: 'cluster' },
      { id: 'cluster-scale-ring-p99', name: 'ring → notification, p99, at the scale step', value: round(sc.samples.length ? percentile(sc.samples, 99) : 0), unit: 'ms', target: { op: '<=', value: 100 }, conditions: `${sc.connected} screens connected when the rings were pressed (step ${sc.tried}), 3 rings; ${sc.missing} samples missing`, group: 'cluster' },
      { id: 'cluster-scale-rss-per-1000', name: 'RSS per hub per 1,000 connections, at the scale step (whole RSS, mean of the hubs)', value: round(sc.rssPer1000.reduce((a, b) => a + b, 0) / sc.rssPer1000.length), unit: 'MB', conditions: `${sc.connected} screens over 3 hubs: each hub's whole RSS (${sc.rss.map((x) => round(x)).join(' / ')} MB) over its connections, so an upper bound; per hub ${sc.rssPer1000.map((x) => round(x)).join(' / ')} MB`, group: 'cluster' }
    )
    for (const [name, key] of [['1 hub', '1hub'], ['mosquitto', 'mosquitto']] as const) {
      const r = compared.get(name)!
      const at = `${r.connected} screens connected to ${name} when the rings were pressed (step ${r.tried}, as the 3 hubs' above), 3 rings, the same client processes; ${r.missing} samples missing; stopped: ${r.limit}`
      figures.push(
        { id: `cluster-scale-ring-p50-${key}`, name: `ring → notification, p50, at the scale step, ${name}`, value: round(r.samples.length ? percentile(r.samples, 50) : 0), unit: 'ms', conditions: at, group: 'cluster' },
        { id: `cluster-scale-ring-p99-${key}`, name: `ring → notification, p99, at the scale step, ${name}`, value: round(r.samples.length ? percentile(r.samples, 99) : 0), unit: 'ms', target: { op: '<=', value: 100 }, conditions: at, group: 'cluster' }
      )
    }
    // How long each row's last step took to connect (the cluster's: its 10,000 step, on top of the 5,000 already there; the others: all at once).
    const refusals = (r: ScaleResult): string => Object.entries(r.refused).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'
    for (const [name, key, r] of [['3 hubs', '3hubs', sc], ['1 hub', '1hub', compared.get('1 hub')!], ['mosquitto', 'mosquitto', compared.get('mosquitto')!]] as const) {
      figures.push({ id: `cluster-scale-connect-${key}`, name: `screens of the scale step connected, time, ${name}`, value: Math.round(r.connectMs), unit: 'ms', conditions: `${r.connected} of ${r.tried} connected (${name}); attempts that ended without a CONNACK, each tried again 1 s later as the app does: ${refusals(r)}; bound ${180} s`, group: 'cluster' })
    }
    const single10k = compared.get('1 hub')!
    figures.push(
      { id: 'cluster-scale-rss-per-1000-1hub', name: 'RSS per 1,000 connections, at the scale step, 1 hub (whole RSS)', value: round(single10k.rssPer1000[0] ?? 0), unit: 'MB', conditions: `${single10k.connected} screens on one hub: its whole RSS (${round(single10k.rss[0] ?? 0)} MB) over its connections, so an upper bound`, group: 'cluster' },
      { id: 'cluster-scale-ring-ratio-p99', name: 'ring p99 at the scale step, 3 hubs / 1 hub', value: sc.samples.length && single10k.samples.length ? round(percentile(sc.samples, 99) / percentile(single10k.samples, 99), 2) : 0, unit: 'x', conditions: `the scale rows above, same run (${sc.connected} and ${single10k.connected} screens)`, group: 'cluster' }
    )
    // Last: it kills hub B.
    const f = await failover({ hubs: hubs.slice(0, 3), victim: hubs[1]!, screen: cluster.screen!, count: smoke ? viewers : Math.min(viewers, 300), dir, log })
    const failoverConditions = `${smoke ? viewers : Math.min(viewers, 300)} screens (persistent sessions) through nginx (MQTT over TLS) to 3 hubs, ${f.affected} on the hub SIGKILLed; mqtt.js retry every 250 ms; ${f.notBack} not back within ${FAILOVER_BOUND_MS / 1000} s`
    for (const [q, label] of [[50, 'p50'], [99, 'p99'], [100, 'max']] as const) {
      figures.push({ id: `cluster-failover-${label}`, name: `hub killed → its screens back through nginx, ${label}`, value: round(f.samples.length === 0 ? FAILOVER_BOUND_MS : q === 100 ? Math.max(...f.samples) : percentile(f.samples, q)), unit: 'ms', ...(label === 'max' ? { target: { op: '<=' as const, value: 5000 } } : {}), conditions: failoverConditions, group: 'cluster' })
    }
    const c = results.get('3 hubs')!
    const s = results.get('1 hub')!
    figures.push(
      { id: 'cluster-ring-ratio-p99', name: 'ring p99, 3 hubs / 1 hub', value: round(percentile(c.samples, 99) / percentile(s.samples, 99), 2), unit: 'x', conditions: 'the two rows above, same run', group: 'cluster' },
      { id: 'cluster-rss-per-1000-3hubs', name: 'RSS per hub per 1,000 connections, 3 hubs (mean of the hubs)', value: round(c.rssPer1000.reduce((a, b) => a + b, 0) / c.rssPer1000.length), unit: 'MB', conditions: `${Math.round(viewers / 3)} connections per hub: (RSS after − before) scaled; per hub ${c.rssPer1000.map((x) => round(x)).join(' / ')} MB`, group: 'cluster' },
      { id: 'cluster-rss-per-1000-1hub', name: 'RSS per 1,000 connections, 1 hub', value: round(s.rssPer1000[0]!), unit: 'MB', conditions: `${viewers} connections: (RSS after − before) scaled`, group: 'cluster' }
    )
    return figures
  } finally {
    mosquitto?.stop()
    for (const hub of hubs) await hub.stop('SIGKILL')
    await redis.destroy()
    await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One hub without a cluster section, paired the same way, as a ClusterHub-shaped handle. */
async function startSingleHub (dir: string): Promise<{ hub: ClusterHub, target: Target }> {
  const { startHomeHub, kill } = await import('../src/hubProcess')
  mkdirSync(join(dir, 'single'))
  const home = await startHomeHub(join(dir, 'single'), { mesh: { enabled: false } })
  const hub: ClusterHub = {
    name: 'single', config: home.config, proc: home.hub, base: home.base, mqttUrl: home.mqttUrl, httpPort: 0, mqttPort: 0,
    stop: async (signal = 'SIGTERM') => { await kill(home.hub, signal) },
    restart: async () => { throw new Error('not used') }
  }
  const owner = { token: '', on: () => home.asOwner }
  const screen = await pairScreen(owner.on(), hub, 'Bench screen')
  const device = await pairDevice(owner.on(), hub)
  return { hub, target: { name: '1 hub', urls: [home.mqttUrl], screen, device, pids: [home.hub.proc.pid!] } }
}
