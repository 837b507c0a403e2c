/**
 * `npm run bench`: every figure of issues 7 and 8 against real peers, bounded in time, written to
 * docs/benchmarks.md (+ docs/benchmarks.svg) and bench/results.json.
 *   --smoke       one short round of each figure (the test suite runs this)
 *   --out DIR     where to write (default: the repository; smoke runs default to a temp dir)
 *   --only a,b    run only these benches: broker, subscribe, call, load, console, stacks, inspector, history, preview, cluster, talk, dtls;
 *                 their figures replace the same figures in DIR's results.json and the others are kept,
 *                 each with the time of the run that measured it (`measuredAt`)
 */
import { cpus, loadavg } from 'node:os'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerBench } from './broker'
import { callBench } from './call'
import { clusterBench } from './cluster'
import { consoleBench } from './console'
import { dtlsBench } from './dtls'
import { loadBench } from './load'
import { stacksBench } from './stacks'
import { inspectorBench } from './inspector'
import { historyBench } from './history'
import { previewBench } from './preview'
import { subscribeBench } from './subscribe'
import { talkBench } from './talk'
import { round, type Bench, type Figure } from './lib'
import { chart, markdown, type Results } from './report'
import { ROOT, machineCpu, stealPercent } from './proc'

export const BENCHES: Record<string, Bench> = { broker: brokerBench, subscribe: subscribeBench, call: callBench, load: loadBench, console: consoleBench, stacks: stacksBench, inspector: inspectorBench, history: historyBench, preview: previewBench, cluster: clusterBench, talk: talkBench, dtls: dtlsBench }

/**
 * Runs the benches in order. A bench that throws stops the run, unless `failed` is given: then
 * its error is kept there and the next bench runs (a full run on a quiet machine is too costly to
 * lose to one bench; the figures it would have measured stay as they were, see {@link mergeResults}).
 */
export async function runBenches (o: { smoke: boolean, only?: string[], log?: (line: string) => void, failed?: Array<{ name: string, error: Error }> }): Promise<Results> {
  const log = o.log ?? ((line: string) => { console.log(line) })
  const figures: Figure[] = []
  for (const [name, bench] of Object.entries(BENCHES)) {
    if (o.only && !o.only.includes(name)) continue
    const started = Date.now()
    log(`bench: ${name}${o.smoke ? ' (smoke)' : ''}`)
    const measuredAt = new Date().toISOString()
    const cpuBefore = await machineCpu()
    const loadBefore = loadavg()[0]!
    try {
      const measured = await bench({ smoke: o.smoke, log })
      // What the machine itself did meanwhile: a virtual machine's CPUs are stopped now and then by
      // its host (steal), for 1-4 ms at a time here and sometimes 20; every hop of a figure can meet
      // one, so a figure's tail is read beside it (docs/performance.md, "The machine's own stalls").
      const steal = stealPercent(cpuBefore, await machineCpu())
      const machine = `over this bench's run: load ${round(loadBefore, 1)} → ${round(loadavg()[0]!, 1)}${steal === null ? '' : `, the hypervisor took ${steal} % of the CPUs' time (steal)`}`
      log(`bench: ${name}: ${machine}`)
      figures.push(...measured.map((f) => ({ ...f, conditions: `${f.conditions}; ${machine}`, measuredAt })))
    } catch (err) {
      if (o.failed === undefined) throw err
      o.failed.push({ name, error: err as Error })
      log(`bench: ${name} FAILED after ${((Date.now() - started) / 1000).toFixed(1)} s: ${(err as Error).message.split('\n')[0]}`)
      continue
    }
    log(`bench: ${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
  return {
    at: new Date().toISOString(),
    smoke: o.smoke,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', node: process.versions.node },
    figures
  }
}

/**
 * A partial run (`--only`) keeps the figures it did not measure from the results already in `out`,
 * in their order, each with the time it was measured; a smoke run never mixes with a full one.
 */
export async function mergeResults (r: Results, out: string): Promise<Results> {
  let old: Results
  try {
    old = JSON.parse(await readFile(join(out, 'bench/results.json'), 'utf8')) as Results
  } catch { return r }
  if (old.smoke !== r.smoke || !Array.isArray(old.figures)) return r
  const fresh = new Map(r.figures.map((f) => [f.id, f]))
  const figures = old.figures.map((f) => fresh.get(f.id) ?? { ...f, measuredAt: f.measuredAt ?? old.at })
  const kept = new Set(old.figures.map((f) => f.id))
  figures.push(...r.figures.filter((f) => !kept.has(f.id)))
  return { ...r, figures }
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
  const failed: Array<{ name: string, error: Error }> = []
  const measured = await runBenches({ smoke, failed, ...(only ? { only } : {}) })
  // A failed bench's figures are kept from the last run that measured them, each with its date.
  const results = only || failed.length > 0 ? await mergeResults(measured, out) : measured
  const files = await writeResults(results, out)
  console.log(markdown(results))
  console.log(`bench: wrote ${files.md}, ${files.svg} and ${files.json}`)
  for (const f of failed) console.error(`bench: ${f.name} failed: ${f.error.stack ?? f.error.message}`)
  process.exit(failed.length > 0 ? 1 : 0)
}
