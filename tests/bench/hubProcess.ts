/**
 * The bench's hub in a process of its own, as a home runs it (`node --import tsx hub/src/main.ts`,
 * one process) and as mosquitto runs beside it: the bench's client threads then share no process
 * with it, and its CPU is read the way mosquitto's is, from /proc (utime + stime of every thread
 * of the process: the broker's, the history's, V8's helpers). The history thread's own share is
 * asked of the hub and named beside it.
 *
 * The child is this file, forked with the bench's own Node flags (tsx); it starts the hub with
 * benchHub.ts and answers the bench over the IPC channel: sign-ins for viewers, the fan-out probe,
 * the history thread's CPU, a trace block (hubTrace.ts), stop. Nothing crosses the channel while
 * rings are counted except the trace's begin and end, outside the counted rings.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startBenchHub, type BenchHub, type Login } from './benchHub'
import { hubTrace, type HubTrace, type TracedRing } from './hubTrace'
import { cpuTicks } from './proc'

const CHILD_ENV = 'DOORBELL_BENCH_HUB_CHILD'

type Request =
  | { op: 'viewer-logins', count: number }
  | { op: 'take-fanout' }
  | { op: 'history-cpu' }
  | { op: 'trace-begin' }
  | { op: 'trace-end', run: string, rings: TracedRing[] }
  | { op: 'stop' }

type Reply = { id: number, ok: true, value: unknown } | { id: number, ok: false, error: string }

export interface HubProcess extends BenchHub {
  pid: number
  /** CPU time of the whole hub process so far, in ms (/proc, 10 ms ticks), as mosquitto's is read. */
  cpuMs: () => Promise<number>
  /** BENCH_HUB_TRACE=DIR: the trace runs inside the hub's process. */
  trace: HubTrace | null
}

/**
 * `root`: another checkout of the repository whose hub (and this file) runs in the process, for a
 * before / after in the same run (BENCH_RING_HUB=process,process:DIR); this one by default.
 */
export async function startHubProcess (root?: string): Promise<HubProcess> {
  const child: ChildProcess = fork(root === undefined ? fileURLToPath(import.meta.url) : join(root, 'tests/bench/hubProcess.ts'), [], {
    execArgv: process.execArgv,
    ...(root === undefined ? {} : { cwd: root }),
    env: { ...process.env, [CHILD_ENV]: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const onExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', onExit)
  let next = 0
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  const failAll = (err: Error): void => {
    for (const [id, p] of pending) { clearTimeout(p.timer); p.reject(err); pending.delete(id) }
  }
  child.on('message', (r: Reply | { ready?: unknown, error?: string }) => {
    if ('id' in r) {
      const p = pending.get(r.id)
      if (p === undefined) return
      pending.delete(r.id)
      clearTimeout(p.timer)
      if (r.ok) p.resolve(r.value)
      else p.reject(new Error(`hub process: ${r.error}`))
    }
  })
  child.once('exit', (code, signal) => { failAll(new Error(`hub process exited (${code ?? signal})`)) })
  const call = async <T>(req: Request, timeoutMs = 60_000): Promise<T> => {
    const id = next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { pending.delete(id); reject(new Error(`hub process: ${req.op} took over ${timeoutMs} ms`)) }, timeoutMs)
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      child.send({ id, req })
    })
  }
  const ready = await new Promise<{ url: string, deviceLogin: Login }>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('hub process: not started within 60 s')) }, 60_000)
    child.on('message', (m: { ready?: { url: string, deviceLogin: Login }, error?: string }) => {
      if (m.ready !== undefined) { clearTimeout(timer); resolve(m.ready) }
      if (m.error !== undefined) { clearTimeout(timer); reject(new Error(`hub process: ${m.error}`)) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`hub process exited (${code}) before it started`)) })
  }).catch((err: unknown) => { child.kill('SIGKILL'); process.off('exit', onExit); throw err })
  const traced = process.env.BENCH_HUB_TRACE !== undefined && process.env.BENCH_HUB_TRACE !== ''
  return {
    pid: child.pid!,
    url: ready.url,
    deviceLogin: ready.deviceLogin,
    viewerLogins: async (count) => await call<Login[]>({ op: 'viewer-logins', count }, 120_000),
    takeFanout: async () => await call<number[]>({ op: 'take-fanout' }),
    historyCpuMs: async () => await call<number | null>({ op: 'history-cpu' }) ?? Number.NaN,
    cpuMs: async () => (await cpuTicks(child.pid!)) * 10,
    trace: traced
      ? { begin: async () => { await call({ op: 'trace-begin' }) }, end: async (run, rings) => await call<string>({ op: 'trace-end', run, rings }) }
      : null,
    async stop () {
      process.off('exit', onExit)
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
      try { await call({ op: 'stop' }, 15_000) } catch { child.kill('SIGKILL') }
      await exited
    }
  }
}

// ================================================================ the child

async function childMain (): Promise<void> {
  const send = (m: unknown): void => { process.send!(m) }
  // The bench gone (killed, crashed): so is its hub.
  process.on('disconnect', () => { process.exit(0) })
  let hub: BenchHub
  try {
    hub = await startBenchHub()
  } catch (err) {
    send({ error: (err as Error).message })
    process.exit(1)
  }
  const trace = hubTrace(process.env.BENCH_HUB_TRACE)
  const handle = async (req: Request): Promise<unknown> => {
    switch (req.op) {
      case 'viewer-logins': return await hub.viewerLogins(req.count)
      case 'take-fanout': return await hub.takeFanout()
      case 'history-cpu': { const ms = await hub.historyCpuMs(); return Number.isNaN(ms) ? null : ms }
      case 'trace-begin': if (trace === null) throw new Error('no BENCH_HUB_TRACE'); await trace.begin(); return null
      case 'trace-end': if (trace === null) throw new Error('no BENCH_HUB_TRACE'); return await trace.end(req.run, req.rings)
      case 'stop': await hub.stop(); setImmediate(() => process.exit(0)); return null
    }
  }
  process.on('message', (m: { id: number, req: Request }) => {
    handle(m.req).then(
      (value) => { send({ id: m.id, ok: true, value } satisfies Reply) },
      (err: unknown) => { send({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies Reply) }
    )
  })
  send({ ready: { url: hub.url, deviceLogin: hub.deviceLogin } })
}

if (process.env[CHILD_ENV] === '1' && process.send !== undefined) await childMain()
