/// <reference path="./types.d.ts" />
import { Readable } from 'node:stream'
import Packet from 'aedes-packet'
import { QlobberTrue } from 'qlobber'
import QlobberSub, { type SubEntry } from 'qlobber/aedes/qlobber-sub.js'
import { BrokerStore, fromStored, toStored, type Row } from './store'

/**
 * Aedes's persistence (the async interface of aedes-persistence 11, which aedes 1 calls) on
 * `node:sqlite`, embedded in the hub's data folder: retained messages, the subscriptions of
 * persistent sessions (`clean: false`) and the messages queued for them survive a restart.
 *
 * The broker reads from memory (a topic trie for the subscriptions, as the in-memory persistence
 * does), loaded from disk at `setup`; every change is applied in memory at once and written
 * through to disk (`BrokerStore`: one transaction for what a turn of the event loop queued), and
 * the promise the broker waits on settles when it is committed, except a queued message's (see
 * `outgoingEnqueueCombi`: its commit is what `committed()` waits for). QoS 2 exchanges in flight
 * and wills stay in memory only: the home's clients use QoS 0 and 1, and a will from before a
 * restart would fire late, after its client had already come back.
 */

type Pkt = Record<string, unknown> & { messageId?: number, brokerId?: string, brokerCounter?: number }
/** One queued message. `gone`: acknowledged or dropped since (a queue stream taken earlier skips it). */
interface Queued { seq: number, packet: Pkt, gone?: true }
interface ClientRef { id: string }
interface SubOptions { qos: number, rh?: number, rap?: boolean, nl?: boolean, subscriptionIdentifier?: number }
interface BrokerRef { id: string }

const TOPICS = { wildcard_one: '+', wildcard_some: '#', separator: '/' }
const newPacket = (p: object): Pkt => new (Packet as unknown as new (o: object) => Pkt)(p)

export interface SqlitePersistenceOptions {
  /** The folder for broker.db (the hub's data folder). */
  dir: string
  /**
   * Queued messages kept per client: past it the oldest is dropped, so a screen that never comes
   * back cannot fill the disk (a home's screen gets a few rings a day; this is weeks of them).
   */
  maxQueuedPerClient?: number
  /** A write that was not waited for (a retained message, a queued copy) failed. */
  onError?: (err: Error) => void
}

export class SqlitePersistence {
  private readonly dir: string
  private readonly maxQueued: number
  private readonly onError: (err: Error) => void
  private store: BrokerStore | null = null
  private brokerRef: BrokerRef | null = null
  private readonly retained = new Map<string, Pkt>()
  private readonly subscriptions = new Map<string, Map<string, SubOptions>>()
  private readonly trie = new QlobberSub(TOPICS)
  private readonly outgoing = new Map<string, Queued[]>()
  private nextSeq = 1
  private readonly incoming = new Map<string, Map<number, Pkt>>()
  private readonly wills = new Map<string, Pkt>()

  constructor (o: SqlitePersistenceOptions) {
    const maxQueued = o.maxQueuedPerClient ?? 1000
    if (!Number.isInteger(maxQueued) || maxQueued < 1) throw new RangeError(`maxQueuedPerClient must be a whole number ≥ 1, not ${maxQueued}`)
    this.dir = o.dir
    this.maxQueued = maxQueued
    this.onError = o.onError ?? (() => {})
  }

  /** The broker this persistence serves (aedes-persistence's abstract tests read it). */
  get broker (): BrokerRef | null { return this.brokerRef }

  private get disk (): BrokerStore {
    if (this.store === null) throw new Error('the broker persistence is not set up (or was destroyed)')
    return this.store
  }

  async setup (broker: BrokerRef): Promise<void> {
    this.brokerRef = broker
    const store = new BrokerStore(this.dir)
    this.store = store
    for (const row of store.q.allRetained!.all() as Row[]) this.retained.set(String(row.topic), fromStored(row) as Pkt)
    for (const row of store.q.allSubscriptions!.all() as Row[]) {
      this.remember(String(row.client_id), { topic: String(row.topic), ...(JSON.parse(String(row.options)) as SubOptions) })
    }
    for (const row of store.q.allOutgoing!.all() as Row[]) {
      const stored = fromStored(row)
      // Rebuilt as aedes queued it: a Packet, with the packet id it was last sent under.
      const packet = stored.cmd === 'publish' ? Object.assign(newPacket(stored), stored.messageId === undefined ? {} : { messageId: stored.messageId }) : stored as Pkt
      this.queueOf(String(row.client_id)).push({ seq: Number(row.seq), packet })
      this.nextSeq = Math.max(this.nextSeq, Number(row.seq) + 1)
    }
  }

  // ---------------------------------------------------------------- retained

  /**
   * Resolves at once, with the write queued for the next commit: aedes stores a retained message
   * before it forwards it, and screens drop a message older than one they already have from this
   * broker (aedes's dedupe by broker counter), so waiting here for the disk would let a later
   * message of the same device overtake it and the newer state be dropped. A process killed in
   * the microseconds before that commit loses the last retained state, which the device sends
   * again when it reconnects.
   */
  async storeRetained (pkt: Pkt): Promise<void> {
    const packet = { ...pkt }
    const topic = packet.topic as string
    const payload = packet.payload as Uint8Array | string | undefined
    // An empty retained payload clears the topic (MQTT-3.3.1-10).
    const cleared = payload === undefined || payload.length === 0
    if (cleared) this.retained.delete(topic)
    else this.retained.set(topic, packet)
    const { meta, payload: bytes } = toStored(packet)
    this.disk.write(() => {
      if (cleared) this.disk.q.delRetained!.run(topic)
      else this.disk.q.putRetained!.run(topic, meta, bytes)
    }).catch((err: Error) => { this.onError(err) })
  }

  createRetainedStreamCombi (patterns: string[]): Readable {
    const retained = this.retained
    return Readable.from((function * () {
      for (const pattern of patterns) {
        const matcher = new QlobberTrue(TOPICS).add(pattern)
        for (const [topic, packet] of retained) if (matcher.test(topic)) yield packet
      }
    })())
  }

  createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  // ---------------------------------------------------------------- subscriptions

  /** Adds one subscription to memory: the per-client map, and the trie when QoS > 0 (QoS 0 is restored on reconnect but never queued for). */
  private remember (clientId: string, sub: SubOptions & { topic: string }): void {
    let stored = this.subscriptions.get(clientId)
    if (stored === undefined) { stored = new Map(); this.subscriptions.set(clientId, stored) }
    const before = stored.get(sub.topic)
    const options: SubOptions = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl }
    if (sub.subscriptionIdentifier !== undefined) options.subscriptionIdentifier = sub.subscriptionIdentifier
    if (sub.qos > 0) this.trie.add(sub.topic, { clientId, topic: sub.topic, qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl } as SubEntry)
    else if ((before?.qos ?? 0) > 0) this.trie.remove(sub.topic, { clientId, topic: sub.topic })
    stored.set(sub.topic, options)
  }

  async addSubscriptions (client: ClientRef, subs: Array<SubOptions & { topic: string }>): Promise<void> {
    for (const sub of subs) this.remember(client.id, sub)
    const rows = subs.map((s) => [s.topic, JSON.stringify(this.subscriptions.get(client.id)!.get(s.topic))] as const)
    await this.disk.write(() => { for (const [topic, options] of rows) this.disk.q.putSubscription!.run(client.id, topic, options) })
  }

  async removeSubscriptions (client: ClientRef, topics: string[]): Promise<void> {
    const stored = this.subscriptions.get(client.id)
    if (stored === undefined) return
    for (const topic of topics) {
      const sub = stored.get(topic)
      if (sub === undefined) continue
      if (sub.qos > 0) this.trie.remove(topic, { clientId: client.id, topic })
      stored.delete(topic)
    }
    if (stored.size === 0) this.subscriptions.delete(client.id)
    await this.disk.write(() => { for (const topic of topics) this.disk.q.delSubscription!.run(client.id, topic) })
  }

  async subscriptionsByClient (client: ClientRef): Promise<Array<SubOptions & { topic: string }>> {
    return [...(this.subscriptions.get(client.id) ?? new Map<string, SubOptions>())].map(([topic, options]) => ({ topic, ...options }))
  }

  async countOffline (): Promise<{ subsCount: number, clientsCount: number }> {
    return { subsCount: this.trie.subscriptionsCount, clientsCount: this.subscriptions.size }
  }

  async subscriptionsByTopic (topic: string): Promise<SubEntry[]> {
    return this.trie.match(topic)
  }

  async cleanSubscriptions (client: ClientRef): Promise<void> {
    const stored = this.subscriptions.get(client.id)
    if (stored === undefined) return
    for (const [topic, sub] of stored) if (sub.qos > 0) this.trie.remove(topic, { clientId: client.id, topic })
    this.subscriptions.delete(client.id)
    await this.disk.write(() => { this.disk.q.delSubscriptionsOf!.run(client.id) })
  }

  getClientList (topic: string): Readable {
    const ids = [...this.subscriptions].filter(([, subs]) => subs.has(topic)).map(([id]) => id)
    return Readable.from(ids)
  }

  // ---------------------------------------------------------------- queued messages (QoS > 0)

  private queueOf (clientId: string): Queued[] {
    let queue = this.outgoing.get(clientId)
    if (queue === undefined) { queue = []; this.outgoing.set(clientId, queue) }
    return queue
  }

  /** Writes (or rewrites) one queued message. */
  private save (clientId: string, entry: Queued): () => void {
    const { meta, payload } = toStored(entry.packet)
    return () => { this.disk.q.putOutgoing!.run(entry.seq, clientId, meta, payload) }
  }

  /**
   * Queues a message for persistent sessions: in memory at once (what aedes reads next, its
   * delivery's packet id and the screen's PUBACK, finds it there), on disk at the next commit. It
   * resolves without waiting for that commit, so aedes forwards the message to the screens online
   * at once: the disk is not on a ring's way to them. What must wait for the disk does: the
   * publisher's PUBACK is held until `committed()` (ackAfterStore.ts), so a hub killed before the
   * commit acknowledged nothing, and the doorbell sends the ring again (a screen online may then get
   * it twice, which QoS 1 allows; screens know a ring by its id).
   */
  async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: Pkt): Promise<void> {
    if (subs.length === 0) return
    const ops: Array<() => void> = []
    // One packet, serialized once, however many screens it is queued for.
    const { meta, payload } = toStored(newPacket(packet))
    for (const sub of subs) {
      const queue = this.queueOf(sub.clientId)
      const entry = { seq: this.nextSeq++, packet: newPacket(packet) }
      queue.push(entry)
      ops.push(() => { this.disk.q.putOutgoing!.run(entry.seq, sub.clientId, meta, payload) })
      while (queue.length > this.maxQueued) {
        const dropped = queue.shift()!
        dropped.gone = true
        ops.push(() => { this.disk.q.delOutgoing!.run(dropped.seq) })
      }
    }
    // A failed commit is reported to whoever waits on `committed()` (the publisher's PUBACK), and logged.
    this.disk.write(() => { for (const op of ops) op() }).catch((err: Error) => { this.onError(err) })
  }

  async outgoingEnqueue (sub: { clientId: string }, packet: Pkt): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet)
  }

  /**
   * Before a queued message is (re)sent: it now has a packet id. Found by the broker's own mark
   * (broker id and counter); a packet from another broker, or a PUBREL, replaces the entry that
   * has its packet id. A new packet id alone is kept in memory only: after a restart aedes sends
   * the whole queue again under new ids, so writing it would put a commit on every delivery for nothing.
   *
   * A message with the broker's mark and no entry is sent all the same, never refused: when a
   * persistent session resumes, aedes subscribes the client again before it streams the stored
   * queue, so a message queued in between goes out live and from the stream, and the second of
   * the two may find it acknowledged already (refusing it closed the screen's connection in the
   * middle of its queue: `no such packet`). The stream skips what the client has acknowledged
   * (`outgoingStream`); a copy sent twice before its acknowledgement is a duplicate, which QoS 1
   * allows (screens know a ring by its id).
   */
  async outgoingUpdate (client: ClientRef, packet: Pkt): Promise<void> {
    await this.outgoingUpdateNow(client, packet)
  }

  /**
   * `outgoingUpdate`, done in memory before it returns: undefined when nothing is left to do (the
   * queued copy has its packet id, or the message was not queued), the disk write's promise when
   * an entry was replaced. Throws `no such packet` as `outgoingUpdate` rejects. The hub's deliveries
   * (`deliverNow.ts`) write a ring in the same turn when this returns undefined.
   */
  outgoingUpdateNow (client: ClientRef, packet: Pkt): Promise<void> | undefined {
    const queue = this.outgoing.get(client.id) ?? []
    for (const entry of queue) {
      if (entry.packet.brokerId === packet.brokerId) {
        if (entry.packet.brokerCounter !== packet.brokerCounter) continue
        entry.packet.messageId = packet.messageId
        return undefined
      }
      if (entry.packet.messageId === packet.messageId) {
        entry.packet = packet
        return this.disk.write(this.save(client.id, entry))
      }
    }
    if (packet.cmd === 'publish' && packet.brokerId != null) return undefined
    throw new Error('no such packet')
  }

  /**
   * Delivered (PUBACK): the queued message with this packet id is gone; resolves to it (undefined
   * if none). Aedes also calls this with a packet that has no packet id yet, when it decides not
   * to forward a message to a persistent client (`authorizeForward` said no, or a duplicate):
   * that one is found by the broker's own mark (broker id and counter), never by the missing id,
   * which would match the first queued message not yet sent (a ring queued for this screen,
   * silently lost).
   */
  async outgoingClearMessageId (client: ClientRef, packet: { messageId?: number, brokerId?: string, brokerCounter?: number }): Promise<Pkt | undefined> {
    const queue = this.outgoing.get(client.id)
    if (queue === undefined) return undefined
    const i = packet.messageId === undefined
      ? (packet.brokerId == null ? -1 : queue.findIndex((e) => e.packet.brokerId === packet.brokerId && e.packet.brokerCounter === packet.brokerCounter))
      : queue.findIndex((e) => e.packet.messageId === packet.messageId)
    if (i < 0) return undefined
    const [entry] = queue.splice(i, 1)
    entry!.gone = true
    if (queue.length === 0) this.outgoing.delete(client.id)
    await this.disk.write(() => { this.disk.q.delOutgoing!.run(entry!.seq) })
    return entry!.packet
  }

  /**
   * Forgets whole sessions: their subscriptions and queued messages, in memory and on disk (a
   * removed member's screens: what was queued for them is never delivered). Resolves to the
   * client ids dropped.
   */
  async dropSessions (which: (clientId: string) => boolean): Promise<string[]> {
    const ids = [...new Set([...this.subscriptions.keys(), ...this.outgoing.keys()])].filter(which)
    for (const id of ids) {
      for (const [topic, sub] of this.subscriptions.get(id) ?? []) if (sub.qos > 0) this.trie.remove(topic, { clientId: id, topic })
      this.subscriptions.delete(id)
      for (const entry of this.outgoing.get(id) ?? []) entry.gone = true
      this.outgoing.delete(id)
    }
    if (ids.length > 0) {
      await this.disk.write(() => {
        for (const id of ids) {
          this.disk.q.delSubscriptionsOf!.run(id)
          this.disk.q.delOutgoingOf!.run(id)
        }
      })
    }
    return ids
  }

  /**
   * The queue as it is now, read one message at a time: one acknowledged or dropped meanwhile is
   * skipped (a live message queued while the session resumed, which aedes also sends as it comes:
   * see `outgoingUpdate`).
   */
  outgoingStream (client: ClientRef): Readable {
    const entries = [...(this.outgoing.get(client.id) ?? [])]
    return Readable.from((function * () {
      for (const e of entries) if (e.gone !== true) yield e.packet
    })())
  }

  // ---------------------------------------------------------------- QoS 2 in flight, wills (memory only)

  async incomingStorePacket (client: ClientRef, packet: Pkt): Promise<void> {
    let store = this.incoming.get(client.id)
    if (store === undefined) { store = new Map(); this.incoming.set(client.id, store) }
    const copy = newPacket(packet)
    copy.messageId = packet.messageId
    store.set(packet.messageId!, copy)
  }

  async incomingGetPacket (client: ClientRef, packet: Pkt): Promise<Pkt> {
    const found = this.incoming.get(client.id)?.get(packet.messageId!)
    if (found === undefined) throw new Error('no such packet')
    return found
  }

  async incomingDelPacket (client: ClientRef, packet: Pkt): Promise<void> {
    if (this.incoming.get(client.id)?.delete(packet.messageId!) !== true) throw new Error('no such packet')
  }

  async cleanIncoming (client: ClientRef): Promise<void> {
    this.incoming.delete(client.id)
  }

  async putWill (client: ClientRef, packet: Pkt): Promise<void> {
    packet.brokerId = this.brokerRef?.id
    packet.clientId = client.id
    this.wills.set(client.id, packet)
  }

  async getWill (client: ClientRef): Promise<Pkt | undefined> {
    return this.wills.get(client.id)
  }

  async delWill (client: ClientRef): Promise<Pkt | undefined> {
    const will = this.wills.get(client.id)
    this.wills.delete(client.id)
    return will
  }

  streamWill (brokers: Record<string, unknown> = {}): Readable {
    return Readable.from([...this.wills.values()].filter((w) => brokers[w.brokerId as string] === undefined))
  }

  /** Settles once everything written so far is on disk; rejects if that commit failed (or the store is gone). */
  async committed (): Promise<void> {
    await this.disk.committed()
  }

  /** Commits what is queued and closes the file. */
  async destroy (): Promise<void> {
    // Closing commits what is queued (its writes still reach `this.disk`), then the store is gone.
    this.store?.close()
    this.store = null
  }
}
