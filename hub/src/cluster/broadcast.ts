import type { AuditRecord, Logger, Member } from '@doorbell/core'
import { Member as MemberSchema } from '@doorbell/core'
import { Redis } from 'ioredis'
import { z } from 'zod'
import type { Trust } from '../trust/trust'

type Listener = (member: Member) => void

const Notice = z.strictObject({ from: z.string(), event: z.enum(['revoked', 'paired']), member: MemberSchema })

/**
 * Trust events between the hubs of a cluster, over Redis pub/sub: a member removed through one
 * hub is announced on every hub (its broker drops that member's connections at once, and its
 * device directory is read again), as is a device paired through another hub. The notice carries
 * the public member, so a hub acts on it even while PostgreSQL is down.
 */
export class TrustBroadcast {
  private readonly pub: Redis
  private readonly sub: Redis
  private readonly channel: string
  private readonly listeners = { revoked: new Set<Listener>(), paired: new Set<Listener>() }

  constructor (private readonly o: { redisUrl: string, homeId: string, nodeId: string, log: Logger }) {
    this.channel = `doorbell:${o.homeId}:trust`
    // Commands wait while Redis is away (and go out when it is back) rather than fail at once.
    this.pub = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null })
    this.sub = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null })
    for (const r of [this.pub, this.sub]) r.on('error', () => { /* ioredis retries; the broker's connections log it */ })
  }

  async start (): Promise<void> {
    await Promise.all([this.pub.connect(), this.sub.connect()])
    this.sub.on('message', (_channel: string, text: string) => { this.receive(text) })
    // ioredis subscribes again by itself after a reconnection.
    await this.sub.subscribe(this.channel)
  }

  /**
   * `trust` as the rest of the hub sees it: its onRevoked and onPaired also hear the other hubs.
   * Local events are published for the others here, once per hub.
   */
  wrap (trust: Trust): Trust {
    trust.onRevoked((member) => { this.send('revoked', member) })
    trust.onPaired((member) => { this.send('paired', member) })
    const also = (event: 'revoked' | 'paired', local: (l: Listener) => () => void) => (listener: Listener): () => void => {
      const off = local(listener)
      this.listeners[event].add(listener)
      return () => { off(); this.listeners[event].delete(listener) }
    }
    const onRevoked = also('revoked', (l) => trust.onRevoked(l))
    const onPaired = also('paired', (l) => trust.onPaired(l))
    const log = this.o.log
    // While PostgreSQL is down, calls go on: the list of members (device names, zones) is the last
    // one read, and a device's report is logged here instead of stored. Sign-in, pairing,
    // invitations and removals still fail (closed): they read the store itself, never this list.
    let lastMembers: readonly Member[] = []
    const members = (): readonly Member[] => {
      try {
        lastMembers = trust.members()
      } catch (err) {
        if ((err as Error).name !== 'ClusterStoreError') throw err
        log.warn('PostgreSQL is unavailable: using the members last read', { error: (err as Error).message })
      }
      return lastMembers
    }
    const unstored = <A extends unknown[]>(what: string, f: (...a: A) => AuditRecord | null) => (...a: A): AuditRecord | null => {
      try {
        return f(...a)
      } catch (err) {
        if ((err as Error).name !== 'ClusterStoreError') throw err
        log.error(`PostgreSQL is unavailable: ${what} not stored in the audit log`, { report: JSON.stringify(a[0]), error: (err as Error).message })
        return null
      }
    }
    const recordDoorAttempt = unstored('a door attempt', (a: Parameters<Trust['recordDoorAttempt']>[0]) => trust.recordDoorAttempt(a))
    const recordAnswered = unstored('an answered call', (a: Parameters<Trust['recordAnswered']>[0]) => trust.recordAnswered(a))
    return new Proxy(trust, {
      get (target, prop) {
        if (prop === 'onRevoked') return onRevoked
        if (prop === 'onPaired') return onPaired
        if (prop === 'members') return members
        if (prop === 'recordDoorAttempt') return recordDoorAttempt
        if (prop === 'recordAnswered') return recordAnswered
        const value = Reflect.get(target, prop, target) as unknown
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      }
    })
  }

  private send (event: 'revoked' | 'paired', member: Member): void {
    this.pub.publish(this.channel, JSON.stringify({ from: this.o.nodeId, event, member })).catch((err: Error) => {
      this.o.log.error('could not tell the other hubs', { event, member: member.id, error: err.message })
    })
  }

  private receive (text: string): void {
    let notice: z.infer<typeof Notice>
    try {
      notice = Notice.parse(JSON.parse(text))
    } catch (err) {
      this.o.log.warn('ignored a malformed cluster notice', { error: (err as Error).message })
      return
    }
    // This hub's own notice: its listeners heard it already.
    if (notice.from === this.o.nodeId) return
    this.o.log.info('cluster notice', { event: notice.event, member: notice.member.id, from: notice.from })
    for (const listener of this.listeners[notice.event]) {
      try {
        listener(notice.member)
      } catch (err) {
        this.o.log.error('a cluster notice listener failed', { error: (err as Error).message })
      }
    }
  }

  async stop (): Promise<void> {
    this.listeners.revoked.clear()
    this.listeners.paired.clear()
    this.sub.disconnect()
    this.pub.disconnect()
  }
}
