import type { Logger } from '@doorbell/core'
import { Redis } from 'ioredis'
import { z } from 'zod'
import { RateLimiter, type LimiterFactory, type RateDecision } from '../rateLimit'

const Spent = z.strictObject({ from: z.string(), name: z.string().max(64), key: z.string().max(300) })

/** A limiter whose attempts are also spent on the same limiter of every other hub. */
class SharedRateLimiter extends RateLimiter {
  constructor (o: ConstructorParameters<typeof RateLimiter>[0], private readonly spent: (key: string) => void) {
    super(o)
  }

  override take (key: string): RateDecision {
    const decision = super.take(key)
    this.spent(key)
    return decision
  }

  /** Another hub spent an attempt for `key`. */
  applyRemote (key: string): void {
    super.take(key)
  }
}

/**
 * The sign-in and pairing limits of a cluster (hub/src/rateLimit.ts's buckets): each hub keeps its
 * buckets in memory, as one hub does, and each attempt spent on one hub is told to the others over
 * Redis pub/sub, which spend it too. Whichever hub an attacker reaches, the allowance is the
 * cluster's, not N times one hub's; the decision stays synchronous (the hooks that ask are). The
 * buckets agree within the pub/sub delay (milliseconds on a LAN); while Redis is away, each hub
 * limits on its own, as a single hub does.
 */
export class SharedLimits {
  private readonly pub: Redis
  private readonly sub: Redis
  private readonly channel: string
  private readonly limiters = new Map<string, Set<SharedRateLimiter>>()

  constructor (private readonly o: { redisUrl: string, homeId: string, nodeId: string, log: Logger }) {
    this.channel = `doorbell:${o.homeId}:limits`
    // An attempt told late is worth less than a sign-in held back: fail fast while Redis is away.
    this.pub = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
    this.sub = new Redis(o.redisUrl, { lazyConnect: true })
    for (const r of [this.pub, this.sub]) r.on('error', () => { /* ioredis retries; each hub limits on its own meanwhile */ })
  }

  async start (): Promise<void> {
    await Promise.all([this.pub.connect(), this.sub.connect()])
    this.sub.on('message', (_channel: string, text: string) => { this.receive(text) })
    await this.sub.subscribe(this.channel)
  }

  /** Makes the named limiter (`pairing`, `api-sign-in`, `mqtt-sign-in`...): the same name on every hub is one limit. */
  readonly limiter: LimiterFactory = (name, options) => {
    const limiter = new SharedRateLimiter(options, (key) => {
      this.pub.publish(this.channel, JSON.stringify({ from: this.o.nodeId, name, key })).catch(() => { /* Redis away: this hub's own limit still holds */ })
    })
    const set = this.limiters.get(name) ?? new Set()
    set.add(limiter)
    this.limiters.set(name, set)
    return limiter
  }

  private receive (text: string): void {
    let spent: z.infer<typeof Spent>
    try {
      spent = Spent.parse(JSON.parse(text))
    } catch (err) {
      this.o.log.warn('ignored a malformed limit notice', { error: (err as Error).message })
      return
    }
    if (spent.from === this.o.nodeId) return
    for (const limiter of this.limiters.get(spent.name) ?? []) limiter.applyRemote(spent.key)
  }

  async stop (): Promise<void> {
    this.limiters.clear()
    this.sub.disconnect()
    this.pub.disconnect()
  }
}
