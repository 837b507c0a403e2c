import type { Logger } from '@doorbell/core'

/** At most `count` requests from one sender in `windowMs` (the device config's `commandsPerScreen`). */
export interface SenderLimit { count: number, windowMs: number }

/** 20 requests in 10 s: far above what a person taps, far below a flood. */
export const DEFAULT_SENDER_LIMIT: SenderLimit = { count: 20, windowMs: 10_000 }

/** Senders remembered; past it the oldest is forgotten (a flood of new names cannot grow the map). */
const MAX_SENDERS = 256
/**
 * All senders together may send this many times one sender's count in a window: names cost
 * nothing (a new libp2p peer id, any KVS client id), so a flood under ever new names meets this.
 */
export const ALL_SENDERS_FACTOR = 4

export interface SenderLimiter {
  readonly limit: SenderLimit
  /**
   * Counts one request from `sender`: true when it may go on. False past the limit: the caller
   * answers {@link SenderLimiter.busyMessage} and does nothing else (no signature check, no audit).
   * The refusal is logged once a window per sender, with how many were refused since the last line.
   */
  admit: (sender: string) => boolean
  /** What a refused sender is told. */
  readonly busyMessage: string
}

/**
 * The doorbell's one per-sender limit on requests outside a call that anyone who reaches a path
 * can send, each of which costs a signature check, a log line and an audit record: the direct
 * path's commands (sender: the libp2p peer) and the KVS channel's commands and dismissals (sender:
 * the KVS client id the viewer chose; any holder of the home's AWS keys may choose any), and
 * all senders together at most ALL_SENDERS_FACTOR times that. A flood would push real records out of the
 * doorbell's bounded audit outbox while the hub is down, as the hub's broker limits its clients.
 */
export function senderLimiter (o: { limit?: SenderLimit | undefined, log: Logger, what: string, now?: (() => number) | undefined }): SenderLimiter {
  const limit = o.limit ?? DEFAULT_SENDER_LIMIT
  const now = o.now ?? Date.now
  const recent = new Map<string, { times: number[], refused: number, loggedAt: number | null }>()
  const all: number[] = []
  let allRefused = 0
  let allLoggedAt = null as number | null
  const busyMessage = `too many ${o.what} from this screen: at most ${limit.count} in ${limit.windowMs / 1000} s`
  return {
    limit,
    busyMessage,
    admit (sender) {
      const t = now()
      // Every sender together first: a flood under new names is refused without a check of its own.
      while (all.length > 0 && t - all[0]! >= limit.windowMs) all.shift()
      if (all.length >= limit.count * ALL_SENDERS_FACTOR) {
        allRefused++
        if (allLoggedAt === null || t - allLoggedAt >= limit.windowMs) {
          o.log.warn(`refused ${o.what}: too many from all senders together`, { refused: allRefused, perWindow: limit.count * ALL_SENDERS_FACTOR, windowMs: limit.windowMs })
          allLoggedAt = t
          allRefused = 0
        }
        return false
      }
      const entry = recent.get(sender) ?? { times: [], refused: 0, loggedAt: null }
      entry.times = entry.times.filter((at) => t - at < limit.windowMs)
      // Re-inserted: the map's order is the senders' last use, the oldest forgotten first.
      recent.delete(sender)
      recent.set(sender, entry)
      while (recent.size > MAX_SENDERS) recent.delete(recent.keys().next().value!)
      if (entry.times.length < limit.count) {
        entry.times.push(t)
        all.push(t)
        return true
      }
      entry.refused++
      if (entry.loggedAt === null || t - entry.loggedAt >= limit.windowMs) {
        o.log.warn(`refused ${o.what}: too many from this sender`, { sender: sender.slice(0, 64), refused: entry.refused, perWindow: limit.count, windowMs: limit.windowMs })
        entry.loggedAt = t
        entry.refused = 0
      }
      return false
    }
  }
}
