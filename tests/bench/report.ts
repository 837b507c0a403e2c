/**
 * The bench's outputs: results.json (every figure with its unit, target and conditions),
 * a Markdown table, and an SVG chart of each targeted figure against its target.
 */
import { meets, type Figure } from './lib'

export interface Results {
  at: string
  smoke: boolean
  machine: { cpus: number, cpuModel: string, node: string }
  figures: Figure[]
}

const GROUPS: Array<[string, string]> = [
  ['ring', 'Ring → notification'],
  ['video', 'Answer and join → first decoded frame'],
  ['preview-hops', 'Live preview: where the time goes, hop by hop (p50; tests/bench/hops.ts)'],
  ['door', 'Open door'],
  ['load', 'Viewers per device'],
  ['console', 'Operator console: feeds in one page'],
  ['broker', 'Broker fan-out'],
  ['stacks', 'Other WebRTC stacks (node-datachannel and werift viewers)'],
  ['inspector', 'Inspector: statechart layout and replay'],
  ['history', 'Snapshots and history'],
  ['audio', 'Talk: two-way audio latency (docs/audio.md)'],
  ['cluster', 'A cluster of hubs on Redis and PostgreSQL (docs/cluster.md)']
]

/** What a group's figures can and cannot mean, where the table alone would mislead: written under its heading. */
const GROUP_NOTES: Record<string, string> = {
  cluster: 'One machine runs the three hubs, Redis, PostgreSQL, nginx and every client process: the 3 hubs share its cores, so each has less CPU than the single hub alone. The rows show what a cluster costs per message here (the hop through Redis), memory per connection, failover, and how 10,000 screens fare on 3 hubs, 1 hub and mosquitto side by side in one run; they cannot show scale-out. The p99 ≤ 100 ms target at 10,000 screens needs each hub (and the screens) on machines of their own (docs/cluster.md).'
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const fmt = (f: Figure): string => `${f.value} ${f.unit === 'x' ? '×' : f.unit}`
const verdict = (f: Figure): string => { const m = meets(f); return m === null ? '' : m ? 'met' : '**missed**' }

export function markdown (r: Results, chartFile = 'benchmarks.svg'): string {
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${r.at.slice(0, 10)} (${r.machine.cpus} × ${r.machine.cpuModel}, Node ${r.machine.node})${r.smoke ? ' — **smoke run: one short round, not figures to quote**' : ''}.`,
    'Every figure is measured against real peers on loopback inside a private network namespace. These machines are shared and noisy: read medians and ratios, not single values. `bench/results.json` holds the same figures with their conditions.',
    '',
    `![Each targeted figure as a share of its target](${chartFile})`,
    ''
  ]
  // Conditions are long and shared by many rows: each distinct one becomes a numbered note.
  // A partial run (`--only`) keeps older figures: then each section says when it was measured.
  const when = (f: Figure): string => (f.measuredAt ?? r.at).slice(0, 16).replace('T', ' ')
  const mixed = new Set(r.figures.map((f) => (f.measuredAt ?? r.at).slice(0, 10))).size > 1
  const notes: string[] = []
  const note = (c: string): number => { const i = notes.indexOf(c); return i >= 0 ? i + 1 : notes.push(c) }
  for (const [group, title] of GROUPS) {
    const figs = r.figures.filter((f) => f.group === group)
    if (figs.length === 0) continue
    lines.push(`## ${title}`, '')
    if (GROUP_NOTES[group]) lines.push(GROUP_NOTES[group], '')
    if (mixed) lines.push(`Measured ${[...new Set(figs.map(when))].join(', ')} UTC.`, '')
    lines.push('| figure | value | target | | conditions |', '|---|---|---|---|---|')
    for (const f of figs) lines.push(`| ${f.name} | ${fmt(f)} | ${f.target ? `${f.target.op} ${f.target.value} ${f.unit === 'x' ? '×' : f.unit}` : ''} | ${verdict(f)} | [${note(f.conditions)}](#conditions) |`)
    lines.push('')
  }
  lines.push('## Conditions', '', ...notes.map((c, i) => `${i + 1}. ${c}`), '')
  return lines.join('\n')
}

/**
 * One bar per targeted figure: its value as a share of the target, on a log scale so that
 * 10× better and 10× worse read alike; the line at 1 is the target. Green met, red missed.
 */
export function chart (r: Results): string {
  const figs = r.figures.filter((f) => f.target && Number.isFinite(f.value))
  const rowH = 26
  const left = 330
  const width = 760
  const plot = width - left - 70
  const top = 40
  const height = top + figs.length * rowH + 40
  // "How many times better than the target": >1 is better, whichever way the target points.
  const goodness = (f: Figure): number => {
    const t = f.target!.value
    const v = Math.max(f.value, 1e-6)
    return f.target!.op === '<=' ? t / v : v / Math.max(t, 1e-6)
  }
  const decades = 2 // 1/100 .. 100
  const x = (g: number): number => left + plot / 2 + (Math.max(-decades, Math.min(decades, Math.log10(g))) / decades) * (plot / 2)
  const rows = figs.map((f, i) => {
    const y = top + i * rowH
    const g = goodness(f)
    const ok = meets(f)
    const x0 = x(1)
    const x1 = x(g)
    return [
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(f.name)}</text>`,
      `<rect x="${Math.min(x0, x1)}" y="${y + 5}" width="${Math.max(1, Math.abs(x1 - x0))}" height="${rowH - 10}" fill="${ok ? '#2e7d32' : '#c62828'}"/>`,
      `<text x="${Math.max(x0, x1) + 4}" y="${y + 16}">${esc(fmt(f))}</text>`
    ].join('')
  })
  const ticks = [0.01, 0.1, 1, 10, 100].map((g) => `<line x1="${x(g)}" y1="${top - 6}" x2="${x(g)}" y2="${height - 34}" stroke="${g === 1 ? '#333' : '#ccc'}"/><text x="${x(g)}" y="${height - 20}" text-anchor="middle">${g === 1 ? 'target' : g > 1 ? `${g}× better` : `${1 / g}× worse`}</text>`)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${left}" y="20" font-size="14" font-weight="600">Targeted figures against their targets (log scale)</text>
${ticks.join('\n')}
${rows.join('\n')}
</svg>
`
}
