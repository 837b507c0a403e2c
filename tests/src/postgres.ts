import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { freePort } from './hubProcess'

/**
 * Debian's PostgreSQL 15, started by a test on 127.0.0.1 on a free port, its cluster in a
 * temporary folder (initdb, trust authentication on loopback, no fsync), stopped with pg_ctl. As
 * root it runs as the `postgres` user (PostgreSQL refuses root), through runuser.
 */
export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'
const asRoot = process.getuid?.() === 0

export class TestPostgres {
  private constructor (readonly dir: string, readonly port: number) {}

  /** The superuser's URL for `database` (default `postgres`). */
  url (database = 'postgres'): string { return `postgres://postgres@127.0.0.1:${this.port}/${database}` }

  static async start (): Promise<TestPostgres> {
    // Fail, never skip: a machine without PostgreSQL must say what to install.
    if (!existsSync(join(PG_BIN, 'initdb'))) throw new Error(`${PG_BIN}/initdb is missing: install Debian's postgresql (scripts/setup.sh --test, or apt-get install postgresql)`)
    const dir = mkdtempSync(join(tmpdir(), 'test-pg-'))
    // mkdtemp makes it 0700 for root: the postgres user must get in.
    chmodSync(dir, 0o777)
    const db = new TestPostgres(dir, await freePort())
    const init = db.run('initdb', ['-D', db.data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}${init.stdout}`)
    await db.resume()
    return db
  }

  private get data (): string { return join(this.dir, 'data') }

  private run (tool: string, args: string[]): ReturnType<typeof spawnSync> {
    const command = asRoot ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, tool), ...args]] as const : [join(PG_BIN, tool), args] as const
    return spawnSync(command[0], [...command[1]], { encoding: 'utf8', timeout: 30_000 })
  }

  /** Starts (again) on the same port; resolves when it accepts connections. */
  async resume (): Promise<void> {
    const r = this.run('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'log'), '-w', '-o', `-c listen_addresses=127.0.0.1 -p ${this.port} -c unix_socket_directories=${this.dir} -c fsync=off`, 'start'])
    if (r.status !== 0) throw new Error(`PostgreSQL did not start: ${String(r.stderr)}${String(r.stdout)}\n${this.log()}`)
  }

  /** Stops it (`immediate`: as a crash would; the default waits for clients to be told). */
  async stop (mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!existsSync(join(this.data, 'postmaster.pid'))) return
    const r = this.run('pg_ctl', ['-D', this.data, '-m', mode, '-w', 'stop'])
    if (r.status !== 0) throw new Error(`pg_ctl stop failed: ${String(r.stderr)}`)
  }

  /** The postmaster's process id (the first line of its pid file), while it runs. */
  pid (): number {
    const pid = Number(readFileSync(join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0])
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${this.data}/postmaster.pid`)
    return pid
  }

  log (): string {
    return existsSync(join(this.dir, 'log')) ? readFileSync(join(this.dir, 'log'), 'utf8') : ''
  }

  /** A fresh, empty database (CREATE DATABASE cannot run inside a transaction: a statement of its own). */
  async createDatabase (name: string): Promise<string> {
    await this.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`)
    return this.url(name)
  }

  /** One statement as the superuser, then the connection is closed. */
  async query (sql: string, values: unknown[] = [], database = 'postgres'): Promise<pg.QueryResult> {
    const client = new pg.Client({ connectionString: this.url(database) })
    await client.connect()
    try {
      return await client.query(sql, values)
    } finally {
      await client.end()
    }
  }

  async destroy (): Promise<void> {
    await this.stop('immediate')
    rmSync(this.dir, { recursive: true, force: true })
  }
}
