/**
 * The bench's smoke mode, inside the test suite so it never rots: one short round of every
 * figure against the real parts, then the report written to a temp dir. Speed is not asserted
 * here (these machines are noisy); that every figure is measured and reported is.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { percentile, meets } from './lib'
import { lossPercent } from './load'
import { doorbellTiming, hopValues, openReport, openRound } from './openHops'
import { mergeResults, runBenches, writeResults } from './run'
import { machineCpu, stealPercent } from './proc'
import type { Results } from './report'

test('percentile is nearest-rank; a target is met or missed in its own direction', () => {
  const xs = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10]
  assert.equal(percentile(xs, 50), 5)
  assert.equal(percentile(xs, 99), 10)
  assert.equal(percentile(xs, 0), 1)
  assert.ok(Number.isNaN(percentile([], 50)))
  const f = { id: 'x', name: 'x', unit: 'ms' as const, conditions: '', group: 'door' }
  assert.equal(meets({ ...f, value: 10, target: { op: '<=', value: 10 } }), true)
  assert.equal(meets({ ...f, value: 11, target: { op: '<=', value: 10 } }), false)
  assert.equal(meets({ ...f, value: 0.5, target: { op: '>=', value: 0.6 } }), false)
  assert.equal(meets({ ...f, value: 1 }), null)
})

test('the hypervisor\'s share of the CPUs between two readings of /proc/stat', async () => {
  assert.equal(stealPercent({ all: 1000, steal: 10 }, { all: 3000, steal: 50 }), 2, '40 of 2,000 ticks')
  assert.equal(stealPercent({ all: 1000, steal: 10 }, { all: 1000, steal: 10 }), null, 'no time between them')
  assert.equal(stealPercent(null, { all: 1000, steal: 10 }), null)
  const a = await machineCpu()
  assert.ok(a !== null, 'Linux has /proc/stat')
  assert.ok(a.all > 0 && a.steal >= 0 && a.steal <= a.all && a.busy > 0 && a.busy <= a.all, JSON.stringify(a))
  const first = await machineCpu(0)
  assert.ok(first !== null && first.all > 0 && first.all <= a.all, `one CPU's line: ${JSON.stringify(first)}`)
  assert.equal(await machineCpu(100_000), null, 'no such CPU')
})

test('packet loss counts gaps, ignores duplicates and follows sequence numbers across 65535', () => {
  assert.equal(lossPercent([[1, 2, 3, 4]]), 0)
  assert.equal(lossPercent([[1, 2, 2, 4]]), 25, 'one of four missing; the duplicate is not a packet')
  assert.equal(lossPercent([[65534, 65535, 0, 1]]), 0, 'wraps')
  assert.equal(lossPercent([[65534, 0, 1]]), 25, 'a gap at the wrap')
  assert.equal(lossPercent([[1, 2], [10, 12]]), 20, 'summed over viewers: 1 of 5 missing')
})

test('an opening splits into page, transport and doorbell hops from the doorbell\'s timing line', () => {
  const line = '2026-12-06T16:20:00.123Z info  [device/session s-1] open-door timing parse=0.12 guard=1.5 lock=0.8 told=2.61 ack=3.02'
  assert.deepEqual(doorbellTiming(line), { parse: 0.12, guard: 1.5, lock: 0.8, told: 2.61, ack: 3.02 })
  assert.deepEqual(doorbellTiming(line.replace('told=2.61', 'told=null')), { parse: 0.12, guard: 1.5, lock: 0.8, told: null, ack: 3.02 })
  assert.equal(doorbellTiming('2026-12-06T16:20:00.123Z info  [lock] lock status=unlocked'), null)
  // Page marks (its clock): hold complete at 100, sent at 101.5, the report at 108, shown at 110.
  const r = openRound({ mark: 100, sent: 101.5, told: 108, shown: 110 }, line)
  assert.deepEqual(r, { shown: 10, sign: 1.5, wait: 6.5, doorbell: 2.61, guard: 1.5, lock: 0.8, transport: 6.5 - 2.61, render: 2 })
  // Without the doorbell's line, its hops are unknown, not zero.
  const bare = openRound({ mark: 0, sent: 1, told: 9, shown: 12 }, undefined)
  assert.equal(bare.doorbell, null)
  assert.equal(bare.transport, null)
  assert.deepEqual(hopValues([r, bare], 'transport'), [6.5 - 2.61])
  assert.deepEqual(hopValues([r, bare], 'shown'), [10, 12])
  const report = openReport([r, bare], 1)
  assert.match(report, /over 2 rounds/)
  assert.match(report, /slowest 1 rounds/)
  assert.match(report, /shown 12: 1 \| 8 \| - \| - \| - \| - \| 3/, report)
})

test('a partial run (--only) replaces its own figures and keeps the others with the time they were measured', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-merge-'))
  try {
    const machine = { cpus: 2, cpuModel: 'x', node: '24' }
    const fig = (id: string, value: number, measuredAt?: string) => ({ id, name: id, value, unit: 'ms' as const, conditions: '', group: 'door', ...(measuredAt ? { measuredAt } : {}) })
    const old: Results = { at: '2026-11-21T10:00:00.000Z', smoke: false, machine, figures: [fig('a', 1), fig('b', 2)] }
    await mkdir(join(dir, 'bench'))
    await writeFile(join(dir, 'bench/results.json'), JSON.stringify(old))
    const now: Results = { at: '2026-12-06T07:00:00.000Z', smoke: false, machine, figures: [fig('b', 3, '2026-12-06T07:00:00.000Z'), fig('c', 4, '2026-12-06T07:00:00.000Z')] }
    const merged = await mergeResults(now, dir)
    assert.deepEqual(merged.figures.map((f) => [f.id, f.value, f.measuredAt]), [
      ['a', 1, '2026-11-21T10:00:00.000Z'], ['b', 3, '2026-12-06T07:00:00.000Z'], ['c', 4, '2026-12-06T07:00:00.000Z']
    ])
    assert.equal(merged.at, now.at)
    assert.deepEqual(await mergeResults({ ...now, smoke: true }, dir), { ...now, smoke: true }, 'a smoke run never mixes with a full one')
    await rm(join(dir, 'bench/results.json'))
    assert.deepEqual(await mergeResults(now, dir), now, 'nothing to keep')
  } finally { await rm(dir, { recursive: true, force: true }) }
})

// One short round of every bench, one after another: about 4-5 minutes on a loaded 2-core machine, so 10 minutes is the bound.
test('npm run bench --smoke: every figure measured against the real parts, and reported', { timeout: 600_000 }, async () => {
  const results = await runBenches({ smoke: true, log: () => {} })
  const ids = results.figures.map((f) => f.id)
  assert.equal(new Set(ids).size, ids.length, 'figure ids are unique')
  const expected = [
    'ring-notify-p50-1', 'ring-notify-p99-1', 'ring-notify-ratio-p99-1', 'ring-banner-p50',
    'join-frame-p95', 'answer-frame-p50', 'open-shown-p50', 'open-shown-p99', 'open-hop-sign-p50', 'open-hop-round-trip-p50', 'open-hop-lock-p50', 'open-hop-render-p50',
    'open-shown-p95', 'open-hop-doorbell-p50', 'open-hop-doorbell-p99', 'open-hop-transport-p50', 'open-hop-transport-p99',
    'dtls-x25519-tweetnacl-p50', 'dtls-x25519-native-p50', 'dtls-x25519-ratio',
    'load-cpu-1', 'load-rss-1', 'load-loss-1', 'load-max-viewers', 'load-cpu-per-viewer',
    ...[1, 4].flatMap((n) => ['cpu', 'rss', 'loss', 'sound-loss', 'ffmpeg-cpu', 'mic-ffmpeg-cpu'].map((f) => `load-audio-${f}-${n}`)), 'load-audio-cpu-per-viewer',
    'load-preview-cpu-idle', 'load-preview-cpu', 'load-preview-cpu-per-preview', 'load-preview-rss', 'load-preview-loss', 'load-preview-call-cpu', 'load-preview-call-rss', 'ring-cpu-hub-1', 'ring-cpu-mosquitto-1',
    'broker-throughput-hub', 'broker-throughput-mosquitto', 'broker-throughput-ratio',
    'console-decoding-4', 'console-cpu-4', 'console-gpu-cpu-4', 'console-fps-4', 'console-presented-4', 'console-dropped-4',
    ...['libdatachannel', 'werift'].flatMap((s) => ['connect-first-p50', 'connect-later-p50', 'reply-first-p50', 'reply-later-p50'].map((f) => `stacks-${s}-${f}`)),
    'inspector-layout-p50', 'inspector-layout-max', 'inspector-replay-p50',
    'snapshot-shown-p50', 'snapshot-shown-p95', 'snapshot-shown-one-shot-p50', 'snapshot-shown-one-shot-p95', 'history-page-p95', 'history-disk-per-1000', 'clip-cpu-on-p50', 'clip-cpu-off-p50', 'clip-cpu-ratio',
    'preview-live-frame-p50', 'preview-live-frame-p95', 'preview-answer-audio-p50', 'preview-answer-audio-p95', 'preview-off-answer-frame-p50', 'preview-off-answer-frame-p95',
    'preview-answer-first-audio-p50', 'preview-answer-two-way-p50', 'preview-answer-two-way-p95', 'preview-answer-heard-p50', 'preview-answer-heard-p95',
    ...['3hubs', '1hub', 'mosquitto'].flatMap((t) => [`cluster-ring-p50-${t}`, `cluster-ring-p99-${t}`]), 'cluster-ring-ratio-p99', 'cluster-rss-per-1000-3hubs', 'cluster-rss-per-1000-1hub', 'cluster-failover-p50', 'cluster-failover-p99', 'cluster-failover-max', 'cluster-scale-viewers', 'cluster-scale-ring-p50', 'cluster-scale-ring-p99', 'cluster-scale-rss-per-1000',
    ...['1hub', 'mosquitto'].flatMap((t) => [`cluster-scale-ring-p50-${t}`, `cluster-scale-ring-p99-${t}`]), 'cluster-scale-rss-per-1000-1hub', 'cluster-scale-ring-ratio-p99',
    ...['3hubs', '1hub', 'mosquitto'].map((t) => `cluster-scale-connect-${t}`),
    'talk-down-audio-p50', 'talk-down-audio-p95', 'talk-down-audio-first', 'talk-oneway-viewer-device-p50', 'talk-oneway-viewer-device-p95', 'talk-oneway-device-viewer-p50', 'talk-oneway-device-viewer-p95', 'talk-page-jitter-buffer-p50',
    'talk-oneway-device-viewer-unpaced-p95', 'talk-page-jitter-buffer-unpaced-p50', 'talk-oneway-device-viewer-unpaced-p50'
  ]
  for (const id of expected) assert.ok(ids.includes(id), `figure ${id} is measured (have: ${ids.join(', ')})`)
  for (const f of results.figures) {
    assert.ok(Number.isFinite(f.value), `${f.id} is a number (${f.value})`)
    assert.ok(f.conditions.length > 10, `${f.id} says how it was measured`)
    // And what the machine did meanwhile: its load, and how much of its CPUs its host took.
    assert.match(f.conditions, /; over this bench's run: load [0-9.]+ → [0-9.]+, the hypervisor took [0-9.]+ % of the CPUs' time \(steal\)$/, f.id)
  }
  for (const id of ['join-frame-p95', 'answer-frame-p50', 'open-shown-p99', 'broker-throughput-ratio', 'load-max-viewers', 'load-audio-rss-4', 'console-decoding-4', 'console-presented-4', 'snapshot-shown-p95', 'history-page-p95', 'preview-live-frame-p95', 'preview-answer-two-way-p95', 'preview-off-answer-frame-p50', 'talk-down-audio-p95', 'talk-oneway-viewer-device-p95', 'talk-oneway-device-viewer-unpaced-p95']) {
    assert.ok(results.figures.find((f) => f.id === id)?.target, `${id} carries its target`)
  }
  // Options and partial measures carry none: the target is on the shipped default's figure, the whole measure's.
  for (const id of ['preview-answer-audio-p95', 'talk-oneway-device-viewer-p95']) assert.equal(results.figures.find((f) => f.id === id)?.target, undefined, `${id} carries no target`)

  const out = await mkdtemp(join(tmpdir(), 'doorbell-bench-test-'))
  try {
    const files = await writeResults(results, out)
    const json = JSON.parse(await readFile(files.json, 'utf8')) as Results
    assert.deepEqual(json.figures, results.figures)
    const md = await readFile(files.md, 'utf8')
    assert.match(md, /smoke run/)
    for (const f of results.figures) assert.ok(md.includes(`| ${f.name} | ${f.value} `), `the table shows ${f.id} with its value`)
    assert.match(md, /## Conditions\n\n1\. /)
    const svg = await readFile(files.svg, 'utf8')
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    assert.equal(svg.match(/<rect x=/g)?.length, results.figures.filter((f) => f.target).length, 'one bar per targeted figure')
  } finally {
    await rm(out, { recursive: true, force: true })
  }
})
