/**
 * The one backoff every reconnecting machine uses (the KVS master, the cloud channel, the IoT
 * link, the console's feeds, the link between paths): the first wait, doubled on each failure in
 * a row, capped; optionally spread by a jitter so many clients that lost the same server do not
 * all come back at the same instant. Pure: the random source is a parameter.
 */
export interface BackoffPolicy {
  /** The wait before the first retry. */
  firstMs: number
  /** No wait is longer than this. */
  maxMs: number
  /** Spread each wait by ± this fraction (0.25: 75 %…125 %); 0 or absent: exact. */
  jitter?: number
}

/** Bad input to the backoff (a negative or fractional attempt, a policy that makes no sense). */
export class BackoffError extends RangeError {
  override readonly name = 'BackoffError'
}

/**
 * The wait before retry number `attempt` (0-based: the first retry after a failure is 0):
 * firstMs · 2^attempt, at most maxMs, then jittered. `random` returns [0, 1).
 */
export function backoffDelay (attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new BackoffError(`attempt must be a whole number >= 0, not ${attempt}`)
  const { firstMs, maxMs, jitter = 0 } = policy
  if (!(firstMs >= 0) || !(maxMs >= firstMs)) throw new BackoffError(`a backoff needs 0 <= firstMs <= maxMs, not ${firstMs} and ${maxMs}`)
  if (!(jitter >= 0 && jitter < 1)) throw new BackoffError(`jitter must be in [0, 1), not ${jitter}`)
  // 2^30 already passes any cap: a long outage must not overflow to Infinity.
  const exact = Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 30))
  return jitter === 0 ? exact : Math.round(exact * (1 - jitter + random() * 2 * jitter))
}

/** The delays each lifecycle had before they shared this function (tests assert them). */
export const BACKOFF = {
  /** The console's feeds: 1, 2, 4, 8, then every 10 s. */
  feed: { firstMs: 1000, maxMs: 10_000 },
  /** The KVS master's signaling connection: 1 s doubling to 30 s. */
  kvsMaster: { firstMs: 1000, maxMs: 30_000 },
  /** The device's IoT Core link: 1 s doubling to 30 s, ± 25 %. */
  iot: { firstMs: 1000, maxMs: 30_000, jitter: 0.25 },
  /** A viewer's rounds over the paths (link machine): 1 s doubling to 30 s. */
  link: { firstMs: 1000, maxMs: 30_000 }
} as const satisfies Record<string, BackoffPolicy>
