/**
 * Broker figures, against real brokers on 127.0.0.1 only.
 *
 *   ring: ring → notification decoded by every viewer, with 1, 100 and 1000 viewers, through
 *         our hub (aedes + the gate, started by startHub) and through mosquitto; p50 and p99
 *         over every (ring × viewer) sample, and the ratios hub / mosquitto.
 *   broker: fan-out throughput of the hub, of mosquitto and of bare aedes (no hooks) under the
 *         same load, in interleaved rounds, plus the CPU each broker spent per delivery.
 *
 * The clients (mqtt.js) run in two worker threads of this file, so neither their parsing nor
 * their publishing runs on the event loop of an in-process broker: one worker holds the
 * viewers (or subscribers), the other the publisher (the device). Both compare times as
 * `performance.timeOrigin + performance.now()`, one clock across threads. The ring figures'
 * viewers are spread over several threads (4; BENCH_VIEWER_THREADS): in one thread, the figure
 * was mostly that thread working through 100 clients in turn (about 40 µs each, whichever
 * broker), which set mosquitto's figure more than mosquitto did.
 * The ring figures' hub runs in a process of its own (hubProcess.ts), as a home runs it and as
 * mosquitto runs, and its CPU is that whole process's from /proc, as mosquitto's is (the history
 * thread's share named beside it); BENCH_RING_HUB=thread puts it back in this process's main
 * thread (the shape before 2026-12-07), and BENCH_RING_HUB=process,thread runs both in the same
 * interleaved blocks. The persistent-session and throughput parts keep the hub in this process,
 * beside bare aedes.
 * Every client signs in as on the hub: each viewer is a paired member of the home (its own user
 * name, token and `viewer-{id}-…` client id), the publisher the paired device; mosquitto and bare
 * aedes get CONNECT packets of the same shape (they check nothing), so all three do the same work.
 * For looking into the hub: BENCH_HUB_TRACE=DIR writes a CPU profile of the hub's thread per block
 * of counted rings and logs its GCs over the rings and its event-loop delay (hubTrace.ts; read the
 * profiles with cpuprofileTop.ts); BENCH_RING_BLOCKS=1 logs each block's CPU per ring.
 * mosquitto (Debian's /usr/sbin/mosquitto, or $MOSQUITTO) is started on a free loopback port
 * with a config file in a temp dir and killed by its PID at the end; when it is missing, its
 * figures are left out and a line says so.
 */
import { randomBytes } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel, Worker, isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads'
import mqtt, { type MqttClient } from 'mqtt'
import { Aedes } from 'aedes'
import { RingEvent, decodeTopicMessage, encode, newId, topics } from '@doorbell/core'
import { SqlitePersistence } from '@doorbell/hub'
import { DEVICE, DEVICE_CLIENT_ID, HOME, RING_TOPIC, startBenchHub, type BenchHub, type Login } from './benchHub'
import { startHubProcess } from './hubProcess'
import { hubTrace, type HubTrace } from './hubTrace'
import { cpuTicks } from './proc'
import { percentile, round, sleep, type Bench, type Figure } from './lib'
/** What a viewer subscribes to for rings (the viewer subscribes to every device of its home). */
const RING_FILTER = topics.homeEvents(HOME)[0]!
const WORKER_TAG = 'doorbell-broker-bench-worker'
/** Threads the ring figures' viewers are spread over (BENCH_VIEWER_THREADS, default 1: comparable with earlier runs). */
const VIEWER_THREADS = Math.max(1, Number(process.env.BENCH_VIEWER_THREADS ?? 1))

const now = (): number => performance.timeOrigin + performance.now()

function ringPayload (ringId: string): string {
  return encode(RingEvent, { type: 'ring', deviceId: DEVICE, deviceName: 'Front door', ringId, at: Date.now(), count: 1 })
}

// ================================================================ the client worker

type Job =
  | { op: 'connect-viewers', url: string, count: number, qos: 0 | 1, logins: Login[], clean?: boolean }
  | { op: 'arm-rings', tag: string, rings: number }
  | { op: 'take-rings' }
  | { op: 'arm-count' }
  | { op: 'wait-count', expected: number, timeoutMs: number }
  | { op: 'connect-publisher', url: string, login: Login }
  /** `parts`: how many viewer threads hold viewers this run; a ring is done when each has said so. */
  | { op: 'run-rings', tag: string, rings: number, gapMs: number, timeoutMs: number, budgetMs: number, parts: number }
  | { op: 'blast', messages: number, qos: 0 | 1, window: number, budgetMs: number }
  | { op: 'disconnect' }

interface RingsTaken { recv: Float64Array, viewers: number, decodeMs: number, decoded: number, invalid: number, duplicates: number }
interface RingsRun { pub: Float64Array, sent: number, timeouts: number, payloadBytes: number }
interface Counted { count: number, first: number, last: number }
interface Blasted { start: number, end: number, sent: number, acked: number, payloadBytes: number }

type Reply = { id: number, ok: true, value: unknown } | { id: number, ok: false, error: string }

/** `keep` receives the client before it is connected, so that a failed run still closes it. */
async function connectClient (url: string, clientId: string, keep: (c: MqttClient) => void, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId, clean: true, reconnectPeriod: 0, connectTimeout: 15_000, keepalive: 120, ...extra })
  keep(client)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { client.off('error', reject); resolve() })
    client.once('error', reject)
    client.once('close', () => reject(new Error(`${clientId}: connection closed before CONNACK`)))
  })
  client.on('error', () => {}) // after CONNACK, a broken connection shows as missing samples
  return client
}

async function endClient (client: MqttClient): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000)
    client.end(true, {}, () => { clearTimeout(timer); resolve() })
  })
}

function workerMain (peers: MessagePort[]): void {
  const port = parentPort!
  let viewers: MqttClient[] = []
  let publisher: MqttClient | null = null
  /** What a viewer does with a message; swapped per measurement. */
  let sink: (viewer: number, topic: string, payload: Buffer) => void = () => {}
  const doneWaiters = new Map<string, () => void>()
  // A viewer thread has one port (to the publisher); the publisher one per viewer thread.
  const peer = peers[0]!
  for (const p of peers) p.on('message', (m: { done: string }) => { doneWaiters.get(m.done)?.() })

  let rings: { tag: string, count: number, recv: Float64Array, got: Uint32Array, decodeMs: number, decoded: number, invalid: number, duplicates: number } | null = null
  let counted: Counted = { count: 0, first: NaN, last: NaN }
  let onCount: (() => void) | null = null

  async function handle (job: Job): Promise<unknown> {
    switch (job.op) {
      case 'connect-viewers': {
        const start = now()
        const batch = 50 // the broker's accept backlog is finite: connect a few at a time
        for (let i = 0; i < job.count; i += batch) {
          await Promise.all(Array.from({ length: Math.min(batch, job.count - i) }, async (_, k) => {
            const index = i + k
            const login = job.logins[index]!
            // A persistent session (as screens keep: clean false) has a stable client id, so a later run resumes it.
            const clientId = job.clean === false ? `${login.clientPrefix}s${index}` : `${login.clientPrefix}${Math.random().toString(36).slice(2, 8)}`
            const client = await connectClient(job.url, clientId, (c) => { viewers[index] = c }, { username: login.username, password: login.password, clean: job.clean ?? true })
            client.on('message', (topic, payload) => { sink(index, topic, payload) })
            await client.subscribeAsync(RING_FILTER, { qos: job.qos })
          }))
        }
        return now() - start
      }
      case 'arm-rings': {
        const n = viewers.length
        const r = { tag: job.tag, count: job.rings, recv: new Float64Array(job.rings * n).fill(NaN), got: new Uint32Array(job.rings), decodeMs: 0, decoded: 0, invalid: 0, duplicates: 0 }
        rings = r
        const prefix = job.tag + '-'
        sink = (viewer, topic, payload) => {
          // What the viewer does (viewer/src/lib/paths/lan/hubClient.ts): parse by the topic's schema.
          const t0 = now()
          const decoded = decodeTopicMessage(topic, payload)
          const t1 = now()
          r.decodeMs += t1 - t0
          r.decoded++
          if (!decoded.ok || decoded.value.kind !== 'ring' || !decoded.value.payload.ringId.startsWith(prefix)) { r.invalid++; return }
          const i = Number(decoded.value.payload.ringId.slice(prefix.length))
          if (!(i >= 0 && i < r.count)) { r.invalid++; return }
          const slot = i * n + viewer
          if (!Number.isNaN(r.recv[slot])) { r.duplicates++; return }
          r.recv[slot] = t1
          if (++r.got[i]! === n) peer.postMessage({ done: `${r.tag}-${i}` })
        }
        return null
      }
      case 'take-rings': {
        sink = () => {}
        const r = rings
        rings = null
        if (r === null) throw new Error('no rings armed')
        const taken: RingsTaken = { recv: r.recv, viewers: viewers.length, decodeMs: r.decodeMs, decoded: r.decoded, invalid: r.invalid, duplicates: r.duplicates }
        return taken
      }
      case 'arm-count': {
        counted = { count: 0, first: NaN, last: NaN }
        const c = counted
        sink = () => {
          const t = now()
          if (c.count++ === 0) c.first = t
          c.last = t
          if (onCount !== null) onCount()
        }
        return null
      }
      case 'wait-count': {
        const c = counted
        if (c.count < job.expected) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => { onCount = null; resolve() }, job.timeoutMs)
            onCount = () => { if (c.count >= job.expected) { clearTimeout(timer); onCount = null; resolve() } }
          })
        }
        sink = () => {}
        return { ...c }
      }
      case 'connect-publisher': {
        // As the device connects (device/src/paths/lan/mqttLink.ts): signed in as the paired device, its client id `device-{id}`.
        await connectClient(job.url, DEVICE_CLIENT_ID, (c) => { publisher = c }, { queueQoSZero: false, username: job.login.username, password: job.login.password })
        return null
      }
      case 'run-rings': {
        const p = publisher
        if (p === null) throw new Error('no publisher')
        const pub = new Float64Array(job.rings).fill(NaN)
        const deadline = now() + job.budgetMs
        let sent = 0
        let timeouts = 0
        let payloadBytes = 0
        for (let i = 0; i < job.rings && now() < deadline; i++) {
          const ringId = `${job.tag}-${i}`
          const done = new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => { doneWaiters.delete(ringId); resolve(false) }, job.timeoutMs)
            let left = job.parts
            doneWaiters.set(ringId, () => { if (--left > 0) return; clearTimeout(timer); doneWaiters.delete(ringId); resolve(true) })
          })
          // The press: encode (as the device does, parsing what it sends) and publish at QoS 1.
          pub[i] = now()
          const payload = ringPayload(ringId)
          payloadBytes = Buffer.byteLength(payload)
          p.publish(RING_TOPIC, payload, { qos: 1 })
          sent++
          if (!(await done)) timeouts++
          await sleep(job.gapMs)
        }
        const run: RingsRun = { pub, sent, timeouts, payloadBytes }
        return run
      }
      case 'blast': {
        const p = publisher
        if (p === null) throw new Error('no publisher')
        const payload = Buffer.from(ringPayload('bench-throughput'))
        const start = now()
        const deadline = start + job.budgetMs
        let sent = 0
        let acked = 0
        let inflight = 0
        await new Promise<void>((resolve) => {
          let pumping = false
          const finished = (): boolean => sent >= job.messages || now() >= deadline
          const pump = (): void => {
            if (pumping) return
            pumping = true
            while (inflight < job.window && !finished()) {
              inflight++
              sent++
              p.publish(RING_TOPIC, payload, { qos: job.qos }, (err) => {
                inflight--
                if (!err) acked++
                if (finished()) { if (inflight === 0) resolve() } else pump()
              })
            }
            pumping = false
          }
          pump()
        })
        const blasted: Blasted = { start, end: now(), sent, acked, payloadBytes: payload.byteLength }
        return blasted
      }
      case 'disconnect': {
        sink = () => {}
        const all = (publisher === null ? viewers : [...viewers, publisher]).filter((c) => c !== undefined)
        viewers = []
        publisher = null
        await Promise.all(all.map(endClient))
        return null
      }
    }
  }

  port.on('message', (req: { id: number, job: Job }) => {
    handle(req.job).then(
      (value) => { port.postMessage({ id: req.id, ok: true, value } satisfies Reply) },
      (err: unknown) => { port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies Reply) }
    )
  })
}

if (!isMainThread && (workerData as { tag?: string } | null)?.tag === WORKER_TAG) {
  workerMain((workerData as { peers: MessagePort[] }).peers)
}

/** The main thread's handle on a client worker: one request at a time, each bounded. */
class ClientWorker {
  private readonly worker: Worker
  private next = 0
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()

  constructor (readonly name: string, peers: MessagePort[]) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { tag: WORKER_TAG, peers }, transferList: peers })
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id)
      if (p === undefined) return
      this.pending.delete(r.id)
      clearTimeout(p.timer)
      if (r.ok) p.resolve(r.value)
      else p.reject(new Error(`${name}: ${r.error}`))
    })
    const failAll = (err: Error): void => {
      for (const [id, p] of this.pending) { clearTimeout(p.timer); p.reject(err); this.pending.delete(id) }
    }
    this.worker.on('error', (err) => { failAll(new Error(`${name} worker failed: ${err.message}`)) })
    this.worker.on('exit', (code) => { failAll(new Error(`${name} worker exited (${code})`)) })
  }

  async call<T> (job: Job, timeoutMs = 60_000): Promise<T> {
    const id = this.next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${this.name}: ${job.op} took over ${timeoutMs} ms`)) }, timeoutMs)
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.worker.postMessage({ id, job })
    })
  }

  async close (): Promise<void> {
    try { await this.call({ op: 'disconnect' }, 10_000) } catch { /* the worker goes anyway */ }
    await this.worker.terminate()
  }
}

// ================================================================ brokers

interface BrokerUnderTest {
  name: string
  url: string
  /** Sign-ins for `count` viewers (paired members on the hub), one per viewer. */
  viewerLogins: (count: number) => Promise<Login[]>
  /** The device's sign-in. */
  deviceLogin: Login
  /** CPU time the broker has used so far, in ms (its thread, or its process). */
  cpuMs: () => Promise<number>
  stop: () => Promise<void>
}

/** CPU time of this (the main) thread: where an in-process broker runs. */
async function threadCpuMs (): Promise<number> {
  const u = process.threadCpuUsage()
  return (u.user + u.system) / 1000
}

/**
 * Where the hub under test runs: `process`, a process of its own (hubProcess.ts: as a home runs
 * it, and as mosquitto runs), its CPU read from /proc for the whole process as mosquitto's is;
 * `thread`, the bench's main thread (its CPU that thread's, the history thread named apart), the
 * shape of the figures before 2026-12-07, which shares its process with the client threads.
 */
export type HubShape = 'process' | 'thread' | `process:${string}`

interface OurHub extends BrokerUnderTest {
  shape: HubShape
  /** Takes the fan-out times (ms) of the rings so far: gate entered → written to every subscriber. */
  takeFanout: () => Promise<number[]>
  /** BENCH_HUB_TRACE=DIR: a CPU profile, GCs and event-loop delay over each block of counted rings (hubTrace.ts). */
  trace: HubTrace | null
  /** CPU time of the history's own thread so far, in ms (hub/src/history/threadStore.ts); inside `cpuMs` for a hub process, not for a thread. */
  historyCpuMs: () => Promise<number>
}

/**
 * For brokers that check nothing: sign-ins of the same shape and size as the hub's (member ids
 * and tokens as the hub makes them), so every broker parses the same CONNECT packets.
 */
function lookalikeLogins (): Pick<BrokerUnderTest, 'viewerLogins' | 'deviceLogin'> {
  const login = (clientPrefix: string): Login => {
    const username = newId('m')
    return { clientPrefix, username, password: `${username}.${randomBytes(32).toString('base64url')}` }
  }
  return {
    viewerLogins: async (count) => Array.from({ length: count }, () => login(`viewer-${newId('v')}-`)),
    deviceLogin: login(DEVICE_CLIENT_ID)
  }
}

async function startOurHub (shape: HubShape = 'thread', name = 'hub'): Promise<OurHub> {
  const common = (h: BenchHub): Omit<OurHub, 'cpuMs' | 'trace' | 'shape'> => ({
    name, url: h.url, viewerLogins: h.viewerLogins, deviceLogin: h.deviceLogin, takeFanout: h.takeFanout, historyCpuMs: h.historyCpuMs, stop: h.stop
  })
  if (shape.startsWith('process')) {
    const h = await startHubProcess(shape.startsWith('process:') ? shape.slice('process:'.length) : undefined)
    return { ...common(h), shape, cpuMs: h.cpuMs, trace: h.trace }
  }
  const h = await startBenchHub()
  return { ...common(h), shape, cpuMs: threadCpuMs, trace: hubTrace(process.env.BENCH_HUB_TRACE) }
}

/** Aedes with no hooks; `sqlite`: on the hub's disk persistence (hub/src/broker/persistence) instead of aedes's in-memory one. */
async function startBareAedes (persistence: 'memory' | 'sqlite' = 'memory'): Promise<BrokerUnderTest> {
  const dataDir = persistence === 'sqlite' ? await mkdtemp(join(tmpdir(), 'doorbell-bench-aedes-')) : null
  const store = dataDir === null ? null : new SqlitePersistence({ dir: dataDir })
  const broker = await Aedes.createBroker(store === null ? {} : { persistence: store })
  const server = createServer((socket) => broker.handle(socket))
  await listen(server)
  const port = (server.address() as AddressInfo).port
  return {
    name: `bare aedes (${persistence})`,
    url: `mqtt://127.0.0.1:${port}`,
    ...lookalikeLogins(),
    cpuMs: threadCpuMs,
    async stop () {
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await store?.destroy()
      if (dataDir !== null) await rm(dataDir, { recursive: true, force: true })
    }
  }
}

function mosquittoBinary (): string | null {
  const candidates = [process.env.MOSQUITTO, '/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto'].filter((p): p is string => p !== undefined && p !== '')
  return candidates.find((p) => existsSync(p)) ?? null
}

async function freePort (): Promise<number> {
  const server = createServer()
  await listen(server)
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

async function listen (server: Server): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
}

async function canConnect (port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { s.destroy(); resolve(false) })
  })
}

/** utime + stime of every thread of `pid`, in ms (clock ticks of 10 ms). */
async function procCpuMs (pid: number): Promise<number> {
  return (await cpuTicks(pid)) * 10
}

/**
 * `persistence`: mosquitto's own persistence on (its database in the temp dir), for the
 * persistent-sessions rows. mosquitto writes it at its autosave interval and on exit, not per
 * message (its default): the hub commits before each PUBACK, so the two are not equally durable.
 */
async function startMosquitto (binary: string, o: { persistence?: boolean } = {}): Promise<BrokerUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-bench-mosquitto-'))
  let child: ChildProcess | null = null
  try {
    const port = await freePort()
    const conf = join(dir, 'mosquitto.conf')
    await writeFile(conf, [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      ...(o.persistence === true ? ['persistence true', `persistence_location ${dir}/`] : ['persistence false']),
      // Like the hub's listener (hub/src/hub.ts): no Nagle, so both brokers are measured alike.
      'set_tcp_nodelay true',
      // The defaults (1000 queued, 20 in flight per client) would drop QoS 1 messages in the
      // throughput run; aedes queues without a bound.
      'max_queued_messages 1000000',
      'max_queued_bytes 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      ''
    ].join('\n'))
    const c = spawn(binary, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    child = c
    let stderr = ''
    c.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)))
    let exitCode: number | null | undefined
    void exited.then((code) => { exitCode = code })
    const deadline = Date.now() + 5000
    while (!(await canConnect(port))) {
      if (exitCode !== undefined) throw new Error(`mosquitto exited (${exitCode}): ${stderr.trim()}`)
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within 5 s: ${stderr.trim()}`)
      await sleep(20)
    }
    const pid = c.pid!
    // If this process dies without reaching stop(), do not leave the broker behind.
    const onExit = (): void => { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    process.once('exit', onExit)
    return {
      name: o.persistence === true ? 'mosquitto (persistence)' : 'mosquitto',
      url: `mqtt://127.0.0.1:${port}`,
      ...lookalikeLogins(),
      cpuMs: async () => await procCpuMs(pid),
      async stop () {
        process.off('exit', onExit)
        if (exitCode === undefined) {
          try { process.kill(pid, 'SIGTERM') } catch { /* already gone */ }
          const ended = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])
          if (!ended) {
            try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
            await exited
          }
        }
        await rm(dir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** The soft limit on open files (each in-process client costs two descriptors: its socket and the broker's). */
function openFileLimit (): number {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'))
    return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1])
  } catch {
    return Infinity
  }
}

// ================================================================ the measurements

interface RingStats { viewers: number, rings: number, samples: number[], missing: number, timeouts: number, payloadBytes: number, decodeUs: number, connectMs: number, invalid: number, fanout: number[], cpuMs: number, historyMs: number, notes: string[] }

/** The blocks of one broker and viewer count, as one run. */
function mergeRingStats (xs: RingStats[]): RingStats {
  const sum = (f: (s: RingStats) => number): number => xs.reduce((a, s) => a + f(s), 0)
  return {
    viewers: xs[0]!.viewers,
    rings: sum((s) => s.rings),
    samples: xs.flatMap((s) => s.samples),
    missing: sum((s) => s.missing),
    timeouts: sum((s) => s.timeouts),
    payloadBytes: xs[0]!.payloadBytes,
    decodeUs: sum((s) => s.decodeUs * s.rings) / sum((s) => s.rings),
    connectMs: Math.max(...xs.map((s) => s.connectMs)),
    invalid: sum((s) => s.invalid),
    fanout: xs.flatMap((s) => s.fanout),
    cpuMs: sum((s) => s.cpuMs),
    historyMs: sum((s) => s.historyMs),
    notes: xs.flatMap((s) => s.notes)
  }
}

async function measureRings (
  broker: BrokerUnderTest, viewerWorkers: ClientWorker[], publisherW: ClientWorker,
  o: { viewers: number, rings: number, warmup: number, gapMs: number, budgetMs: number, run: string, clean?: boolean }
): Promise<RingStats> {
  // The viewers spread over the viewer threads (as many as have at least one), each with its share.
  const parts = Math.min(viewerWorkers.length, o.viewers)
  const share = Math.ceil(o.viewers / parts)
  const used = viewerWorkers.slice(0, parts)
  const all = async <T>(job: (w: ClientWorker, k: number) => Promise<T>): Promise<T[]> => await Promise.all(used.map(job))
  try {
    const logins = await broker.viewerLogins(o.viewers)
    const connectMs = Math.max(...await all(async (w, k) => {
      const mine = logins.slice(k * share, (k + 1) * share)
      return await w.call<number>({ op: 'connect-viewers', url: broker.url, count: mine.length, qos: 1, logins: mine, ...(o.clean === false ? { clean: false } : {}) }, 120_000)
    }))
    await publisherW.call({ op: 'connect-publisher', url: broker.url, login: broker.deviceLogin })
    if (o.warmup > 0) {
      // A few rings not counted: the first deliveries on fresh connections.
      await all(async (w) => await w.call({ op: 'arm-rings', tag: `${o.run}w`, rings: o.warmup }))
      await publisherW.call<RingsRun>({ op: 'run-rings', tag: `${o.run}w`, rings: o.warmup, gapMs: o.gapMs, timeoutMs: 2000, budgetMs: o.budgetMs, parts }, o.budgetMs + 30_000)
      await sleep(50)
      await all(async (w) => await w.call<RingsTaken>({ op: 'take-rings' }))
    }
    const hubProbe = 'takeFanout' in broker ? (broker as OurHub) : null
    await hubProbe?.takeFanout()
    await all(async (w) => await w.call({ op: 'arm-rings', tag: o.run, rings: o.rings }))
    const trace = hubProbe?.trace ?? null
    await trace?.begin()
    // The history's CPU asked first: in a hub process, answering costs that process a little.
    const history0 = await hubProbe?.historyCpuMs()
    const cpu0 = await broker.cpuMs()
    const run = await publisherW.call<RingsRun>({ op: 'run-rings', tag: o.run, rings: o.rings, gapMs: o.gapMs, timeoutMs: 2000, budgetMs: o.budgetMs, parts }, o.budgetMs + 30_000)
    await sleep(50) // stragglers of the last ring
    const cpuMs = (await broker.cpuMs()) - cpu0
    const historyMs = history0 === undefined ? undefined : (await hubProbe!.historyCpuMs()) - history0
    const takens = await all(async (w) => await w.call<RingsTaken>({ op: 'take-rings' }))
    const notes: string[] = []
    // The history's writes run on a thread of their own: their CPU is named beside the broker's thread's, never hidden.
    if (historyMs !== undefined && !Number.isNaN(historyMs)) notes.push(`  block ${o.run} ${broker.name} ${o.viewers}: history thread CPU ${round(historyMs / Math.max(1, run.sent), 3)} ms/ring (${hubProbe!.shape.startsWith('process') ? 'part of' : 'not in'} the broker CPU figure)`)
    if (trace !== null) {
      const rings = Array.from({ length: run.sent }, (_, i) => ({ pub: run.pub[i]!, recv: takens.flatMap((t) => Array.from({ length: t.viewers }, (_, v) => t.recv[i * t.viewers + v]!)).filter((x) => !Number.isNaN(x)) }))
      notes.push(await trace.end(`${broker.name.replace(/[^a-z0-9]+/gi, '-')}-${o.viewers}-${o.run}`, rings))
    }
    // BENCH_RING_BLOCKS=1: each block's CPU per ring, to see how much it moves within a run.
    if (process.env.BENCH_RING_BLOCKS === '1') notes.push(`  block ${o.run} ${broker.name} ${o.viewers}: ${run.sent} rings, broker CPU ${round(cpuMs / Math.max(1, run.sent), 2)} ms/ring`)
    const samples: number[] = []
    let missing = 0
    for (const taken of takens) {
      for (let i = 0; i < run.sent; i++) {
        for (let v = 0; v < taken.viewers; v++) {
          const t = taken.recv[i * taken.viewers + v]!
          if (Number.isNaN(t)) missing++
          else samples.push(t - run.pub[i]!)
        }
      }
    }
    // BENCH_RING_DUMP=DIR: each counted ring's latencies (ms from the press, one per viewer), to see where the tail lies.
    const dump = process.env.BENCH_RING_DUMP
    if (dump !== undefined && dump !== '') {
      const perRing = Array.from({ length: run.sent }, (_, i) => takens.flatMap((t) => Array.from({ length: t.viewers }, (_, v) => round(t.recv[i * t.viewers + v]! - run.pub[i]!, 3))))
      await writeFile(join(dump, `${broker.name.replace(/[^a-z0-9]+/gi, '-')}-${o.viewers}-${o.run}.json`), JSON.stringify({ pub: Array.from(run.pub.slice(0, run.sent)), rings: perRing }))
    }
    const sum = (f: (t: RingsTaken) => number): number => takens.reduce((a, t) => a + f(t), 0)
    return {
      viewers: o.viewers,
      rings: run.sent,
      samples,
      missing,
      timeouts: run.timeouts,
      payloadBytes: run.payloadBytes,
      decodeUs: sum((t) => t.decoded) > 0 ? (sum((t) => t.decodeMs) * 1000) / sum((t) => t.decoded) : NaN,
      connectMs,
      invalid: sum((t) => t.invalid + t.duplicates),
      fanout: (await hubProbe?.takeFanout()) ?? [],
      cpuMs,
      historyMs: historyMs ?? Number.NaN,
      notes
    }
  } finally {
    await Promise.allSettled([...used.map(async (w) => await w.call({ op: 'disconnect' }, 30_000)), publisherW.call({ op: 'disconnect' }, 30_000)])
  }
}

interface Throughput { rate: number, delivered: number, expected: number, seconds: number, cpuMs: number, perCpuSecond: number, payloadBytes: number, sent: number }

async function measureThroughput (
  broker: BrokerUnderTest, subsW: ClientWorker, publisherW: ClientWorker,
  o: { subscribers: number, messages: number, qos: 0 | 1, window: number, budgetMs: number }
): Promise<Throughput> {
  try {
    const logins = await broker.viewerLogins(o.subscribers)
    await subsW.call({ op: 'connect-viewers', url: broker.url, count: o.subscribers, qos: o.qos, logins })
    await publisherW.call({ op: 'connect-publisher', url: broker.url, login: broker.deviceLogin })
    // A short warm-up, so neither broker is measured while its JIT or buffers are cold.
    await subsW.call({ op: 'arm-count' })
    const warm = await publisherW.call<Blasted>({ op: 'blast', messages: Math.min(2000, o.messages), qos: o.qos, window: o.window, budgetMs: 3000 })
    await subsW.call<Counted>({ op: 'wait-count', expected: warm.sent * o.subscribers, timeoutMs: 3000 })

    await subsW.call({ op: 'arm-count' })
    const cpu0 = await broker.cpuMs()
    const blast = await publisherW.call<Blasted>({ op: 'blast', messages: o.messages, qos: o.qos, window: o.window, budgetMs: o.budgetMs }, o.budgetMs + 30_000)
    const expected = blast.sent * o.subscribers
    const counted = await subsW.call<Counted>({ op: 'wait-count', expected, timeoutMs: 5000 }, 30_000)
    const cpuMs = (await broker.cpuMs()) - cpu0
    const seconds = (counted.last - blast.start) / 1000
    return {
      rate: counted.count / seconds,
      delivered: counted.count,
      expected,
      seconds,
      cpuMs,
      perCpuSecond: counted.count / (cpuMs / 1000),
      payloadBytes: blast.payloadBytes,
      sent: blast.sent
    }
  } finally {
    await Promise.allSettled([subsW.call({ op: 'disconnect' }, 30_000), publisherW.call({ op: 'disconnect' }, 30_000)])
  }
}

// ================================================================ the bench

export const brokerBench: Bench = async ({ smoke, log }) => {
  const figures: Figure[] = []
  const cpus = availableParallelism()
  const mosquitto = mosquittoBinary()
  if (mosquitto === null) log('broker: mosquitto not found (apt-get install mosquitto, or set MOSQUITTO): its figures are left out')

  const limit = openFileLimit()
  // BENCH_RING_VIEWERS=100 (and BENCH_BROKER_PARTS=ring): one figure at a time, for profiling.
  const only = process.env.BENCH_RING_VIEWERS?.split(',').map(Number).filter((n) => n > 0)
  const parts = process.env.BENCH_BROKER_PARTS?.split(',') ?? ['ring', 'persistent', 'throughput']
  // The ring figures' hub runs in a process of its own unless BENCH_RING_HUB says otherwise; the
  // persistent-session and throughput parts keep it in this process, beside bare aedes (also here).
  const hubShapes = (process.env.BENCH_RING_HUB ?? 'process').split(',').map((shape): HubShape => {
    // process:DIR: the hub of another checkout (built the same way), for a before / after in one run.
    if (shape === 'process' || shape === 'thread') return shape
    if (shape.startsWith('process:') && existsSync(join(shape.slice('process:'.length), 'tests/bench/hubProcess.ts'))) return shape as HubShape
    throw new Error(`BENCH_RING_HUB: "${shape}" is not process, thread or process:DIR (a checkout with tests/bench/hubProcess.ts); a list of them, the first gives the figures`)
  })
  let counts = only !== undefined && only.length > 0 ? only : smoke ? [1, 10] : [1, 100, 1000]
  const fits = counts.filter((n) => 2 * n + 200 <= limit)
  if (fits.length < counts.length) log(`broker: open-file limit ${limit} is too low for ${counts.filter((n) => !fits.includes(n)).join(', ')} viewers (2 descriptors each): raise ulimit -n`)
  counts = fits
  const plan = (n: number): { rings: number, warmup: number, gapMs: number, budgetMs: number } => smoke
    ? { rings: 15, warmup: 3, gapMs: 20, budgetMs: 1500 }
    : n >= 1000 ? { rings: 100, warmup: 5, gapMs: 20, budgetMs: 9000 } : { rings: 200, warmup: 5, gapMs: 20, budgetMs: 7000 }

  // The viewers tell the publisher directly when every one of them has a ring (a port per viewer
  // thread). Ring figures spread the viewers over VIEWER_THREADS threads, so that one client
  // thread working through 100 mqtt.js clients in turn does not set the figure (it set
  // mosquitto's, which spends ~1 ms of CPU on a 100-viewer ring); the throughput uses the first.
  const viewerThreads = smoke ? 2 : VIEWER_THREADS
  const channels = Array.from({ length: viewerThreads }, () => new MessageChannel())
  const viewerWorkers = channels.map((c, k) => new ClientWorker(`viewers ${k + 1}`, [c.port1]))
  const workers = { viewers: viewerWorkers[0]!, publisher: new ClientWorker('publisher', channels.map((c) => c.port2)) }
  const started: BrokerUnderTest[] = []
  const start = async <B extends BrokerUnderTest>(make: () => Promise<B>): Promise<B> => {
    const b = await make()
    started.push(b)
    return b
  }
  const stop = async (b: BrokerUnderTest): Promise<void> => {
    const i = started.indexOf(b)
    if (i >= 0) started.splice(i, 1)
    await b.stop()
  }

  try {
    let run = 0
    if (parts.includes('ring')) {
      // ---------------------------------------------------------------- ring → notification
      // Both brokers up side by side; each viewer count runs on one, then the other.
      // BENCH_RING_HUB=process,thread: both shapes of the hub in the same interleaved blocks; the
      // first is the figures' `hub`, the others are logged as `hub (shape)`.
      const ringBrokers: BrokerUnderTest[] = []
      for (const [k, shape] of hubShapes.entries()) ringBrokers.push(await start(async () => await startOurHub(shape, k === 0 ? 'hub' : `hub (${shape})`)))
      if (mosquitto !== null) ringBrokers.push(await start(async () => await startMosquitto(mosquitto)))
      if (process.env.BENCH_RING_BARE === '1') ringBrokers.push(await start(async () => await startBareAedes()))
      // Warm the client workers' and the brokers' code (mqtt.js, zod, aedes) before anything counts,
      // as in a viewer and a hub that have been running for a while: every broker alike, so that
      // none is measured colder or after more rings than another. 200 rings to 100 viewers: with 50
      // rings to 10, V8 was still compiling the hub's ring path (on its helper threads, 0.9 ms of CPU
      // per ring) through the first counted blocks, and each block cost less than the one before
      // (docs/performance.md, "Sixth pass"). BENCH_RING_WARM=RINGSxVIEWERS sets it (50x10 before).
      const [warmRings, warmViewers] = (process.env.BENCH_RING_WARM ?? (smoke ? '10x10' : '200x100')).split('x').map(Number)
      if (!(Number.isInteger(warmRings) && warmRings! >= 0 && Number.isInteger(warmViewers) && warmViewers! >= 1)) throw new Error(`BENCH_RING_WARM: "${process.env.BENCH_RING_WARM}" is not RINGSxVIEWERS (e.g. 200x100)`)
      for (const [k, broker] of ringBrokers.entries()) {
        if (warmRings === 0) break
        const warm = await measureRings(broker, viewerWorkers, workers.publisher, { viewers: warmViewers!, rings: warmRings!, warmup: 0, gapMs: 5, budgetMs: 30_000, run: `warm${k}` })
        log(`ring warm-up, ${broker.name}: ${warm.rings} rings to ${warmViewers} viewers, p50 ${round(percentile(warm.samples, 50), 2)} ms (not counted)`)
      }
      const ring = new Map<string, Map<number, RingStats>>(ringBrokers.map((b) => [b.name, new Map()]))

      // The rings of each count in interleaved blocks (hub, mosquitto, hub, mosquitto, …): on a
      // shared machine a burst of someone else's load then lands on both brokers, not on one.
      const blocks = smoke ? 1 : 4
      for (const n of counts) {
        const p = plan(n)
        const byBroker = new Map<string, RingStats[]>(ringBrokers.map((b) => [b.name, []]))
        for (let k = 0; k < blocks; k++) {
          for (const broker of ringBrokers) {
            byBroker.get(broker.name)!.push(await measureRings(broker, viewerWorkers, workers.publisher, { viewers: n, ...p, rings: Math.ceil(p.rings / blocks), budgetMs: Math.ceil(p.budgetMs / blocks), run: `r${run++}` }))
          }
        }
        for (const broker of ringBrokers) {
          const s = mergeRingStats(byBroker.get(broker.name)!)
          ring.get(broker.name)!.set(n, s)
          for (const note of s.notes) log(note)
          log(`ring ${broker.name} ${n} viewer(s): ${s.rings} rings, ${s.samples.length} samples, p50 ${round(percentile(s.samples, 50), 2)} ms, p99 ${round(percentile(s.samples, 99), 2)} ms, max ${round(s.samples.reduce((a, x) => Math.max(a, x), -Infinity), 2)} ms; missing ${s.missing}, timeouts ${s.timeouts}, bad ${s.invalid}; viewer decode ${round(s.decodeUs, 1)} µs/msg; connect ${Math.round(s.connectMs)} ms; broker CPU ${round(s.cpuMs / s.rings, 2)} ms/ring${Number.isNaN(s.historyMs) ? '' : ` (history thread ${round(s.historyMs / s.rings, 2)} ms/ring, ${(broker as OurHub).shape.startsWith('process') ? 'included' : 'not included'})`}${s.fanout.length > 0 ? `; inside the hub: p50 ${round(percentile(s.fanout, 50), 2)} ms, p99 ${round(percentile(s.fanout, 99), 2)} ms` : ''}`)
        }
      }
      for (const b of ringBrokers) await stop(b)

      const hubRings = ring.get('hub')!
      const mosqRings = ring.get('mosquitto') // the name startMosquitto gives
      for (const n of counts) {
        const h = hubRings.get(n)!
        const m = mosqRings?.get(n)
        const cond = (s: RingStats, broker: string): string =>
          `127.0.0.1; ${broker}; every broker first warmed alike by ${warmRings} rings to ${warmViewers} viewers; ${s.rings} rings after ${plan(n).warmup} not counted, each published (QoS 1, ${s.payloadBytes} B RingEvent, encode included) ${plan(n).gapMs} ms after every viewer had the previous; ` +
          `${n} mqtt.js viewer(s), each signing in with a member id and token (checked by the hub: paired residents), subscribed QoS 1 to ${RING_FILTER}, decoding with decodeTopicMessage, spread over ${Math.min(viewerThreads, n)} worker thread(s), publisher in another; ` +
          `${s.samples.length} samples (ring × viewer), ${s.missing} missing; ${cpus} CPUs`
        const inProcess = hubShapes[0]!.startsWith('process')
        const hubName = `hub (startHub: aedes + sign-in + gate, plain MQTT (tls off), TCP_NODELAY; ${inProcess ? 'in a process of its own, as a home runs it' : "in the bench's main thread, its process shared with the client threads"})`
        const hubCpu = inProcess
          ? `/proc utime+stime of the hub's process (10 ms ticks; every thread: the broker's, the history's ${round(h.historyMs / h.rings, 2)} ms/ring, V8's), as mosquitto's`
          : `its thread's CPU (process.threadCpuUsage; the history thread's ${round(h.historyMs / h.rings, 2)} ms/ring not included)`
        const mosqName = 'mosquitto (persistence off, set_tcp_nodelay true)'
        figures.push(
          { id: `ring-notify-p50-${n}`, name: `ring → notification, p50, ${n} viewer(s), hub`, value: round(percentile(h.samples, 50), 2), unit: 'ms', conditions: cond(h, hubName), group: 'ring' },
          {
            id: `ring-notify-p99-${n}`,
            name: `ring → notification, p99, ${n} viewer(s), hub`,
            value: round(percentile(h.samples, 99), 2),
            unit: 'ms',
            ...(n === 100 ? { target: { op: '<=' as const, value: 5 } } : {}),
            conditions: cond(h, hubName),
            group: 'ring'
          }
        )
        const fanoutCond = `${hubName}; inside the hub's process: from the ring entering the gate to aedes reporting it written to all ${n} viewer socket(s) (its 'publish' event); ${h.fanout.length} rings of the run above; ${cpus} CPUs`
        figures.push(
          { id: `ring-hub-fanout-p50-${n}`, name: `ring fan-out inside the hub (gate + aedes), p50, ${n} viewer(s)`, value: round(percentile(h.fanout, 50), 2), unit: 'ms', conditions: fanoutCond, group: 'ring' },
          { id: `ring-hub-fanout-p99-${n}`, name: `ring fan-out inside the hub (gate + aedes), p99, ${n} viewer(s)`, value: round(percentile(h.fanout, 99), 2), unit: 'ms', conditions: fanoutCond, group: 'ring' }
        )
        if (m !== undefined) {
          figures.push(
            { id: `ring-notify-mosquitto-p50-${n}`, name: `ring → notification, p50, ${n} viewer(s), mosquitto`, value: round(percentile(m.samples, 50), 2), unit: 'ms', conditions: cond(m, mosqName), group: 'ring' },
            { id: `ring-notify-mosquitto-p99-${n}`, name: `ring → notification, p99, ${n} viewer(s), mosquitto`, value: round(percentile(m.samples, 99), 2), unit: 'ms', conditions: cond(m, mosqName), group: 'ring' },
            { id: `ring-notify-ratio-p50-${n}`, name: `ring → notification p50, hub / mosquitto, ${n} viewer(s): what the embedded hub costs`, value: round(percentile(h.samples, 50) / percentile(m.samples, 50), 2), unit: 'x', conditions: cond(h, `${hubName} against ${mosqName}, same run, viewers and rings`), group: 'ring' },
            { id: `ring-notify-ratio-p99-${n}`, name: `ring → notification p99, hub / mosquitto, ${n} viewer(s): what the embedded hub costs`, value: round(percentile(h.samples, 99) / percentile(m.samples, 99), 2), unit: 'x', ...(n === 100 ? { target: { op: '<=' as const, value: 1 } } : {}), conditions: cond(h, `${hubName} against ${mosqName}, same run, viewers and rings`), group: 'ring' },
            // CPU per ring is what the broker itself spends, which the machine's other load barely moves.
            { id: `ring-cpu-hub-${n}`, name: `broker CPU per ring, ${n} viewer(s), hub`, value: round(h.cpuMs / h.rings, 2), unit: 'ms', conditions: `${hubName}; ${hubCpu} over the counted rings, divided by them`, group: 'ring' },
            { id: `ring-cpu-mosquitto-${n}`, name: `broker CPU per ring, ${n} viewer(s), mosquitto`, value: round(m.cpuMs / m.rings, 2), unit: 'ms', conditions: `${mosqName}; /proc utime+stime (10 ms ticks) over the counted rings, divided by them`, group: 'ring' }
          )
        }
      }

    }
    if (parts.includes('persistent')) {
      // ---------------------------------------------------------------- ring → persistent screens
      // Screens keep persistent sessions (clean: false), so every ring is queued (written) for each
      // before it is sent, and cleared at its PUBACK. The same broker with aedes's in-memory
      // persistence and with the hub's SQLite one gives what the disk costs on the ring path.
      const persistentCounts = smoke ? [1, 10] : [1, 100]
      const persistentBrokers = [await start(async () => await startBareAedes('memory')), await start(async () => await startBareAedes('sqlite')), await start(startOurHub)]
      // The peer, in the same run: mosquitto with its persistence on.
      if (mosquitto !== null) persistentBrokers.push(await start(async () => await startMosquitto(mosquitto, { persistence: true })))
      const persistent = new Map<string, RingStats>()
      for (const n of persistentCounts) {
        for (const broker of persistentBrokers) {
          const s = await measureRings(broker, viewerWorkers, workers.publisher, { viewers: n, ...plan(n), run: `p${run++}`, clean: false })
          persistent.set(`${broker.name}/${n}`, s)
          log(`ring, persistent sessions, ${broker.name} ${n} viewer(s): ${s.rings} rings, p50 ${round(percentile(s.samples, 50), 2)} ms, p99 ${round(percentile(s.samples, 99), 2)} ms; missing ${s.missing}, timeouts ${s.timeouts}, bad ${s.invalid}`)
        }
      }
      for (const b of persistentBrokers) await stop(b)
      for (const n of persistentCounts) {
        const pcond = (s: RingStats, broker: string): string =>
          `127.0.0.1; ${broker}; ${s.rings} rings (QoS 1) ${plan(n).gapMs} ms apart after ${plan(n).warmup} not counted; ${n} mqtt.js viewer(s) with persistent sessions (clean false, stable client ids), subscribed QoS 1; ${s.samples.length} samples, ${s.missing} missing; ${cpus} CPUs`
        for (const [key, label] of [['bare aedes (memory)', 'aedes, in-memory persistence (before)'], ['bare aedes (sqlite)', 'aedes, SQLite persistence (after)'], ['hub', 'hub (startHub: SQLite persistence + sign-in + gate)'], ['mosquitto (persistence)', 'mosquitto, persistence true (saved at autosave and exit, not per message)']] as const) {
          const s = persistent.get(`${key}/${n}`)
          if (s === undefined) continue // mosquitto missing: said above
          const id = key === 'hub' ? 'hub' : key.startsWith('mosquitto') ? 'mosquitto' : key.includes('memory') ? 'memory' : 'sqlite'
          figures.push(
            { id: `ring-persistent-${id}-p50-${n}`, name: `ring → notification, persistent sessions, p50, ${n} viewer(s), ${label}`, value: round(percentile(s.samples, 50), 2), unit: 'ms', conditions: pcond(s, label), group: 'ring' },
            { id: `ring-persistent-${id}-p99-${n}`, name: `ring → notification, persistent sessions, p99, ${n} viewer(s), ${label}`, value: round(percentile(s.samples, 99), 2), unit: 'ms', conditions: pcond(s, label), group: 'ring' }
          )
        }
      }

    }
    if (!parts.includes('throughput')) return figures
    // ---------------------------------------------------------------- fan-out throughput
    // Brokers side by side, in interleaved rounds (this machine is shared and noisy): the
    // figure is each broker's median round; CPU per delivery sums every round.
    const load = smoke
      ? { subscribers: 10, messages: 1000, qos: 1 as const, window: 1000, budgetMs: 3000 }
      : { subscribers: 10, messages: 8000, qos: 1 as const, window: 1000, budgetMs: 6000 }
    const rounds = smoke ? 1 : 3
    const brokers: Array<{ id: string, label: string, broker: BrokerUnderTest }> = [
      { id: 'hub', label: 'hub (aedes + gate)', broker: await start(startOurHub) },
      { id: 'bare-aedes', label: 'bare aedes (no hooks)', broker: await start(async () => await startBareAedes()) }
    ]
    if (mosquitto !== null) brokers.push({ id: 'mosquitto', label: 'mosquitto', broker: await start(async () => await startMosquitto(mosquitto)) })
    // One round not counted: the first burst of a run came out well below the rest whichever
    // broker took it (the client threads' code and heaps warming up).
    const first = await measureThroughput(brokers[0]!.broker, workers.viewers, workers.publisher, load)
    log(`broker warm-up round (${brokers[0]!.label}): ${Math.round(first.rate)} deliveries/s (not counted)`)
    const runs = new Map<string, Throughput[]>(brokers.map((b) => [b.id, []]))
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < brokers.length; k++) {
        const b = brokers[(k + r) % brokers.length]!
        const t = await measureThroughput(b.broker, workers.viewers, workers.publisher, load)
        runs.get(b.id)!.push(t)
        log(`broker ${b.label}, round ${r + 1}/${rounds}: ${Math.round(t.rate)} deliveries/s (${t.delivered}/${t.expected} in ${round(t.seconds, 2)} s), broker CPU ${Math.round(t.cpuMs)} ms = ${round((t.cpuMs / 1000 / t.seconds) * 100, 0)} % of a core`)
      }
    }
    for (const b of brokers) await stop(b.broker)
    const tp = new Map<string, Throughput>()
    for (const [id, ts] of runs) {
      const byRate = [...ts].sort((x, y) => x.rate - y.rate)
      const median = byRate[Math.floor((byRate.length - 1) / 2)]!
      const delivered = ts.reduce((a, t) => a + t.delivered, 0)
      const cpuMs = ts.reduce((a, t) => a + t.cpuMs, 0)
      tp.set(id, { ...median, perCpuSecond: delivered / (cpuMs / 1000), cpuMs, delivered, expected: ts.reduce((a, t) => a + t.expected, 0) })
    }
    const anyT = tp.get('hub')!
    const tcond = `127.0.0.1, plain MQTT; 1 mqtt.js publisher (worker thread, clientId ${DEVICE_CLIENT_ID}, signed in as the paired device on the hub) publishing ${anyT.sent} valid ${anyT.payloadBytes} B RingEvents on ${RING_TOPIC} at QoS ${load.qos} as fast as a window of ${load.window} unacknowledged publishes allows, ` +
      `${load.subscribers} mqtt.js subscribers (signed in as paired members on the hub, lookalike logins elsewhere; QoS ${load.qos}, counting only, one other worker thread); rate = deliveries / (last delivery − first publish), after one uncounted round and, each round, a warm-up of up to 2000 messages; median of ${rounds} interleaved round(s); ${cpus} CPUs shared by broker and clients`
    for (const b of brokers) {
      const t = tp.get(b.id)!
      figures.push(
        { id: `broker-throughput-${b.id}`, name: `fan-out throughput, ${b.label}`, value: Math.round(t.rate), unit: 'msg/s', conditions: `${tcond}; median round: ${round(t.seconds, 2)} s; all rounds: ${t.delivered} of ${t.expected} delivered`, group: 'broker' },
        { id: `broker-efficiency-${b.id}`, name: `deliveries per broker CPU-second, ${b.label}`, value: Math.round(t.perCpuSecond), unit: 'msg/s', conditions: `${tcond}; broker used ${Math.round(t.cpuMs)} ms CPU (${b.id === 'mosquitto' ? '/proc utime+stime' : 'main thread, process.threadCpuUsage'})`, group: 'broker' }
      )
    }
    const mq = tp.get('mosquitto')
    const bare = tp.get('bare-aedes')!
    if (mq !== undefined) {
      figures.push(
        { id: 'broker-throughput-ratio', name: 'fan-out throughput, hub / mosquitto', value: round(anyT.rate / mq.rate, 2), unit: 'x', target: { op: '>=', value: 0.6 }, conditions: tcond, group: 'broker' },
        { id: 'broker-efficiency-ratio', name: 'deliveries per broker CPU-second, hub / mosquitto', value: round(anyT.perCpuSecond / mq.perCpuSecond, 2), unit: 'x', conditions: tcond, group: 'broker' }
      )
    }
    figures.push({ id: 'broker-gate-cost', name: 'fan-out throughput, hub / bare aedes (what the gate costs)', value: round(anyT.rate / bare.rate, 2), unit: 'x', conditions: tcond, group: 'broker' })
    return figures
  } finally {
    for (const b of [...started]) {
      try { await b.stop() } catch (err) { log(`broker: stopping ${b.name} failed: ${(err as Error).message}`) }
    }
    await Promise.all([...viewerWorkers.map(async (w) => { await w.close() }), workers.publisher.close()])
  }
}
