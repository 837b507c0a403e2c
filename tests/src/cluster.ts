import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { PairResponse, exportPublicKey, generateSigningKey, newId, type PairRequest, type SigningKeyPair } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually } from './harness'
import { freePort, kill, startHubProcess, type HubProcess } from './hubProcess'
import { DEPLOYMENT, NGINX_STREAM_MODULE, replaceExactly, startNginx, testCertificate, type Nginx, type TestCertificate } from './nginx'
import { TestPostgres } from './postgres'
import { TestRedis } from './redis'

/**
 * A cluster of hub processes on loopback (docs/cluster.md), as an operator runs one: the home key
 * made once with the hub's `cluster:key` command and copied to each node, each hub with its own
 * data folder and ports, all sharing one Redis and one PostgreSQL database; nginx in front with
 * the shipped cluster configs, rendered for loopback.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLUSTER_SITE = join(DEPLOYMENT, 'nginx/doorbell-cluster.conf')
export const CLUSTER_STREAM = join(DEPLOYMENT, 'nginx/doorbell-cluster-mqtt.stream.conf')

export interface ClusterHub {
  name: string
  config: string
  proc: HubProcess
  base: string
  mqttUrl: string
  httpPort: number
  mqttPort: number
  stop: (signal?: NodeJS.Signals) => Promise<void>
  /** Starts it again with the same config (same ports, same node id). */
  restart: () => Promise<void>
}

/** Writes `dir/home.key` with the hub's own command, as docs/cluster.md tells an operator to. */
export function makeHomeKey (dir: string): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'hub/src/cluster/homeKeyCli.ts', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`cluster:key failed: ${r.stderr}`)
  return join(dir, 'home.key')
}

/** One hub of the cluster: the provisioned key copied into its data folder, its config written, the process started. */
/** `config`: more of the hub's config (e.g. `push`), over the cluster's defaults. */
export async function startClusterHub (dir: string, name: string, o: { redis: TestRedis, postgresUrl: string, homeKey: string, wait?: boolean, config?: Record<string, unknown> }): Promise<ClusterHub> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const dataDir = join(dir, name)
  mkdirSync(join(dataDir, 'trust'), { recursive: true, mode: 0o700 })
  copyFileSync(o.homeKey, join(dataDir, 'trust', 'home.key'))
  const config = join(dir, `${name}.json`)
  writeFileSync(config, JSON.stringify({
    homeId: 'home', hubName: 'Test city', host: '127.0.0.1', httpPort, mqttPort, tls: 'off', trustProxy: true, dataDir, mesh: { enabled: false },
    cluster: { nodeId: name, redisUrl: o.redis.url, postgresUrl: o.postgresUrl },
    ...o.config
  }))
  const hub: ClusterHub = {
    name,
    config,
    proc: startHubProcess(config),
    base: `http://127.0.0.1:${httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    httpPort,
    mqttPort,
    stop: async (signal = 'SIGTERM') => { await kill(hub.proc, signal) },
    restart: async () => {
      hub.proc = startHubProcess(config)
      await ready(hub)
    }
  }
  if (o.wait !== false) await ready(hub)
  return hub
}

export async function ready (hub: ClusterHub): Promise<void> {
  try {
    await eventually(`hub ${hub.name}`, () => {
      if (hub.proc.proc.exitCode !== null) throw new Error(`hub ${hub.name} exited (${hub.proc.proc.exitCode})`)
      return hub.proc.lines.some((l) => l.includes('hub ready'))
    }, 60_000)
  } catch (err) {
    await kill(hub.proc, 'SIGKILL')
    throw new Error(`${(err as Error).message}\nhub ${hub.name} said:\n${hub.proc.lines.slice(-20).join('\n')}`)
  }
}

/** The owner's token: one credential, valid on every hub; its signed grant and key (for lists the owner signs). */
export interface Owner { token: string, on: (hub: ClusterHub) => HubApi, credential: string, key: SigningKeyPair, homeKey: string }

/** The owner, paired through `hub` with the setup code it printed, or `printed` (the first hub that started with no owner prints the code for the cluster). */
export async function pairOwner (hub: ClusterHub, printed?: string): Promise<Owner> {
  const code = printed ?? await eventually('the setup code', () => /setup code code=(\S+)/.exec(hub.proc.lines.find((l) => l.includes('no owner yet')) ?? '')?.[1])
  const key = await generateSigningKey(false)
  const paired = await new HubApi({ base: hub.base }).pair({ kind: 'viewer', code, id: newId('v'), name: 'Owner', key: await exportPublicKey(key.publicKey) })
  const token = paired.token
  return { token, on: (h) => new HubApi({ base: h.base, token }), credential: paired.credential!, key, homeKey: paired.homeKey }
}

export interface PairedDevice { deviceId: string, memberId: string, token: string }

/** A doorbell paired through `hub` (the owner's invite, then the device's own POST /api/pair). */
export async function pairDevice (owner: HubApi, hub: ClusterHub, deviceId = newId('d')): Promise<PairedDevice> {
  const invite = await owner.invite({ kind: 'device', deviceId })
  const paired = await pairThrough(hub, { kind: 'device', code: invite.code.replace('-', ''), id: deviceId, name: `Door ${deviceId.slice(-4)}` })
  return { deviceId, memberId: paired.member.id, token: paired.token }
}

export interface PairedScreen { viewerId: string, memberId: string, token: string }

export async function pairScreen (owner: HubApi, hub: ClusterHub, name: string): Promise<PairedScreen> {
  const invite = await owner.invite({ kind: 'viewer', role: 'resident' })
  const key = await generateSigningKey(false)
  const viewerId = newId('v')
  const paired = await pairThrough(hub, { kind: 'viewer', code: invite.code.replace('-', ''), id: viewerId, name, key: await exportPublicKey(key.publicKey) })
  return { viewerId, memberId: paired.member.id, token: paired.token }
}

/**
 * POST /api/pair as a client behind nginx: with an X-Real-IP of its own (the hubs trust their
 * proxy), so the pairing limit, shared by the cluster's hubs, counts each test client apart.
 */
export async function pairThrough (hub: ClusterHub, body: PairRequest, address = `10.${rand()}.${rand()}.${rand()}`): Promise<PairResponse> {
  const res = await fetch(`${hub.base}/api/pair`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Real-IP': address }, body: JSON.stringify(body) })
  if (!res.ok) throw Object.assign(new Error(`pairing through ${hub.name}: ${res.status} ${await res.text()}`), { status: res.status })
  return PairResponse.parse(await res.json())
}

const rand = (): number => 1 + Math.floor(Math.random() * 250)

/** An MQTT client signed in as a screen or a device; resolves on CONNACK, rejects with its return code. */
export async function connectAs (url: string, who: PairedScreen | PairedDevice, o: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const clientId = 'deviceId' in who ? `device-${who.deviceId}` : `viewer-${who.viewerId}-${newId().slice(0, 6)}`
  const client = mqtt.connect(url, { clientId, username: who.memberId, password: who.token, reconnectPeriod: 0, connectTimeout: 5000, ...o })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', (err) => { client.end(true); reject(err) })
  })
  client.on('error', () => {})
  return client
}

/** nginx with the shipped cluster configs, rendered for loopback: HTTPS and MQTT over TLS over `hubs`. */
export async function startClusterNginx (dir: string, hubs: ClusterHub[]): Promise<{ nginx: Nginx, cert: TestCertificate, httpsUrl: string, mqttsUrl: string }> {
  if (hubs.length !== 3) throw new Error('the shipped cluster config names three hubs')
  mkdirSync(dir, { recursive: true, mode: 0o755 })
  const cert = await testCertificate(dir)
  const httpsPort = await freePort()
  const httpPort = await freePort()
  const mqttsPort = await freePort()
  const [a, b, c] = hubs as [ClusterHub, ClusterHub, ClusterHub]
  const tls = (indent: string): Array<[RegExp, string, number]> => [
    [/^ *ssl_certificate +\S+;$/m, `${indent}ssl_certificate     ${cert.certPath};`, 1],
    [/^ *ssl_certificate_key +\S+;$/m, `${indent}ssl_certificate_key ${cert.keyPath};`, 1]
  ]
  const site = replaceExactly(readFileSync(CLUSTER_SITE, 'utf8'), 'deployment/nginx/doorbell-cluster.conf', [
    ...tls('    '),
    ['listen 80;', `listen 127.0.0.1:${httpPort};`, 1],
    ['listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`, 1],
    [/^ *listen \[::\]:\d+[^;]*;\n/m, '', 2],
    ['server 127.0.0.1:8081 ', `server 127.0.0.1:${a.httpPort} `, 1],
    ['server 127.0.0.1:8082 ', `server 127.0.0.1:${b.httpPort} `, 1],
    ['server 127.0.0.1:8083 ', `server 127.0.0.1:${c.httpPort} `, 1]
  ])
  const stream = replaceExactly(readFileSync(CLUSTER_STREAM, 'utf8'), 'deployment/nginx/doorbell-cluster-mqtt.stream.conf', [
    ...tls('        '),
    ['listen 8883 ssl;', `listen 127.0.0.1:${mqttsPort} ssl;`, 1],
    [/^ *listen \[::\]:\d+[^;]*;\n/m, '', 1],
    ['server 127.0.0.1:1884 ', `server 127.0.0.1:${a.mqttPort} `, 1],
    ['server 127.0.0.1:1885 ', `server 127.0.0.1:${b.mqttPort} `, 1],
    ['server 127.0.0.1:1886 ', `server 127.0.0.1:${c.mqttPort} `, 1]
  ])
  const sitePath = join(dir, 'doorbell-cluster.conf')
  const streamPath = join(dir, 'doorbell-cluster-mqtt.stream.conf')
  writeFileSync(sitePath, site)
  writeFileSync(streamPath, stream)
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, [
    `load_module ${NGINX_STREAM_MODULE};`, 'worker_processes 1;', `pid ${dir}/nginx.pid;`, 'error_log stderr notice;', 'events { worker_connections 1024; }',
    'http {', `  access_log ${dir}/access.log;`, ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
    `  include ${sitePath};`, '}', `include ${streamPath};`, ''
  ].join('\n'))
  const nginx = await startNginx({ dir, conf }, httpsPort)
  return { nginx, cert, httpsUrl: `https://127.0.0.1:${httpsPort}/`, mqttsUrl: `mqtts://127.0.0.1:${mqttsPort}` }
}

/** What `startThreeHubs` has started so far: filled as it goes, so `stopThreeHubs` stops whatever started even after a failure half-way. */
export interface ThreeHubs {
  hubs: ClusterHub[]
  dir?: string
  redis?: TestRedis
  db?: TestPostgres
  /** The home's database (`city`). */
  postgresUrl?: string
  owner?: Owner
}

/**
 * The cluster tests' set-up: a folder, Redis and PostgreSQL from Debian, the home key, and hubs
 * a, b and c on them (into `c.hubs`, in that order). `ownerOnA`: A starts alone first, migrates
 * the empty database and prints the setup code, which pairs the owner, and then B and C start;
 * otherwise all three start before the home has an owner. `config`: more of each hub's config.
 */
export async function startThreeHubs (c: ThreeHubs, folder: string, o: { ownerOnA: boolean, config?: Record<string, unknown> }): Promise<{ dir: string, redis: TestRedis, db: TestPostgres, postgresUrl: string, owner: Owner | null, A: ClusterHub, B: ClusterHub, C: ClusterHub }> {
  const dir = c.dir = mkdtempSync(join(tmpdir(), folder))
  const redis = c.redis = await TestRedis.start()
  const db = c.db = await TestPostgres.start()
  const postgresUrl = c.postgresUrl = await db.createDatabase('city')
  const homeKey = makeHomeKey(join(dir, 'provisioned'))
  const more = o.config !== undefined ? { config: o.config } : {}
  c.hubs.push(await startClusterHub(dir, 'a', { redis, postgresUrl, homeKey, ...more }))
  if (o.ownerOnA) c.owner = await pairOwner(c.hubs[0]!)
  for (const name of ['b', 'c']) c.hubs.push(await startClusterHub(dir, name, { redis, postgresUrl, homeKey, ...more }))
  const [A, B, C] = c.hubs as [ClusterHub, ClusterHub, ClusterHub]
  return { dir, redis, db, postgresUrl, owner: c.owner ?? null, A, B, C }
}

/** A hub that died on its own says why: its exit code and last lines (call first in an `after` hook). */
export function reportExitedHubs (hubs: ClusterHub[]): void {
  for (const hub of hubs) if (hub.proc.proc.exitCode !== null) console.log(`hub ${hub.name} exited ${hub.proc.proc.exitCode}:\n${hub.proc.lines.slice(-30).join('\n')}`)
}

/** Kills the hubs, then stops Redis and PostgreSQL and removes the folder: whatever of them started. */
export async function stopThreeHubs (c: ThreeHubs): Promise<void> {
  for (const hub of c.hubs) await hub.stop('SIGKILL')
  await c.redis?.destroy()
  await c.db?.destroy()
  if (c.dir) rmSync(c.dir, { recursive: true, force: true })
}
