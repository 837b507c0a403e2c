import { join } from 'node:path'
import type { Aedes, Client } from 'aedes'
import { describeError, type HubConfig, type Logger, type Startable } from '@doorbell/core'
import type { Principal } from '../broker/gate'
import type { Trust } from '../trust/trust'
import { historyIngest } from './ingest'
import { membersShown } from './shown'
import { HistoryStore } from './store'

export interface HistoryModule extends Startable {
  /** The rows and pictures; throws before start. */
  readonly store: HistoryStore
  /** Applies retention now (it also runs at start and every hour). */
  prune: () => void
}

const PRUNE_EVERY_MS = 3_600_000

/**
 * The event history (`dataDir/history`): fed from the broker's publishes (after the gate), kept
 * within the retention setting (`history.retentionDays`, `history.maxMegabytes`), read by the API's
 * `/api/events` routes (routes.ts). Starts after the broker and before the MQTT listener, so it
 * sees every device's first message.
 */
export function historyModule (d: { config: HubConfig, trust: () => Trust, broker: () => Aedes, log: Logger, now?: () => number, principalOf?: (client: Client) => Principal | null }): HistoryModule {
  let store: HistoryStore | null = null
  let timer: NodeJS.Timeout | null = null
  let listener: ((...args: any[]) => void) | null = null
  const now = d.now ?? Date.now
  const prune = (): void => {
    if (!store) return
    try {
      const r = store.prune({ now: now(), days: d.config.history.retentionDays, maxBytes: d.config.history.maxMegabytes * 1024 * 1024 })
      if (r.events > 0) d.log.info('history retention', { deletedEvents: r.events, deletedPictures: r.files })
    } catch (err) {
      d.log.error('history retention failed', { error: describeError(err) })
    }
  }
  return {
    name: 'history',
    get store (): HistoryStore {
      if (store === null) throw new Error('the history has not started')
      return store
    },
    prune,
    async start () {
      const s = store = new HistoryStore(join(d.config.dataDir, 'history'))
      const trust = d.trust()
      const deviceName = (deviceId: string): string => trust.members().find((m) => m.kind === 'device' && m.subject === deviceId)?.name ?? deviceId
      const shownTo = d.principalOf ? membersShown({ broker: d.broker, principalOf: d.principalOf, members: () => trust.members() }) : undefined
      listener = historyIngest({ store: s, deviceName, log: d.log, ...(shownTo ? { shownTo } : {}) })
      d.broker().on('publish', listener)
      prune()
      timer = setInterval(prune, PRUNE_EVERY_MS)
      timer.unref()
    },
    async stop () {
      if (timer) clearInterval(timer)
      if (listener) d.broker().off('publish', listener)
      store?.close()
      store = null
    }
  }
}
