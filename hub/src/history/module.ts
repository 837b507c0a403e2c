import { join } from 'node:path'
import type { Aedes, Client } from 'aedes'
import { describeError, type HubConfig, type Logger, type Startable } from '@doorbell/core'
import type { Principal } from '../broker/gate'
import type { Trust } from '../trust/trust'
import type { HistoryBackend } from './backend'
import { historyIngest } from './ingest'
import { screensShown, type ShownScreen } from './shown'
import { HistoryThread } from './threadStore'
import { ClipStore, type ClipBackend } from './clipStore'
import { clipIngest } from './clipIngest'

export interface HistoryModule extends Startable {
  /** The rows and pictures; throws before start. */
  readonly store: HistoryBackend
  /** The rings' clips (clipStore.ts); throws before start. */
  readonly clips: ClipBackend
  /** Applies retention now (it also runs at start and every hour); settles when done (errors are logged). */
  prune: () => Promise<void>
}

const PRUNE_EVERY_MS = 3_600_000

/**
 * The event history (`dataDir/history`): fed from the broker's publishes (after the gate), kept
 * within the retention setting (`history.retentionDays`, `history.maxMegabytes`), read by the API's
 * `/api/events` routes (routes.ts). Starts after the broker and before the MQTT listener, so it
 * sees every device's first message.
 */
export function historyModule (d: { config: HubConfig, trust: () => Trust, broker: () => Aedes, log: Logger, now?: () => number, open?: () => HistoryBackend, openClips?: () => ClipBackend, principalOf?: (client: Client) => Principal | null, shownTo?: (deviceId: string) => Promise<ShownScreen[]> }): HistoryModule {
  let store: HistoryBackend | null = null
  let timer: NodeJS.Timeout | null = null
  let listener: ((...args: any[]) => void) | null = null
  let clips: ClipBackend | null = null
  let clipTaker: ReturnType<typeof clipIngest> | null = null
  const now = d.now ?? Date.now
  // The hourly run: a cluster's hubs share one history, so a hub skips it when another ran it within the hour.
  const prune = async (unlessWithinMs?: number): Promise<void> => {
    if (!store) return
    try {
      const s = store
      // The clips count in the size cap with the pictures, and go with their events (a cluster's
      // PostgreSQL store counts its clips itself: no scan of them here).
      const r = await s.prune({ now: now(), days: d.config.history.retentionDays, maxBytes: d.config.history.maxMegabytes * 1024 * 1024, ...(clips?.bytes ? { extraBytes: clips.bytes() } : {}), ...(unlessWithinMs !== undefined ? { unlessWithinMs } : {}) })
      const exists = (e: unknown): boolean => e !== null
      const deletedClips = await (clips?.sweep((id) => {
        const e = s.get(id, { memberId: '', devices: null })
        return e instanceof Promise ? e.then(exists) : exists(e)
      }) ?? 0)
      if (r.events > 0) d.log.info('history retention', { deletedEvents: r.events, deletedPictures: r.files, deletedClips })
    } catch (err) {
      d.log.error('history retention failed', { error: describeError(err) })
    }
  }
  return {
    name: 'history',
    get store (): HistoryBackend {
      if (store === null) throw new Error('the history has not started')
      return store
    },
    get clips (): ClipBackend {
      if (clips === null) throw new Error('the history has not started')
      return clips
    },
    prune: async () => { await prune() },
    async start () {
      // One hub: node:sqlite and files in its data folder, written on a thread of its own so that a
      // slow disk never holds the broker (threadStore.ts); a cluster's hub: PostgreSQL (`open`).
      const s = store = d.open ? d.open() : await HistoryThread.open(join(d.config.dataDir, 'history'), {
        onFailure: (err, restarted) => {
          if (restarted) d.log.warn('the history\'s thread stopped; started again, and what it had not written is sent again', { error: describeError(err) })
          else d.log.error('the history\'s thread keeps stopping: events are not recorded until the hub restarts', { error: describeError(err) })
        },
        onBacklog: (state, waiting) => {
          if (state === 'behind') d.log.warn('the history\'s disk is behind: events wait in memory to be written (none is dropped; check the disk)', { waiting })
          else d.log.info('the history caught up with its disk', { mostWaiting: waiting })
        }
      })
      const trust = d.trust()
      const deviceName = (deviceId: string): string => trust.members().find((m) => m.kind === 'device' && m.subject === deviceId)?.name ?? deviceId
      // Who was shown each ring: this hub's screens, or (a cluster: `shownTo`) every hub's.
      const shownTo = d.shownTo ?? (d.principalOf ? screensShown({ broker: d.broker, principalOf: d.principalOf, members: () => trust.members() }) : undefined)
      listener = historyIngest({ store: s, deviceName, log: d.log, ...(shownTo ? { shownTo } : {}) })
      d.broker().on('publish', listener)
      // One hub: files beside the pictures; a cluster's hub: PostgreSQL (`openClips`), read by every hub.
      const c = clips = d.openClips ? d.openClips() : new ClipStore(join(d.config.dataDir, 'history'))
      clipTaker = clipIngest({ clips: c, eventOf: (deviceId, ringId) => s.ringEventId(deviceId, ringId), log: d.log })
      d.broker().on('publish', clipTaker.listener)
      await prune(PRUNE_EVERY_MS / 2)
      timer = setInterval(() => { void prune(PRUNE_EVERY_MS / 2) }, PRUNE_EVERY_MS)
      timer.unref()
    },
    async stop () {
      if (timer) clearInterval(timer)
      if (listener) d.broker().off('publish', listener)
      if (clipTaker) { d.broker().off('publish', clipTaker.listener); clipTaker.stop() }
      // Every write sent is made before the database closes (the thread's queue is answered first),
      // and before the clip store closes (a clip's lookup answered meanwhile keeps its clip).
      await store?.close()
      store = null
      await clips?.close?.()
      clips = null
    }
  }
}
