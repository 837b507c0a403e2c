// Reads a V8 CPU profile (node --cpu-prof) and prints where the time went: self time by function
// and by file (node_modules packages grouped), largest first. Usage: node profileTop.mjs FILE [N]
import { readFileSync } from 'node:fs'

const [file, n = '25'] = process.argv.slice(2)
if (!file) { console.error('usage: node profileTop.mjs PROFILE.cpuprofile [N]'); process.exit(2) }
const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const self = new Map()
// Each sample names the node running then; the gap after it is the time it got.
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0))
}
const total = [...self.values()].reduce((a, b) => a + b, 0)
const where = (cf) => {
  const url = cf.url || '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  return pkg ? pkg[1] : url.replace(/^file:\/\/.*?\/(device|core|machines|mesh)\//, '$1/')
}
const byFunction = new Map()
const byFile = new Map()
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame
  const fn = `${cf.functionName || '(anonymous)'} ${where(cf)}${cf.lineNumber >= 0 ? `:${cf.lineNumber + 1}` : ''}`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
  byFile.set(where(cf), (byFile.get(where(cf)) ?? 0) + us)
}
const show = (title, m) => {
  console.log(`${title} (of ${(total / 1e6).toFixed(1)} s sampled):`)
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) console.log(`  ${(us / 1e3).toFixed(0).padStart(7)} ms ${(100 * us / total).toFixed(1).padStart(5)} %  ${k}`)
}
show('self time by function', byFunction)
show('self time by file or package', byFile)
