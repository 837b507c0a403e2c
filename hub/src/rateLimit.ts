/** One bucket per key: `tokens` as of `at`. */
interface Bucket { tokens: number, at: number }

export type RateDecision = { ok: true } | { ok: false, retryAfterSeconds: number }

/** Makes a named limiter: a plain one by default; a cluster's are shared between hubs (hub/src/cluster/sharedLimits.ts). */
export type LimiterFactory = (name: string, o: ConstructorParameters<typeof RateLimiter>[0]) => RateLimiter
export const localLimiter: LimiterFactory = (_name, o) => new RateLimiter(o)

/**
 * A token bucket per key (the caller picks the key: the remote address for pairing and sign-in).
 * A key may spend `burst` attempts at once, then gets one more every `refillMs`.
 *
 * Memory is bounded: past `maxKeys` the least recently used key is forgotten, which gives it a
 * full bucket again. That is the price of the bound; keep `maxKeys` well above the number of
 * clients a home has.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly burst: number
  private readonly refillMs: number
  private readonly now: () => number
  private readonly maxKeys: number

  constructor (o: { burst: number, refillMs: number, now?: () => number, maxKeys?: number }) {
    if (!Number.isInteger(o.burst) || o.burst < 1) throw new RangeError(`burst must be a whole number ≥ 1, not ${o.burst}`)
    if (!(o.refillMs > 0)) throw new RangeError(`refillMs must be > 0, not ${o.refillMs}`)
    const maxKeys = o.maxKeys ?? 10_000
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError(`maxKeys must be a whole number ≥ 1, not ${maxKeys}`)
    this.burst = o.burst
    this.refillMs = o.refillMs
    this.now = o.now ?? Date.now
    this.maxKeys = maxKeys
  }

  /** Spends one attempt for `key`, or says how long until the next one is allowed. */
  take (key: string): RateDecision {
    const now = this.now()
    const bucket = this.buckets.get(key)
    // A clock that steps back (NTP) must not take tokens away: elapsed time is never negative.
    const tokens = bucket === undefined
      ? this.burst
      : Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.at) / this.refillMs)
    const allowed = tokens >= 1
    // Delete then set: a Map iterates in insertion order, so the first key is the least recently used.
    this.buckets.delete(key)
    this.buckets.set(key, { tokens: allowed ? tokens - 1 : tokens, at: now })
    this.evict()
    if (allowed) return { ok: true }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) * this.refillMs / 1000)) }
  }

  /**
   * Whether `key` could spend an attempt now, without spending it: for limits that count only
   * failures (sign-in: a home's hundred screens reconnecting must not lock each other out).
   */
  allows (key: string): boolean {
    const bucket = this.buckets.get(key)
    return bucket === undefined || Math.min(this.burst, bucket.tokens + Math.max(0, this.now() - bucket.at) / this.refillMs) >= 1
  }

  /** How many keys are remembered (never more than `maxKeys`). */
  get size (): number {
    return this.buckets.size
  }

  private evict (): void {
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value as string
      this.buckets.delete(oldest)
    }
  }
}
