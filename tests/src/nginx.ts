import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Pki } from './cloud/pki'
import { eventually } from './harness'
import { freePort, kill, startHubProcess, type HubProcess } from './hubProcess'
import { endChild, exitedAlready } from './child'

/**
 * Debian's nginx, run by a test with the shipped deployment/nginx files: rendered for loopback
 * (random ports, a test CA's certificate, the hub's port), in a folder of its own (pid, logs,
 * temporary files), in the foreground, ended by its PID.
 */

export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx'
/** Debian ships the stream module apart (libnginx-mod-stream). */
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
export const DEPLOYMENT = fileURLToPath(new URL('../../deployment/', import.meta.url))
export const SITE_CONF = join(DEPLOYMENT, 'nginx/doorbell.conf')
export const STREAM_CONF = join(DEPLOYMENT, 'nginx/doorbell-mqtt.stream.conf')

/** The name the shipped files use for the hub, as a person replaces it. */
const SHIPPED_NAME = 'doorbell.example.com'

/**
 * `text` with each `from` replaced, where the shipped file must hold it exactly `count` times: a
 * change to the shipped file that a rendering no longer covers fails here, loudly, instead of
 * testing something else.
 */
export function replaceExactly (text: string, file: string, rules: Array<[from: string | RegExp, to: string, count: number]>): string {
  for (const [from, to, count] of rules) {
    const pattern = typeof from === 'string' ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : new RegExp(from.source, from.flags.includes('g') ? from.flags : `${from.flags}g`)
    const found = text.match(pattern)?.length ?? 0
    if (found !== count) throw new Error(`${file}: expected ${count} × ${String(from)}, found ${found}: the rendering in tests/src/nginx.ts no longer matches the shipped file`)
    text = text.replace(pattern, () => to)
  }
  return text
}

export interface TestCertificate {
  /** The test CA's certificate (PEM): what Chromium and Node are told to trust. */
  caPem: string
  caPath: string
  certPath: string
  keyPath: string
}

/** A server certificate for localhost and 127.0.0.1 from a fresh test CA, written into `dir` (never into the repository). */
export async function testCertificate (dir: string): Promise<TestCertificate> {
  const pki = await Pki.create()
  const issued = await pki.issueServer(['localhost', '127.0.0.1'])
  const paths = { caPath: join(dir, 'ca.pem'), certPath: join(dir, 'server.pem'), keyPath: join(dir, 'server.key') }
  writeFileSync(paths.caPath, pki.serverCaPem)
  writeFileSync(paths.certPath, issued.certPem)
  writeFileSync(paths.keyPath, issued.keyPem, { mode: 0o600 })
  return { caPem: pki.serverCaPem, ...paths }
}

export interface SiteOptions {
  serverName: string
  httpsPort: number
  httpPort: number
  hubPort: number
  certPath: string
  keyPath: string
}

/** deployment/nginx/doorbell.conf for loopback: listens on 127.0.0.1 only, on the given ports. */
export function renderSite (shipped: string, o: SiteOptions): string {
  return replaceExactly(shipped, 'deployment/nginx/doorbell.conf', [
    [/^ *ssl_certificate +\S+;$/m, `    ssl_certificate     ${o.certPath};`, 1],
    [/^ *ssl_certificate_key +\S+;$/m, `    ssl_certificate_key ${o.keyPath};`, 1],
    [`server_name ${SHIPPED_NAME};`, `server_name ${o.serverName};`, 2],
    ['listen 80;', `listen 127.0.0.1:${o.httpPort};`, 1],
    ['listen 443 ssl http2;', `listen 127.0.0.1:${o.httpsPort} ssl http2;`, 1],
    // Loopback only: no IPv6 wildcard listeners in a test.
    [/^ *listen \[::\]:\d+[^;]*;\n/m, '', 2],
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${o.hubPort};`, 1]
  ])
}

export interface StreamOptions {
  mqttTlsPort: number
  hubMqttPort: number
  certPath: string
  keyPath: string
  /** Uncomment the shipped `# proxy_protocol on;`, as deployment/README.md tells a person to. */
  proxyProtocol?: boolean
}

/** deployment/nginx/doorbell-mqtt.stream.conf for loopback. */
export function renderStream (shipped: string, o: StreamOptions): string {
  return replaceExactly(shipped, 'deployment/nginx/doorbell-mqtt.stream.conf', [
    [/^ *ssl_certificate +\S+;$/m, `        ssl_certificate     ${o.certPath};`, 1],
    [/^ *ssl_certificate_key +\S+;$/m, `        ssl_certificate_key ${o.keyPath};`, 1],
    ['listen 8883 ssl;', `listen 127.0.0.1:${o.mqttTlsPort} ssl;`, 1],
    [/^ *listen \[::\]:\d+[^;]*;\n/m, '', 1],
    ['server 127.0.0.1:1883;', `server 127.0.0.1:${o.hubMqttPort};`, 1],
    ...(o.proxyProtocol === true ? [['# proxy_protocol on;', 'proxy_protocol on;', 1] as [string, string, number]] : [])
  ])
}

/**
 * The top of an nginx.conf, as Debian's is, around the rendered site (inside http {}) and the
 * optional stream file (at the top level): everything nginx writes stays in `dir`.
 */
export function mainConfig (dir: string, o: { site: string, stream?: string }): string {
  return [
    ...(o.stream ? [`load_module ${NGINX_STREAM_MODULE};`] : []),
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    'error_log stderr notice;',
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
    `  include ${o.site};`,
    '}',
    ...(o.stream ? [`include ${o.stream};`] : []),
    ''
  ].join('\n')
}

export interface NginxFiles {
  /** The folder that holds the rendered files, the pid, the logs and the temporary files. */
  dir: string
  conf: string
}

/**
 * Writes the rendered shipped files and the main config into `dir`. nginx's workers run as
 * `nobody` when the master is root: the folder must let them in (the key stays 0600: only the
 * master, which reads it, needs it).
 */
export function writeNginxConfig (dir: string, site: SiteOptions, stream?: StreamOptions): NginxFiles {
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o755)
  const sitePath = join(dir, 'doorbell.conf')
  writeFileSync(sitePath, renderSite(readFileSync(SITE_CONF, 'utf8'), site))
  let streamPath: string | undefined
  if (stream) {
    streamPath = join(dir, 'doorbell-mqtt.stream.conf')
    writeFileSync(streamPath, renderStream(readFileSync(STREAM_CONF, 'utf8'), stream))
  }
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, mainConfig(dir, { site: sitePath, ...(streamPath ? { stream: streamPath } : {}) }))
  return { dir, conf }
}

/** `nginx -t`: whether nginx accepts the config, and what it said (its messages go to stderr). */
export function nginxTest (files: NginxFiles): { ok: boolean, output: string } {
  const r = spawnSync(NGINX, ['-t', '-p', files.dir, '-c', files.conf, '-e', 'stderr'], { encoding: 'utf8', timeout: 20_000 })
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() }
}

export interface Nginx {
  proc: ChildProcess
  pid: number
  /** https://127.0.0.1:<port>/ */
  url: string
  lines: string[]
  /** nginx's access log so far (combined format). */
  accessLog: () => string
  stop: () => Promise<void>
}

const listening = async (port: number): Promise<boolean> => await new Promise((resolve) => {
  const socket = connect(port, '127.0.0.1')
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => { resolve(false) })
})

/** Starts nginx in the foreground with `files`; resolves when it accepts connections on `httpsPort`. */
export async function startNginx (files: NginxFiles, httpsPort: number): Promise<Nginx> {
  const proc = spawn(NGINX, ['-p', files.dir, '-c', files.conf, '-e', 'stderr', '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const take = (d: Buffer): void => { lines.push(...d.toString().split('\n').filter(Boolean)) }
  proc.stdout!.on('data', take)
  proc.stderr!.on('data', take)
  const nginx: Nginx = {
    proc,
    pid: proc.pid!,
    url: `https://127.0.0.1:${httpsPort}/`,
    lines,
    accessLog: () => existsSync(join(files.dir, 'access.log')) ? readFileSync(join(files.dir, 'access.log'), 'utf8') : '',
    // SIGTERM: fast shutdown of the master and its workers; SIGKILL if it hangs.
    async stop () { await endChild(proc) }
  }
  const deadline = Date.now() + 10_000
  while (!exitedAlready(proc) && Date.now() < deadline) {
    if (await listening(httpsPort)) return nginx
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const why = exitedAlready(proc) ? `nginx exited (${proc.exitCode ?? proc.signalCode})` : 'nginx did not listen within 10 s'
  await nginx.stop()
  throw new Error(`${why}; it said:\n${lines.join('\n')}`)
}

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** Every header line as sent, lower-case names: how many times a header came. */
  lines: Array<[string, string]>
  body: string
}

/**
 * One HTTP(S) request that trusts exactly `ca` (the test CA), as a device or a script would send
 * it; headers go out as given (a test may send forged X-Forwarded-* to see nginx replace them).
 */
export async function request (url: string, o: { ca?: string, method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Reply> {
  const { request: send } = url.startsWith('https:') ? await import('node:https') : await import('node:http')
  return await new Promise<Reply>((resolve, reject) => {
    const req = send(url, {
      method: o.method ?? 'GET',
      headers: { ...(o.body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(o.body)) } : {}), ...o.headers },
      timeout: 10_000,
      ...(o.ca ? { ca: o.ca } : {})
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => {
        const lines: Array<[string, string]> = []
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) lines.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!])
        resolve({ status: res.statusCode ?? 0, headers: res.headers, lines, body: Buffer.concat(chunks).toString('utf8') })
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`${url}: no answer in 10 s`)) })
    req.on('error', reject)
    req.end(o.body)
  })
}

export interface ProxiedHub {
  hub: HubProcess
  config: string
  httpPort: number
  mqttPort: number
  /** The owner's one-time setup code the hub printed, still unused: the owner pairs through nginx. */
  setupCode: string
  stop: () => Promise<void>
}

/**
 * A hub process as deployment/ runs it behind nginx: plain HTTP on loopback, trustProxy, its own
 * data in `dir`; nobody paired yet. (tests/src/hubProcess.ts startHomeHub pairs the owner itself,
 * directly: here the owner must come through the proxy.)
 */
export async function startProxiedHub (dir: string, extra: Record<string, unknown> = {}): Promise<ProxiedHub> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const config = join(dir, 'hub.json')
  writeFileSync(config, JSON.stringify({ homeId: 'home', hubName: 'Test home', host: '127.0.0.1', httpPort, mqttPort, tls: 'off', trustProxy: true, dataDir: join(dir, 'hub'), mesh: { enabled: false }, ...extra }))
  const hub = startHubProcess(config)
  try {
    await eventually('the hub', () => hub.lines.some((l) => l.includes('hub ready')), 30_000)
    const setupCode = await eventually('the hub\'s setup code', () => /setup code code=(\S+)/.exec(hub.lines.find((l) => l.includes('no owner yet')) ?? '')?.[1])
    return { hub, config, httpPort, mqttPort, setupCode, stop: async () => { await kill(hub, 'SIGTERM') } }
  } catch (err) {
    await kill(hub, 'SIGKILL')
    throw new Error(`${(err as Error).message}\nthe hub said:\n${hub.lines.slice(-20).join('\n')}`)
  }
}
