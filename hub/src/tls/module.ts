import { hostname } from 'node:os'
import { join } from 'node:path'
import type { HubConfig, Logger, Startable } from '@doorbell/core'
import { ensureLocalTls, lanAddresses, type LocalTls } from './localCa'

export interface TlsModule extends Startable {
  /** The local CA and server certificate (tls 'auto'); null otherwise. Read after start. */
  readonly local: LocalTls | null
  /** The key and certificate the listeners serve: the local CA's, the given files', or null (tls 'off'). */
  readonly keyPair: { key: string, cert: string } | null
}

/** The hub's TLS: with `tls: 'auto'` the local CA in `dataDir/tls` (made on first start), given files, or none. */
export function tlsModule (config: HubConfig, log: Logger): TlsModule {
  let local: LocalTls | null = null
  return {
    name: 'tls',
    get local () { return local },
    get keyPair () {
      if (local) return { key: local.key, cert: local.cert }
      return typeof config.tls === 'object' ? config.tls : null
    },
    async start () {
      if (config.tls !== 'auto') return
      local = await ensureLocalTls({ dir: join(config.dataDir, 'tls'), hostnames: [hostname(), `${hostname()}.local`, ...config.tlsNames], ips: lanAddresses(), log: log.child('tls') })
    },
    async stop () {}
  }
}
