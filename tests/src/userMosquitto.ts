import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pki } from './cloud/pki'
import { freePort } from './hubProcess'
import { endChild } from './child'

const MOSQUITTO = '/usr/sbin/mosquitto'
const START_MS = 10_000
const STOP_MS = 5_000

/** A user of the broker: its name and password, and the topics its ACL lets it read and write. */
export interface BrokerUser { name: string, password: string, topics: string[] }

/**
 * The Mosquitto a Home Assistant user already runs, as such a user sets it up: a TLS listener with
 * a certificate from their own CA, password sign-in, an ACL per user, no anonymous clients, no
 * persistence (a restart forgets retained messages, the worst case for the hub's bridge). Started
 * by the test on 127.0.0.1, on a port found free; files in a temporary folder.
 */
export class UserMosquitto {
  private proc: ChildProcess | null = null
  private readonly lines: string[] = []
  private readonly listeners: Array<(line: string) => void> = []

  private constructor (readonly dir: string, readonly port: number, readonly caFile: string) {}

  get url (): string { return `mqtts://127.0.0.1:${this.port}` }

  static async start (users: BrokerUser[]): Promise<UserMosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'user-mosquitto-'))
    const pki = await Pki.create()
    const server = await pki.issueServer(['127.0.0.1', 'localhost'])
    const file = (name: string, text: string): string => { const path = join(dir, name); writeFileSync(path, text, { mode: 0o600 }); return path }
    const caFile = file('ca.pem', pki.serverCaPem)
    const passwords = file('passwd', '')
    for (const u of users) {
      const r = spawnSync('mosquitto_passwd', ['-b', passwords, u.name, u.password], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr}`)
    }
    const acl = file('acl', users.map((u) => [`user ${u.name}`, ...u.topics.map((t) => `topic readwrite ${t}`), ''].join('\n')).join('\n'))
    const port = await freePort()
    file('mosquitto.conf', [
      'per_listener_settings false',
      // Started as root, mosquitto would switch to the user "mosquitto", who cannot read this folder.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'allow_anonymous false',
      `password_file ${passwords}`,
      `acl_file ${acl}`,
      'persistence false',
      'log_dest stderr',
      'log_type all',
      'connection_messages true',
      `listener ${port} 127.0.0.1`,
      `cafile ${caFile}`,
      `certfile ${file('server.pem', server.certPem)}`,
      `keyfile ${file('server.key', server.keyPem)}`,
      ''
    ].join('\n'))
    const broker = new UserMosquitto(dir, port, caFile)
    await broker.run()
    return broker
  }

  /** Hears every line it logs from now on (log() keeps only the last ones). */
  onLine (listener: (line: string) => void): void { this.listeners.push(listener) }

  /** What it logged (the last lines), for assertions and diagnostics. */
  log (): string[] { return [...this.lines] }

  private async run (): Promise<void> {
    const proc = spawn(MOSQUITTO, ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`mosquitto did not start: ${this.lines.slice(-5).join(' | ')}`)) }, START_MS)
      const onData = (chunk: Buffer): void => {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
          const text = line.replace(/^\d+: /, '')
          this.lines.push(text)
          for (const l of this.listeners) l(text)
          if (this.lines.length > 500) this.lines.shift()
          if (/running$/.test(line)) { clearTimeout(timer); resolve() }
        }
      }
      proc.stderr!.on('data', onData)
      proc.stdout!.on('data', onData)
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`mosquitto exited (${code}): ${this.lines.slice(-5).join(' | ')}`)) })
    })
  }

  /** Stops it (SIGTERM), as a broker restarted by its owner. */
  async stop (): Promise<void> {
    const proc = this.proc
    this.proc = null
    if (proc !== null) await endChild(proc, STOP_MS)
  }

  /** Starts it again on the same port, with nothing retained. */
  async restart (): Promise<void> {
    await this.stop()
    await this.run()
  }

  async remove (): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
