import type { Logger } from '@doorbell/core'

/** One hub of a cluster at a time runs the bridge to the user's broker (hub/src/cluster/bridgeLock.ts). */
export interface BridgeLease {
  /** Takes the lease if it is free (true), or says this hub already holds it. */
  hold: () => Promise<boolean>
  /** A held lease was lost (its connection ended): stop bridging. */
  onLost: (listener: () => void) => void
  release: () => Promise<void>
}

/**
 * The rounds of a cluster's hub for the bridge: each `pollMs`, a standby tries to take the lease;
 * the holder runs `lead` (it re-reads the shared settings: a change saved through another hub).
 * A lost lease calls `lost` at once. A round that fails (PostgreSQL away) is said once in the log
 * and tried again next round.
 */
export function bridgeTurns (o: { lease: BridgeLease, pollMs: number, log: Logger, lead: () => Promise<void>, lost: () => void }): {
  /** The first round, then one each `pollMs` until `stop`. */
  start: () => Promise<void>
  leading: () => boolean
  stop: () => Promise<void>
} {
  let leading = false
  let timer: NodeJS.Timeout | null = null
  let round: Promise<void> = Promise.resolve()
  let troubled = false
  let stopped = false
  const turn = async (): Promise<void> => {
    try {
      if (!leading) {
        if (!await o.lease.hold()) return
        leading = true
        o.log.info('this hub runs the bridge to the user\'s broker (the others stand by)')
      }
      await o.lead()
      if (troubled) { troubled = false; o.log.info('the bridge\'s lease and settings can be read again') }
    } catch (err) {
      if (!troubled) { troubled = true; o.log.warn('could not take or use the bridge\'s lease', { error: (err as Error).message }) }
    }
  }
  const schedule = (): void => {
    if (stopped) return
    timer = setTimeout(() => { round = turn().finally(schedule) }, o.pollMs)
  }
  o.lease.onLost(() => {
    if (!leading) return
    leading = false
    o.log.warn('this hub lost the bridge\'s lease: it stops bridging, another hub takes over')
    o.lost()
  })
  return {
    async start () {
      stopped = false
      round = turn()
      await round
      schedule()
    },
    leading: () => leading,
    async stop () {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      timer = null
      await round
      leading = false
      await o.lease.release()
    }
  }
}
