/**
 * A doorbell in its own process, as it runs in a home, and what /proc says about it.
 * CPU is "% of one core": clock ticks (1/100 s) used per second of wall time.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { DeviceConfigInput } from '@doorbell/core'
import { eventually } from '../src/harness'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

async function statFields (pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

export async function cpuTicks (pid: number): Promise<number> {
  const f = await statFields(pid)
  return Number(f[11]) + Number(f[12]) // utime + stime
}

/**
 * CPU time so far from /proc/stat, in clock ticks (1/100 s): the whole machine's (its first line),
 * or one CPU's (`cpu`). `all` of it, `busy` (all but idle and I/O wait), and `steal`: what the
 * hypervisor gave to someone else while the CPU had work (a virtual machine's CPU stopped
 * mid-instruction, whatever ran on it). null: no /proc/stat (not Linux) or no such CPU.
 */
export async function machineCpu (cpu?: number): Promise<{ all: number, busy: number, steal: number } | null> {
  try {
    const name = cpu === undefined ? 'cpu' : `cpu${cpu}`
    const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith(`${name} `))
    if (line === undefined) return null
    // user nice system idle iowait irq softirq steal (guest time is inside user and nice)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number)
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null
    const all = f.reduce((a, b) => a + b, 0)
    return { all, busy: all - f[3]! - f[4]!, steal: f[7]! }
  } catch { return null }
}

/** The share (%) of the CPUs' time between two readings that the hypervisor took (steal); null if not known. */
export function stealPercent (from: { all: number, steal: number } | null, to: { all: number, steal: number } | null): number | null {
  if (from === null || to === null || to.all <= from.all) return null
  return Math.round((to.steal - from.steal) / (to.all - from.all) * 1000) / 10
}

export async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

/** CPU of each pid over the same `ms`, as % of one core. */
export async function cpuPercent (pids: number[], ms: number): Promise<number[]> {
  const before = await Promise.all(pids.map(cpuTicks))
  await new Promise((resolve) => setTimeout(resolve, ms))
  const after = await Promise.all(pids.map(cpuTicks))
  return after.map((a, i) => (a - before[i]!) / (ms / 1000))
}

export async function childNamed (parent: number, name: string): Promise<number | null> {
  return (await childrenNamed(parent, name))[0] ?? null
}

/** Every child of `parent` whose command is `name`, in /proc's order (oldest first). */
export async function childrenNamed (parent: number, name: string): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      if (stat.includes(`(${name})`) && Number((await statFields(Number(entry)))[1]) === parent) found.push(Number(entry))
    } catch {}
  }
  return found
}

/** The niceness of each thread of `pid` (field 19 of /proc/PID/task/TID/stat). */
export async function threadNiceness (pid: number): Promise<number[]> {
  const tids = await readdir(`/proc/${pid}/task`)
  return await Promise.all(tids.map(async (tid) => Number((await statFields(Number(tid)))[16])))
}

/**
 * Sets every thread of `pid` to `niceness` (Linux's setpriority acts on one thread; x264 encodes on
 * several). Back to a lower niceness needs root (CAP_SYS_NICE): then it throws, saying so.
 */
export async function setThreadNiceness (pid: number, niceness: number): Promise<void> {
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try { setPriority(Number(tid), niceness) } catch (err) {
      throw new Error(`cannot set thread ${tid} of ${pid} to niceness ${niceness} (lowering it needs root): ${(err as Error).message}`)
    }
  }
}

/** A process's arguments (NUL-separated in /proc), or [] once it is gone. */
async function commandLine (pid: number): Promise<string[]> {
  try { return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0') } catch { return [] }
}

/**
 * The doorbell's two encoders, told apart by their arguments: the microphone's encodes Opus
 * (device/src/audio/ffmpegArgs.ts), the camera's does not. null: not running.
 */
export async function encoderPids (parent: number): Promise<{ camera: number | null, microphone: number | null }> {
  const pids = await childrenNamed(parent, 'ffmpeg')
  const opus = await Promise.all(pids.map(async (pid) => (await commandLine(pid)).includes('libopus')))
  return { camera: pids.find((_, i) => !opus[i]) ?? null, microphone: pids.find((_, i) => opus[i]) ?? null }
}

export interface DeviceProcess {
  proc: ChildProcess
  built: boolean
  pid: number
  /** Everything it printed, with the time (epoch ms) each line arrived. */
  lines: Array<{ at: number, text: string }>
  ring: () => void
  /** The camera's ffmpeg (not the microphone's, when the doorbell has one). */
  ffmpegPid: () => Promise<number | null>
  /** The microphone's ffmpeg (Opus), when the doorbell has one. */
  microphonePid: () => Promise<number | null>
  stop: () => Promise<void>
}

/**
 * The device's own `start:dist` script (device/package.json), read rather than copied: the
 * bench runs the built device with exactly the flags and environment a home runs it with.
 * Its shape: `NAME=value ... node <flags> dist/main.js`.
 */
async function startDistCommand (): Promise<{ args: string[], env: Record<string, string> }> {
  const pkg = JSON.parse(await readFile(`${ROOT}/device/package.json`, 'utf8')) as { scripts: Record<string, string> }
  const words = pkg.scripts['start:dist']!.split(/\s+/)
  const env: Record<string, string> = {}
  while (/^[A-Z_]+=/.test(words[0] ?? '')) {
    const [name, value] = words.shift()!.split('=') as [string, string]
    env[name] = value
  }
  if (words.shift() !== 'node' || words.at(-1) !== 'dist/main.js') throw new Error(`device/package.json start:dist is not "[ENV=...] node <flags> dist/main.js": ${pkg.scripts['start:dist']}`)
  return { args: [...words.slice(0, -1), 'device/dist/main.js'], env }
}

export const epochNow = (): number => performance.timeOrigin + performance.now()

/**
 * Starts the simulated doorbell with `config` and waits until it is connected to the hub: the
 * built device/dist/main.js when there is one (as `npm run bench` and `npm test` build it),
 * else device/src/main.ts through tsx. Enter on its stdin rings; its lock prints DOOR UNLOCKED / LOCKED.
 */
export async function startDeviceProcess (config: DeviceConfigInput, name = 'device', o: { keepData?: boolean, nice?: number, nodeArgs?: string[], env?: Record<string, string>, bundle?: string } = {}): Promise<DeviceProcess> {
  const dir = `${ROOT}/bench/tmp`
  await mkdir(dir, { recursive: true })
  const configPath = `${dir}/${name}.json`
  // A fresh data folder: a pairing kept from an earlier run would be with another (gone) hub.
  // `keepData`: this run's own earlier process of the same name paired it (a restart, not a new doorbell).
  if (o.keepData !== true) await rm(`${dir}/${name}-data`, { recursive: true, force: true })
  await writeFile(configPath, JSON.stringify({ dataDir: `${dir}/${name}-data`, ...config }))
  // The device as a home runs it: built (npm run build --workspace device), without tsx.
  const built = existsSync(`${ROOT}/device/dist/main.js`)
  if (o.bundle !== undefined && !built) throw new Error(`a side by side against ${o.bundle} needs the device built (npm run build --workspace device): from source both sides would be this code`)
  const started = built ? await startDistCommand() : { args: ['--import', 'tsx', 'device/src/main.ts'], env: {} }
  // `nodeArgs`: extra Node flags for a diagnostic run (a preload, --cpu-prof), before the program.
  // `bundle`: another build of dist/main.js (a side by side against the code before a change), run the same way.
  const args = [...started.args.slice(0, -1), ...(o.nodeArgs ?? []), o.bundle !== undefined && built ? o.bundle : started.args.at(-1)!]
  const env = { ...started.env, ...o.env }
  // `nice`: run at this scheduling niceness, as systemd's Nice= does (nice execs node: the pid is the doorbell's).
  const command = o.nice === undefined ? [process.execPath, ...args] : ['nice', '-n', String(o.nice), process.execPath, ...args]
  const proc = spawn(command[0]!, [...command.slice(1), '--config', configPath], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: DeviceProcess['lines'] = []
  let partial = ''
  const take = (d: Buffer): void => {
    const at = epochNow()
    const parts = (partial + d.toString()).split('\n')
    partial = parts.pop()!
    for (const text of parts) lines.push({ at, text })
  }
  proc.stdout!.on('data', take)
  proc.stderr!.on('data', take)
  const exited = new Promise<void>((resolve) => proc.once('exit', () => { resolve() }))
  const device: DeviceProcess = {
    proc,
    built,
    pid: proc.pid!,
    lines,
    ring: () => { proc.stdin!.write('\n') },
    ffmpegPid: async () => (await encoderPids(proc.pid!)).camera,
    microphonePid: async () => (await encoderPids(proc.pid!)).microphone,
    async stop () {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
  try {
    await eventually('the device to reach the hub', () => lines.some((l) => l.text.includes('connected to hub')), 30_000)
  } catch (err) {
    await device.stop()
    throw new Error(`${(err as Error).message}\n${lines.map((l) => l.text).join('\n')}`)
  }
  return device
}
