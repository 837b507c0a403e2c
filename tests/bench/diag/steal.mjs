/**
 * What the machine's host takes from a CPU, seen from a thread that never sleeps (a diagnostic,
 * not a figure; docs/performance.md, "The machine's own stalls"):
 *   node tests/bench/diag/steal.mjs [seconds=8] [cpu=0]
 * A child pinned to the CPU (taskset) reads the clock in a tight loop for the given seconds, bounded,
 * and keeps every gap over 0.3 ms: the times it was not running. Beside it, that CPU's steal in
 * /proc/stat over the same time (the hypervisor ran something else while the CPU had work). Gaps
 * that add up to the steal are the host's; the rest are this machine's other threads. Run it on a
 * quiet machine: it holds one CPU for its seconds.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

if (process.argv[2] === '--spin') {
  const ns = Number(process.argv[3]) * 1e9
  const start = process.hrtime.bigint()
  let last = start
  const gaps = []
  for (;;) {
    const t = process.hrtime.bigint()
    const gap = Number(t - last)
    if (gap > 300_000) gaps.push(gap / 1e6)
    last = t
    if (Number(t - start) > ns) break
  }
  process.stdout.write(JSON.stringify(gaps))
  process.exit(0)
}

const seconds = Math.min(60, Math.max(1, Number(process.argv[2] ?? 8)))
const cpu = Number(process.argv[3] ?? 0)
const stealOf = () => {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))
  if (line === undefined) throw new Error(`no cpu${cpu} in /proc/stat`)
  return Number(line.trim().split(/\s+/)[8]) * 10 // clock ticks of 10 ms
}
const before = stealOf()
const child = spawn('taskset', ['-c', String(cpu), process.execPath, new URL(import.meta.url).pathname, '--spin', String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] })
let out = ''
child.stdout.on('data', (d) => { out += d })
child.on('exit', (code) => {
  if (code !== 0) { console.error(`the spinning child exited ${code}`); process.exit(1) }
  const steal = stealOf() - before
  const gaps = JSON.parse(out).sort((a, b) => b - a)
  const total = gaps.reduce((a, b) => a + b, 0)
  const over = (ms) => gaps.filter((g) => g > ms).length
  console.log(`cpu ${cpu}, ${seconds} s spinning: ${gaps.length} gaps over 0.3 ms (${over(1)} over 1 ms, ${over(4)} over 4 ms), ${total.toFixed(1)} ms in all; the largest ${gaps.slice(0, 8).map((g) => g.toFixed(2)).join(', ')} ms`)
  console.log(`cpu ${cpu} steal in /proc/stat meanwhile: ${steal} ms (10 ms ticks)`)
})
