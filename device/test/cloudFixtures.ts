import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

/**
 * Test fixtures for the cloud transport: a throwaway CA with server and client certificates
 * (openssl, ECDSA P-256, in a temp folder), and a real mosquitto with mutual TLS on 127.0.0.1.
 */

export interface PemFiles { certFile: string, keyFile: string, cert: string, key: string }

export interface TestPki {
  dir: string
  caFile: string
  ca: string
  /** A server certificate for 127.0.0.1 and localhost. */
  server: PemFiles
  /** A client certificate with CN = name (the thing name when a device uses it). */
  client: (name: string) => PemFiles
  cleanup: () => void
}

function openssl (dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

function leaf (dir: string, name: string, cn: string, ext: string): PemFiles {
  const keyFile = join(dir, `${name}.key`)
  const certFile = join(dir, `${name}.crt`)
  const extFile = join(dir, `${name}.ext`)
  writeFileSync(extFile, ext)
  openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${cn}`])
  openssl(dir, ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-out', certFile, '-extfile', extFile])
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') }
}

/** A CA named `caName` and a server certificate for 127.0.0.1 signed by it. */
export function makePki (caName = 'Doorbell test CA'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-cloud-pki-'))
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', `/CN=${caName}`, '-days', '2'])
  const server = leaf(dir, 'server', '127.0.0.1', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n')
  const clients = new Map<string, PemFiles>()
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    server,
    client: (name) => {
      let c = clients.get(name)
      if (!c) {
        c = leaf(dir, `client-${name}`, name, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n')
        clients.set(name, c)
      }
      return c
    },
    cleanup: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

async function portOpen (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

export interface Mosquitto {
  port: number
  readonly pid: number | undefined
  /** stderr lines so far (log_dest stderr). */
  log: string[]
  start: () => Promise<void>
  /** SIGTERM and wait for exit (mosquitto saves its persistence file on the way out). */
  stop: () => Promise<void>
}

/**
 * mosquitto 2 with mutual TLS on 127.0.0.1:port: require_certificate, use_identity_as_username,
 * persistence on (sessions and retained messages survive a stop/start, as IoT Core's do).
 */
export async function mosquitto (pki: TestPki, o: { port?: number } = {}): Promise<Mosquitto> {
  const port = o.port ?? await freePort()
  const conf = join(pki.dir, `mosquitto-${port}.conf`)
  writeFileSync(conf, [
    'user root',
    'per_listener_settings false',
    'persistence true',
    `persistence_location ${pki.dir}/`,
    `persistence_file mosquitto-${port}.db`,
    'autosave_interval 0',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    `listener ${port} 127.0.0.1`,
    `cafile ${pki.caFile}`,
    `certfile ${pki.server.certFile}`,
    `keyfile ${pki.server.keyFile}`,
    'require_certificate true',
    'use_identity_as_username true',
    'allow_anonymous false',
    ''
  ].join('\n'))
  let child: ChildProcess | null = null
  const log: string[] = []
  const m: Mosquitto = {
    port,
    get pid () { return child?.pid },
    log,
    async start () {
      if (child) return
      const c = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
      child = c
      c.stderr!.setEncoding('utf8')
      c.stderr!.on('data', (d: string) => { log.push(...d.split('\n').filter((l) => l !== '')) })
      c.once('exit', () => { if (child === c) child = null })
      const deadline = Date.now() + 5000
      while (!(await portOpen(port))) {
        if (child !== c) throw new Error(`mosquitto exited: ${log.join('\n')}`)
        if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}: ${log.join('\n')}`)
        await new Promise((r) => setTimeout(r, 30))
      }
    },
    async stop () {
      const c = child
      if (!c || c.exitCode !== null) { child = null; return }
      await new Promise<void>((resolve) => {
        c.once('exit', () => { resolve() })
        c.kill('SIGTERM')
      })
      child = null
    }
  }
  await m.start()
  return m
}

/** Resolves with the first value `check` returns that is not undefined, polling; rejects after timeoutMs. */
export async function until<T> (what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
