/**
 * `npm run bench`: every figure of issues 7 and 8 against real peers, bounded in time, written to
 * docs/benchmarks.md (+ docs/benchmarks.svg) and bench/results.json.
 *   --smoke       one short round of each figure (the test suite runs this)
 *   --out DIR     where to write (default: the repository; smoke runs default to a temp dir)
 *   --only a,b    run only these benches: broker, subscribe, call, load, console, stacks, inspector, history, cluster
 */
import { cpus } from 'node:os'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerBench } from './broker'
import { callBench } from './call'
import { clusterBench } from './cluster'
import { consoleBench } from './console'
import { loadBench } from './load'
import { stacksBench } from './stacks'
import { inspectorBench } from './inspector'
import { historyBench } from './history'
import { subscribeBench } from './subscribe'
import type { Bench, Figure } from './lib'
import { chart, markdown, type Results } from './report'
import { ROOT } from './proc'

export const BENCHES: Record<string, Bench> = { broker: brokerBench, subscribe: subscribeBench, call: callBench, load: loadBench, console: consoleBench, stacks: stacksBench, inspector: inspectorBench, history: historyBench, cluster: clusterBench }

export async function runBenches (o: { smoke: boolean, only?: string[], log?: (line: string) => void }): Promise<Results> {
  const log = o.log ?? ((line: string) => { console.log(line) })
  const figures: Figure[] = []
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (o.only && !o.only.includes(name)) continue
    const started = Date.now()
    log(`bench: ${name}${o.smoke ? ' (smoke)' : ''}`)
    figures.push(...await bench({ smoke: o.smoke, log }))
    log(`bench: ${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
  return {
    at: new Date().toISOString(),
    smoke: o.smoke,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', node: process.versions.node },
    figures
  }
}

export async function writeResults (r: Results, out: string): Promise<{ json: string, md: string, svg: string }> {
  const files = { json: join(out, 'bench/results.json'), md: join(out, 'docs/benchmarks.md'), svg: join(out, 'docs/benchmarks.svg') }
  await mkdir(join(out, 'bench'), { recursive: true })
  await mkdir(join(out, 'docs'), { recursive: true })
  await writeFile(files.json, JSON.stringify(r, null, 2) + '\n')
  await writeFile(files.md, markdown(r))
  await writeFile(files.svg, chart(r))
  return files
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  const smoke = args.includes('--smoke')
  const value = (flag: string): string | undefined => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : undefined }
  const out = value('--out') ?? (smoke ? await mkdtemp(join(tmpdir(), 'doorbell-bench-')) : ROOT)
  const only = value('--only')?.split(',')
  const results = await runBenches({ smoke, ...(only ? { only } : {}) })
  const files = await writeResults(results, out)
  console.log(markdown(results))
  console.log(`bench: wrote ${files.md}, ${files.svg} and ${files.json}`)
  process.exit(0)
}
