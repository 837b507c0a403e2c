/**
 * Reads .cpuprofile files (hubTrace.ts writes them) and prints where the thread's time went:
 * self time by part (aedes, mqtt-packet, Node's streams and sockets, the hub's broker code, GC,
 * ...) and the functions that cost most, in ms and per ring when `--rings N` says how many rings
 * the profiles hold in all.
 *
 *   node --import tsx tests/bench/cpuprofileTop.ts [--rings N] [--top 30] FILE.cpuprofile...
 */
import { readFile } from 'node:fs/promises'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

/** Which part of the program a function belongs to, by where its code lives. */
export function partOf (url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : `(native) ${name}`
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  const internal = /^node:internal\/([^/]+(?:\/[^/.]+)?)/.exec(url)
  if (internal !== null) return `node:${internal[1]}`
  if (url.startsWith('node:')) return url
  const src = /\/(hub|core|tests)\/(src|bench)\/([^/]+)/.exec(url)
  return src !== null ? `${src[1]}/${src[2]}/${src[3]}` : url
}

export async function summarize (files: string[]): Promise<{ total: number, parts: Map<string, number>, fns: Map<string, number> }> {
  const parts = new Map<string, number>()
  const fns = new Map<string, number>()
  let total = 0
  for (const f of files) {
    const p = JSON.parse(await readFile(f, 'utf8')) as Profile
    const byId = new Map(p.nodes.map((n) => [n.id, n]))
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]!)
      const ms = (p.timeDeltas[i] ?? 0) / 1000
      if (n === undefined) continue
      const { functionName, url, lineNumber } = n.callFrame
      if (functionName === '(idle)') continue
      total += ms
      const part = partOf(url, functionName)
      parts.set(part, (parts.get(part) ?? 0) + ms)
      const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(hub|core|tests)\//, '$1/')}:${lineNumber + 1}`
      fns.set(key, (fns.get(key) ?? 0) + ms)
    }
  }
  return { total, parts, fns }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const opt = (name: string): number | undefined => { const i = args.indexOf(name); if (i < 0) return undefined; const v = Number(args[i + 1]); args.splice(i, 2); return v }
  const rings = opt('--rings')
  const top = opt('--top') ?? 30
  if (args.length === 0) throw new Error('usage: cpuprofileTop.ts [--rings N] [--top 30] FILE.cpuprofile...')
  const { total, parts, fns } = await summarize(args)
  const fmt = (ms: number): string => `${ms.toFixed(1).padStart(8)} ms ${(100 * ms / total).toFixed(1).padStart(5)} %${rings !== undefined ? `  ${(1000 * ms / rings).toFixed(0).padStart(6)} µs/ring` : ''}`
  console.log(`busy ${total.toFixed(1)} ms${rings !== undefined ? ` over ${rings} rings: ${(total / rings).toFixed(3)} ms/ring` : ''}`)
  console.log('\nby part (self time)')
  for (const [k, v] of [...parts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)}  ${k}`)
  console.log('\nby function (self time)')
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(v)}  ${k}`)
}
