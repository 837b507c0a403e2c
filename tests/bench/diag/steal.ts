/**
 * What the machine's host takes from a CPU, seen from a thread that never sleeps (a diagnostic,
 * not a figure; docs/performance.md, "The machine's own stalls"):
 *   node --import tsx tests/bench/diag/steal.ts [seconds=8] [cpu=0]
 * A child pinned to the CPU (taskset) reads the clock in a tight loop for the given seconds (after one
 * second not counted), bounded, and keeps every gap over 0.3 ms: the times it was not running.
 * Beside it, that CPU's steal in /proc/stat over the same time (the hypervisor ran something else while the CPU had work). Gaps
 * that add up to the steal are the host's; the rest are this machine's other threads. Run it on a
 * quiet machine: it holds one CPU for its seconds.
 */
import { spawn } from 'node:child_process'
import { machineCpu } from '../proc'

/**
 * The spinning child, plain JavaScript run by `node -e` (no tsx, nothing loaded: the instrument's own
 * start-up and garbage would read as gaps): a second first, not counted, then every gap over 0.3 ms
 * of `performance.now()` (which allocates nothing) for the given seconds, printed as JSON.
 */
const SPIN = `
const ms = Number(process.argv[1]) * 1000
const warm = performance.now() + 1000
while (performance.now() < warm) {}
const start = performance.now()
let last = start
const gaps = []
for (;;) {
  const t = performance.now()
  if (t - last > 0.3) gaps.push(t - last)
  last = t
  if (t - start > ms) break
}
process.stdout.write(JSON.stringify(gaps))
`

const seconds = Math.min(60, Math.max(1, Number(process.argv[2] ?? 8)))
const cpu = Number(process.argv[3] ?? 0)
const stealMs = async (): Promise<number> => {
  const m = await machineCpu(cpu)
  if (m === null) throw new Error(`no cpu${cpu} in /proc/stat`)
  return m.steal * 10 // clock ticks of 10 ms
}
const before = await stealMs()
const child = spawn('taskset', ['-c', String(cpu), process.execPath, '-e', SPIN, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
let out = ''
child.stdout.on('data', (d: Buffer) => { out += d.toString() })
child.on('exit', (code) => {
  if (code !== 0) { console.error(`the spinning child exited ${code}`); process.exit(1) }
  void stealMs().then((after) => {
    const steal = after - before
    const gaps = (JSON.parse(out) as number[]).sort((a, b) => b - a)
    const total = gaps.reduce((a, b) => a + b, 0)
    const over = (ms: number): number => gaps.filter((g) => g > ms).length
    console.log(`cpu ${cpu}, ${seconds} s spinning: ${gaps.length} gaps over 0.3 ms (${over(1)} over 1 ms, ${over(4)} over 4 ms), ${total.toFixed(1)} ms in all; the largest ${gaps.slice(0, 8).map((g) => g.toFixed(2)).join(', ')} ms`)
    console.log(`cpu ${cpu} steal in /proc/stat meanwhile: ${steal} ms (10 ms ticks)`)
  })
})
