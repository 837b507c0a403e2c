import { mkdtempSync, rmSync } from 'node:fs'
import { after, test } from 'node:test'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import abstract from 'aedes-persistence/abstract.js'
import { SqlitePersistence } from '../src/broker/persistence/sqlitePersistence'

/**
 * aedes-persistence's own conformance suite (the one every Aedes persistence runs), against the
 * hub's SQLite persistence: each test gets a fresh database in its own folder.
 */
const root = mkdtempSync(join(tmpdir(), 'broker-abstract-'))
after(() => { rmSync(root, { recursive: true, force: true }) })
let n = 0

abstract({
  test,
  persistence: () => new SqlitePersistence({ dir: join(root, String(n++)) }),
  testAsync: true
})
