import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './hubProcess'

/**
 * Debian's Redis 7, started by a test on 127.0.0.1 on a free port, in a temporary folder, stopped
 * by the PID it wrote. By default no persistence (a restart forgets everything, the worst case);
 * `appendonly`: the append-only file in that folder, as docs/cluster.md tells an operator to run it.
 */
export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'
const START_MS = 10_000

export class TestRedis {
  private constructor (readonly dir: string, readonly port: number, readonly appendonly: boolean) {}

  get url (): string { return `redis://127.0.0.1:${this.port}` }
  private get pidFile (): string { return join(this.dir, 'redis.pid') }

  static async start (o: { port?: number, appendonly?: boolean } = {}): Promise<TestRedis> {
    // Fail, never skip: a machine without Redis must say what to install.
    if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: install Debian's redis-server (scripts/setup.sh --test, or apt-get install redis-server)`)
    const redis = new TestRedis(mkdtempSync(join(tmpdir(), 'test-redis-')), o.port ?? await freePort(), o.appendonly === true)
    await redis.run()
    return redis
  }

  /** Starts it (again) on the same port. */
  async run (): Promise<void> {
    const r = spawnSync(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', this.appendonly ? 'yes' : 'no',
      '--daemonize', 'yes', '--pidfile', this.pidFile, '--dir', this.dir, '--logfile', join(this.dir, 'redis.log')], { encoding: 'utf8', timeout: START_MS })
    if (r.status !== 0) throw new Error(`redis-server did not start: ${r.stderr}${r.stdout}`)
    const deadline = Date.now() + START_MS
    while (Date.now() < deadline) {
      if (await ping(this.port)) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`redis-server did not answer on ${this.port} within ${START_MS} ms:\n${this.log()}`)
  }

  /** One command through Debian's redis-cli (redis-tools, which redis-server depends on); its reply as text. */
  command (...args: string[]): string {
    const r = spawnSync('redis-cli', ['-p', String(this.port), '--raw', ...args], { encoding: 'utf8', timeout: 10_000 })
    if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`)
    return r.stdout.trim()
  }

  log (): string {
    return existsSync(join(this.dir, 'redis.log')) ? readFileSync(join(this.dir, 'redis.log'), 'utf8') : ''
  }

  /** Ends it by its PID (SIGKILL: a crash; SIGTERM otherwise) and waits until the port is closed. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!existsSync(this.pidFile)) return
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim())
    try { process.kill(pid, signal) } catch { return }
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && alive(pid)) await new Promise((resolve) => setTimeout(resolve, 20))
    rmSync(this.pidFile, { force: true })
  }

  async destroy (): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function ping (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.setTimeout(1000, () => { socket.destroy(); resolve(false) })
    socket.once('connect', () => { socket.write('PING\r\n') })
    socket.once('data', (d) => { socket.destroy(); resolve(d.toString().startsWith('+PONG')) })
    socket.once('error', () => { resolve(false) })
  })
}
