import pg from 'pg'
import type { Logger } from '@doorbell/core'
import type { BridgeLease } from '../homeAssistant/bridgeTurns'

/** The lock's class (first key): "HA" bridge. The second key is the home's, so two homes on one database do not exclude each other. */
const BRIDGE_LOCK_CLASS = 0x4841

/**
 * Which hub of a cluster runs Home Assistant's bridge to the user's broker: the one holding a
 * PostgreSQL session advisory lock on a connection of its own. PostgreSQL releases it when that
 * connection ends, so a hub that dies (even SIGKILLed: its socket closes) frees it at once, and
 * the next standby's try takes it. The holder that loses its connection is told (`onLost`) and
 * stops bridging: it cannot know whether another hub took over meanwhile.
 */
export function pgBridgeLock (o: { url: string, timeoutMs: number, nodeId: string, homeId: string, log: Logger }): BridgeLease {
  let client: pg.Client | null = null
  let held = false
  const lost: Array<() => void> = []
  const drop = (c: pg.Client): void => {
    if (client !== c) return
    client = null
    if (held) {
      held = false
      for (const l of lost) l()
    }
  }
  return {
    async hold () {
      if (held) return true
      if (client === null) {
        const c = new pg.Client({ connectionString: o.url, connectionTimeoutMillis: o.timeoutMs, query_timeout: o.timeoutMs, application_name: `doorbell-hub ${o.nodeId} bridge` })
        c.on('error', (err) => { o.log.warn('the connection holding the bridge lock was lost', { error: err.message }); drop(c) })
        c.on('end', () => { drop(c) })
        try {
          await c.connect()
        } catch (err) {
          await c.end().catch(() => {})
          throw err
        }
        client = c
      }
      const c = client
      const got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [BRIDGE_LOCK_CLASS, o.homeId])).rows[0]?.ok === true
      // The connection may have ended while the answer was on its way: then nothing is held.
      held = got && client === c
      return held
    },
    onLost (listener) { lost.push(listener) },
    async release () {
      const c = client
      client = null
      held = false
      // Ending the session releases the lock.
      await c?.end().catch(() => {})
    }
  }
}
