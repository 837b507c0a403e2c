/**
 * A cluster to try on this machine (docs/cluster.md): Redis and PostgreSQL from Debian on free
 * loopback ports in a temporary folder, the home key made once and copied to three hubs, and
 * nginx in front with deployment/nginx's cluster configs. Prints the owner's setup code and the
 * addresses; Ctrl-C stops everything and deletes the folder. Run as root (PostgreSQL runs as the
 * `postgres` user through runuser): `npm run cluster:local`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeHomeKey, startClusterHub, startClusterNginx, type ClusterHub } from '../tests/src/cluster'
import { TestPostgres } from '../tests/src/postgres'
import { TestRedis } from '../tests/src/redis'

const dir = mkdtempSync(join(tmpdir(), 'doorbell-cluster-'))
const redis = await TestRedis.start()
const db = await TestPostgres.start()
const hubs: ClusterHub[] = []
let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  await front?.nginx.stop()
  for (const hub of hubs) await hub.stop()
  await redis.destroy()
  await db.destroy()
  rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}
process.on('SIGINT', () => { void stop() })
process.on('SIGTERM', () => { void stop() })

let front: Awaited<ReturnType<typeof startClusterNginx>> | undefined
try {
  const postgresUrl = await db.createDatabase('doorbell')
  const homeKey = makeHomeKey(join(dir, 'provisioned'))
  for (const name of ['a', 'b', 'c']) hubs.push(await startClusterHub(dir, name, { redis, postgresUrl, homeKey }))
  front = await startClusterNginx(join(dir, 'nginx'), hubs)
  const code = /setup code code=(\S+)/.exec(hubs[0]!.proc.lines.find((l) => l.includes('no owner yet')) ?? '')?.[1]
  console.log(`
Redis       ${redis.url}
PostgreSQL  ${postgresUrl}
hubs        ${hubs.map((h) => `${h.name}: ${h.base} (MQTT ${h.mqttUrl})`).join('\n            ')}
nginx       ${front.httpsUrl} (test CA: ${front.cert.caPath}), MQTT over TLS ${front.mqttsUrl}
owner code  ${code ?? '(the home already has an owner)'}  (pair at ${hubs[0]!.base}/pair)
Ctrl-C stops everything and deletes ${dir}`)
} catch (err) {
  console.error(`the local cluster did not start: ${(err as Error).message}`)
  await stop()
}
