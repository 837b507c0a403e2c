/**
 * Makes a cluster's home key once, on a machine of the operator's choosing:
 * `npm run cluster:key -w @doorbell/hub -- DIR` writes DIR/home.key (0600, PKCS#8 PEM) and prints
 * its public half. Copy that file into each hub's `dataDir/trust/` (docs/cluster.md); it never goes
 * into PostgreSQL.
 */
import { loadOrCreateHomeKey } from '../trust/homeKey'

const dir = process.argv[2]
if (dir === undefined || dir.startsWith('-')) {
  console.error('usage: cluster:key DIR   (writes DIR/home.key unless it exists, and prints the public key)')
  process.exit(2)
}
const key = await loadOrCreateHomeKey(dir)
console.log(`home key in ${dir}/home.key; public key ${key.publicText}`)
