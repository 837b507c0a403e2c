import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHomeKey, ready, startClusterHub, type ClusterHub } from '../src/cluster'
import { eventually } from '../src/harness'
import { freePort, kill, startHubProcess } from '../src/hubProcess'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'

/** How a cluster's hubs start: the schema made once however many start together, and bad setups refused by name. */
describe('cluster start-up', { timeout: 180_000 }, () => {
  let dir: string
  let redis: TestRedis
  let db: TestPostgres
  const hubs: ClusterHub[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cluster-start-'))
    redis = await TestRedis.start()
    db = await TestPostgres.start()
  })
  after(async () => {
    for (const hub of hubs) await hub.stop('SIGKILL')
    await redis?.destroy()
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('two hubs starting at once on an empty database: one migration, no error', async () => {
    const postgresUrl = await db.createDatabase('together')
    const homeKey = makeHomeKey(join(dir, 'key'))
    const both = await Promise.all(['one', 'two'].map(async (name) => await startClusterHub(dir, name, { redis, postgresUrl, homeKey, wait: false })))
    hubs.push(...both)
    await Promise.all(both.map(ready))
    const rows = (await db.query('SELECT version, node FROM doorbell_migrations ORDER BY version', [], 'together')).rows as Array<{ version: number, node: string }>
    const versions = rows.map((r) => r.version)
    assert.equal(new Set(versions).size, versions.length, 'each migration applied once')
    for (const v of [1, 2, 3, 4, 5, 6, 7, 8]) assert.ok(versions.includes(v), `migration ${v} (2: the shared state; 3: replaced grants; 4: the history; 5: the clip setting; 6: Web Push; 7: clips; 8: the replies' seq) applied`)
    assert.equal(new Set(rows.map((r) => r.node)).size, 1, 'all by one hub')
    const applied = both.filter((h) => h.proc.lines.some((l) => l.includes('PostgreSQL schema ready') && l.includes(`applied=${versions.join(',')}`)))
    assert.equal(applied.length, 1, 'exactly one hub applied it; the other found it done')
    assert.equal(applied[0]!.name, rows[0]!.node)
    for (const hub of both) assert.ok(!hub.proc.lines.some((l) => / error /.test(l)), `hub ${hub.name} logged no error:\n${hub.proc.lines.join('\n')}`)
  })

  it('a hub of a cluster without the provisioned home key refuses to start, naming the file and what to do', async () => {
    const postgresUrl = await db.createDatabase('nokey')
    const config = join(dir, 'nokey.json')
    writeFileSync(config, JSON.stringify({
      homeId: 'home', host: '127.0.0.1', httpPort: await freePort(), mqttPort: await freePort(), tls: 'off', dataDir: join(dir, 'nokey'), mesh: { enabled: false },
      cluster: { nodeId: 'lonely', redisUrl: redis.url, postgresUrl }
    }))
    const proc = startHubProcess(config)
    const code = await new Promise<number | null>((resolve) => proc.proc.once('exit', resolve))
    assert.equal(code, 1)
    const said = proc.lines.join('\n')
    assert.match(said, /no home key at .*nokey\/trust\/home\.key/)
    assert.match(said, /cluster:key/)
    // Nothing was made: no key, no schema.
    assert.equal((await db.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'members'", [], 'nokey')).rows[0].n, 0)
  })

  it('a bad cluster section is refused by the config check, before anything starts', async () => {
    const config = join(dir, 'bad.json')
    writeFileSync(config, JSON.stringify({
      homeId: 'home', host: '127.0.0.1', tls: 'auto', dataDir: join(dir, 'bad'), mesh: { enabled: false },
      cluster: { nodeId: 'Not Valid', redisUrl: 'http://127.0.0.1:6379', postgresUrl: 'mysql://x' }
    }))
    const proc = startHubProcess(config)
    const code = await new Promise<number | null>((resolve) => proc.proc.once('exit', resolve))
    await kill(proc, 'SIGKILL')
    assert.equal(code, 2)
    const said = await eventually('the config errors', () => proc.lines.join('\n') || null)
    assert.match(said, /cluster\.nodeId: a node id is/)
    assert.match(said, /cluster\.redisUrl: redisUrl starts with redis:\/\//)
    assert.match(said, /cluster\.postgresUrl: postgresUrl starts with postgres:\/\//)
    assert.match(said, /tls: a cluster's hubs share one certificate/)
  })
})
