import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import mqtt from 'mqtt'

/**
 * One mosquitto process standing in for IoT Core's device gateway: mutual TLS, the certificate's
 * CN as the MQTT username, an ACL file the control plane rewrites, SIGHUP to reload it.
 *
 * Everything mosquitto tells us comes from its log on stderr, read line by line:
 * - "Reloading config." is written by the broker's single thread just before it rereads the
 *   configuration and reapplies the ACLs to every connected client, so once we have read it, any
 *   packet a client sends afterwards is judged by the new ACL.
 * - "New client connected from A as ID (p4, c1, k60, u'CN')." tells which certificate a client id
 *   belongs to, which mosquitto's ACLs cannot check but `onClientConnected` can.
 */

export const MOSQUITTO = '/usr/sbin/mosquitto'

export interface BrokerFiles {
  caFile: string
  certFile: string
  keyFile: string
  aclFile: string
}

/** A client certificate the stand-in itself uses (probing readiness, taking over client ids). */
export interface AdminIdentity { certPem: string, keyPem: string, serverCaPem: string, username: string }

export interface ConnectedClient { clientId: string, username: string | undefined }

const READY_ATTEMPTS = 100
const STEP_MS = 50
const RELOAD_TIMEOUT_MS = 10_000
const STOP_TIMEOUT_MS = 5_000
const LOG_KEEP = 400

export class Mosquitto {
  private proc: ChildProcess | undefined
  private exited: Promise<void> | undefined
  private readonly log: string[] = []
  private readonly lineWaiters: Array<{ test: (line: string) => boolean, resolve: () => void, reject: (err: Error) => void }> = []
  private reloads: Promise<void> = Promise.resolve()
  /** Last known username of each client id, from the connect lines of the log. */
  readonly clients = new Map<string, string | undefined>()
  /** Called for every client that completed CONNECT (after CONNACK was sent). */
  onClientConnected: ((client: ConnectedClient) => void) | undefined

  private constructor (readonly dir: string, readonly files: BrokerFiles, private readonly admin: AdminIdentity, public port: number) {}

  /** Writes the configuration and starts mosquitto on a free port of 127.0.0.1. */
  static async start (dir: string, files: BrokerFiles, admin: AdminIdentity): Promise<Mosquitto> {
    await mkdir(join(dir, 'mosquitto-data'), { recursive: true })
    let lastError: unknown
    // The free port is found by binding and releasing it: another process may take it in between.
    for (let attempt = 0; attempt < 5; attempt++) {
      const broker = new Mosquitto(dir, files, admin, await freePort())
      try {
        await broker.startProcess()
        return broker
      } catch (err) {
        lastError = err
        await broker.stopProcess()
        if (!/Address already in use/i.test(String(err))) break
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError))
  }

  get running (): boolean { return this.proc !== undefined }

  /** The last lines mosquitto logged, for diagnostics. */
  recentLog (): string[] { return [...this.log] }

  /** Starts mosquitto again on the same port (after `stop`). */
  async restart (): Promise<void> {
    if (this.proc !== undefined) return
    await this.startProcess()
  }

  /** Stops mosquitto (SIGTERM: it saves its persistence file, as a broker going away cleanly would). */
  async stop (): Promise<void> {
    await this.stopProcess()
  }

  /**
   * Makes mosquitto reread its configuration (and so the ACL file) and resolves once its thread has
   * started doing so. Reloads are serialised: two signals before one reload would log one line.
   * If the broker is stopped the ACL file is read at the next start, so there is nothing to wait for.
   */
  async reload (): Promise<void> {
    const next = this.reloads.then(async () => {
      const proc = this.proc
      if (proc === undefined) return
      const seen = this.waitForLine((line) => line === 'Reloading config.', RELOAD_TIMEOUT_MS, 'mosquitto to reload its configuration')
      proc.kill('SIGHUP')
      try {
        await seen
      } catch (err) {
        // Stopped meanwhile: the next start reads the ACL file anyway.
        if (this.proc === proc) throw err
      }
    })
    this.reloads = next.catch(() => {})
    await next
  }

  /**
   * Disconnects whoever is connected with `clientId`, by connecting with the same client id and a
   * clean session (mosquitto closes the older connection: MQTT's session takeover), then leaving.
   * mosquitto has no other way to drop one client from outside. Its persistent session goes too.
   */
  async kick (clientId: string): Promise<void> {
    if (this.proc === undefined) return
    const client = mqtt.connect(`mqtts://127.0.0.1:${this.port}`, {
      clientId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      protocolVersion: 4,
      ca: this.admin.serverCaPem,
      cert: this.admin.certPem,
      key: this.admin.keyPem
    })
    await new Promise<void>((resolve) => {
      client.once('connect', () => { client.end(false, {}, () => { resolve() }) })
      client.once('error', () => { client.end(true); resolve() })
      client.once('close', () => { resolve() })
    })
  }

  private async startProcess (): Promise<void> {
    await writeAtomic(join(this.dir, 'mosquitto.conf'), this.config())
    const proc = spawn(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        if (this.proc === proc) this.proc = undefined
        this.clients.clear()
        // Whatever was awaited from this process will not come.
        const err = new Error(`mosquitto exited (${signal ?? code ?? '?'}): ${this.log.slice(-8).join(' | ')}`)
        for (const waiter of this.lineWaiters.splice(0)) waiter.reject(err)
        resolve()
      })
    })
    proc.once('error', (err) => { this.record(`spawn error: ${err.message}`) })
    let partial = ''
    const onData = (chunk: Buffer): void => {
      partial += chunk.toString('utf8')
      let nl: number
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl).replace(/^\d+: /, '')
        partial = partial.slice(nl + 1)
        this.record(line)
      }
    }
    proc.stderr!.on('data', onData)
    proc.stdout!.on('data', onData)
    await this.waitForLine((line) => /^mosquitto version \S+ running$/.test(line), 10_000, 'mosquitto to start')
    await this.probeTls()
  }

  private async stopProcess (): Promise<void> {
    const proc = this.proc
    if (proc === undefined) { await this.exited; return }
    proc.kill('SIGTERM')
    const timer = setTimeout(() => { proc.kill('SIGKILL') }, STOP_TIMEOUT_MS)
    await this.exited
    clearTimeout(timer)
    this.proc = undefined
    this.clients.clear()
  }

  /** Resolves once mosquitto completes a TLS handshake with the stand-in's own certificate. */
  private async probeTls (): Promise<void> {
    let last: unknown
    for (let attempt = 0; attempt < READY_ATTEMPTS && this.proc !== undefined; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          const socket = tlsConnect({ host: '127.0.0.1', port: this.port, ca: this.admin.serverCaPem, cert: this.admin.certPem, key: this.admin.keyPem })
          socket.once('secureConnect', () => { socket.destroy(); resolve() })
          socket.once('error', (err) => { socket.destroy(); reject(err) })
        })
        return
      } catch (err) {
        last = err
        await new Promise((resolve) => setTimeout(resolve, STEP_MS))
      }
    }
    throw new Error(`mosquitto did not accept TLS on 127.0.0.1:${this.port}: ${String(last)}`)
  }

  private record (line: string): void {
    this.log.push(line)
    if (this.log.length > LOG_KEEP) this.log.shift()
    const connected = /^New client connected from \S+ as (.*) \(p\d+, c\d+, k\d+(?:, u'(.*)')?\)\.$/.exec(line)
    if (connected !== null) {
      const client = { clientId: connected[1]!, username: connected[2] }
      this.clients.set(client.clientId, client.username)
      this.onClientConnected?.(client)
    }
    for (let i = 0; i < this.lineWaiters.length; i++) {
      const waiter = this.lineWaiters[i]!
      if (waiter.test(line)) {
        this.lineWaiters.splice(i--, 1)
        waiter.resolve()
      }
    }
  }

  private async waitForLine (test: (line: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    let waiter: { test: (line: string) => boolean, resolve: () => void, reject: (err: Error) => void } | undefined
    let timer: NodeJS.Timeout | undefined
    try {
      await new Promise<void>((resolve, reject) => {
        waiter = { test, resolve, reject }
        this.lineWaiters.push(waiter)
        timer = setTimeout(() => { reject(new Error(`timed out waiting for ${what}; last log: ${this.log.slice(-8).join(' | ')}`)) }, timeoutMs)
      })
    } finally {
      clearTimeout(timer)
      const at = waiter === undefined ? -1 : this.lineWaiters.indexOf(waiter)
      if (at >= 0) this.lineWaiters.splice(at, 1)
    }
  }

  private config (): string {
    return [
      '# Written by the IoT Core stand-in (tests/src/cloud/iot). Regenerated at every start.',
      'per_listener_settings false',
      // Started as root, mosquitto would switch to the user "mosquitto", who cannot read this directory.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'allow_anonymous false',
      `acl_file ${this.files.aclFile}`,
      // IoT Core keeps retained messages and persistent sessions (1 h by default) and has no QoS 2.
      'persistence true',
      `persistence_location ${join(this.dir, 'mosquitto-data')}/`,
      'autosave_interval 0',
      'persistent_client_expiration 1h',
      'set_tcp_nodelay true',
      // IoT Core refuses a publish whose payload is over 128 KB; mosquitto drops it (the ring's picture stays under).
      'message_size_limit 131072',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      `listener ${this.port} 127.0.0.1`,
      // A listener option: before the first listener it would open a default one on port 1883.
      'max_qos 1',
      `cafile ${this.files.caFile}`,
      `certfile ${this.files.certFile}`,
      `keyfile ${this.files.keyFile}`,
      'require_certificate true',
      'use_identity_as_username true',
      ''
    ].join('\n')
  }
}

/** Writes through a temporary file and a rename, so mosquitto never reads half a file. */
export async function writeAtomic (path: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, text, { mode })
  await rename(tmp, path)
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  server.close()
  await once(server, 'close')
  return port
}
