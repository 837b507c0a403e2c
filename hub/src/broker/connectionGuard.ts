import { Duplex } from 'node:stream'
import type { Logger } from '@doorbell/core'
import { parseProxyHeader } from './proxyProtocol'

/**
 * Stands between each MQTT connection (TCP, TLS or WebSocket) and Aedes, which parses a packet
 * only once it has all of it and has no size limit of its own: a stranger who declares a 200 MB
 * CONNECT and sends it slowly would be buffered in full. The guard reads each packet's fixed
 * header (MQTT 3.1.1 §2.2: type, then the Remaining Length in up to four bytes, §2.2.3) as the
 * bytes pass and drops the connection as soon as a declared length is over the limit, before the
 * body arrives: small until the client has signed in, `maxPacketBytes` after. It also bounds how
 * many connections may be waiting to sign in, and reads the PROXY protocol header of a trusted
 * proxy on this machine (the client's real address, for the sign-in limit).
 */

export interface GuardLimits {
  /** Any packet before sign-in (the CONNECT: client id, user name, token, will). */
  maxConnectBytes: number
  /** Any packet after sign-in. */
  maxPacketBytes: number
  /** Connections open but not signed in yet; past it a new one is closed at once. */
  maxPending: number
  /** Read a PROXY header (v1 or v2) at the start of connections from loopback. */
  proxyProtocol: boolean
}

/** §2.2.3: the Remaining Length is at most four bytes. */
const MAX_LENGTH_BYTES = 4
const CONNECT = 1
const PUBLISH = 3
/** How long a client's QoS 1 PUBLISH may take to be stored before its connection is closed. */
const STORE_TIMEOUT_MS = 10_000

/**
 * Follows the packet boundaries of one byte stream. `feed` returns why the connection must go, or
 * null. Pure (no I/O), so the rules are tested on their own.
 */
export class PacketSizeLimit {
  private packets = 0
  /** Body bytes of the current packet still to pass. */
  private body = 0
  private inHeader = false
  private length = 0
  private lengthBytes = 0
  /** The current packet's first byte (type and flags). */
  private first = 0

  /** `onQos1Publish`: told of each QoS 1 PUBLISH as its fixed header passes. */
  constructor (private readonly limit: () => number, private readonly onQos1Publish: () => void = () => {}) {}

  feed (chunk: Buffer): string | null {
    let i = 0
    while (i < chunk.length) {
      if (this.body > 0) {
        const skip = Math.min(this.body, chunk.length - i)
        this.body -= skip
        i += skip
        continue
      }
      const byte = chunk[i++]!
      if (!this.inHeader) {
        // MQTT-3.1.0-1: the first packet a client sends must be CONNECT.
        if (this.packets === 0 && byte >> 4 !== CONNECT) return 'the first packet is not a CONNECT'
        this.first = byte
        this.inHeader = true
        this.length = 0
        this.lengthBytes = 0
        continue
      }
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes
      this.lengthBytes++
      if ((byte & 0x80) !== 0) {
        if (this.lengthBytes === MAX_LENGTH_BYTES) return 'malformed Remaining Length (more than four bytes)'
        continue
      }
      this.inHeader = false
      this.packets++
      const max = this.limit()
      if (this.length > max) return `a packet of ${this.length} bytes (at most ${max} here)`
      if (this.first >> 4 === PUBLISH && ((this.first >> 1) & 3) === 1) this.onQos1Publish()
      this.body = this.length
    }
    return null
  }
}

/** The connection Aedes is handed: the client's bytes pass through the size limit; what Aedes writes goes straight out. */
export class GuardedConnection extends Duplex {
  /** The client's address (from the PROXY header when a trusted proxy sent one). */
  remoteAddress: string
  signedIn = false
  private readonly limit: PacketSizeLimit
  /** Bytes held while a PROXY header may still be arriving; null once decided. */
  private preamble: Buffer | null
  /**
   * QoS 1 PUBLISHes from the client that the broker has not stored yet (`stored`): what Aedes
   * writes meanwhile, their PUBACKs first, waits, so nothing is acknowledged before it is on disk
   * (ackAfterStore.ts).
   */
  private storing = 0
  /**
   * What waits. Taken at once (its write is reported done), so the hold never looks like
   * backpressure to Aedes, whose PUBACK write must complete before it stores the message.
   */
  private held: Buffer[] = []
  /** A store that never reports back must not hold the connection for ever: it is closed (the client sends again). */
  private storeTimer: ReturnType<typeof setTimeout> | null = null
  /** (Re)starts the store clock: `STORE_TIMEOUT_MS` from now. */
  private readonly armStoreTimer: () => void
  private readonly onRefused: (reason: string) => void

  constructor (private readonly inner: Duplex, o: { limits: GuardLimits, remoteAddress: string, trustedPeer: boolean, readProxyHeader: boolean, onRefused: (reason: string) => void }) {
    super({ allowHalfOpen: false })
    this.remoteAddress = o.remoteAddress
    this.limit = new PacketSizeLimit(() => this.signedIn ? o.limits.maxPacketBytes : o.limits.maxConnectBytes, () => {
      if (this.storing++ === 0) this.armStoreTimer()
    })
    this.preamble = o.readProxyHeader ? Buffer.alloc(0) : null
    this.onRefused = o.onRefused
    this.armStoreTimer = () => {
      if (this.storeTimer !== null) clearTimeout(this.storeTimer)
      this.storeTimer = setTimeout(() => { this.refuse(`a message not stored within ${STORE_TIMEOUT_MS / 1000} s`) }, STORE_TIMEOUT_MS)
      this.storeTimer.unref()
    }
    inner.on('data', (chunk: Buffer) => {
      if (this.destroyed) return
      let bytes = chunk
      if (this.preamble !== null) {
        const held = Buffer.concat([this.preamble, chunk])
        const header = parseProxyHeader(held)
        if (header.kind === 'need-more') {
          // A PROXY header is short: anything longer that is still undecided is not one.
          if (held.length > 1024) { this.refuse('an unfinished PROXY header'); return }
          this.preamble = held
          return
        }
        this.preamble = null
        if (header.kind === 'bad') { this.refuse(header.reason); return }
        if (header.kind === 'header') {
          // Only a proxy on this machine may say where a client comes from.
          if (!o.trustedPeer) { this.refuse(`a PROXY header from ${this.remoteAddress}, which is not a trusted proxy`); return }
          if (header.address !== null) this.remoteAddress = header.address
          bytes = held.subarray(header.length)
        } else {
          bytes = held
        }
        if (bytes.length === 0) return
      }
      const reason = this.limit.feed(bytes)
      if (reason !== null) { this.refuse(reason); return }
      if (!this.push(bytes)) inner.pause()
    })
    inner.on('end', () => { this.push(null) })
    inner.on('close', () => { this.destroy() })
    inner.on('error', (err) => { this.destroy(err) })
  }

  /** Closes the connection, saying why (logged with the client's id). */
  refuse (reason: string): void {
    this.onRefused(reason)
    this.destroy()
  }

  override _read (): void {
    this.inner.resume()
  }

  /** The client's QoS 1 PUBLISHes not stored yet (what is written to it waits while there are any). */
  get awaitingStore (): number {
    return this.storing
  }

  /**
   * The broker has stored one of the client's QoS 1 PUBLISHes (or refused it: it will never be):
   * once none is left, what waited goes out.
   */
  stored (): void {
    if (this.storing > 0) this.storing--
    if (this.storing === 0) { this.release(); return }
    // Still storing others (a doorbell's backlog after an outage): progress restarts the clock, so
    // only a store that stalls for the whole timeout closes the connection, not a long upload.
    this.armStoreTimer()
  }

  private release (): void {
    if (this.storeTimer !== null) clearTimeout(this.storeTimer)
    this.storeTimer = null
    if (this.held.length === 0) return
    const chunks = this.held
    this.held = []
    if (this.inner.destroyed) return
    this.inner.cork()
    for (const chunk of chunks) this.inner.write(chunk)
    this.inner.uncork()
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.storing > 0) { this.held.push(chunk); callback(); return }
    if (this.inner.destroyed) { callback(new Error('connection closed')); return }
    this.inner.write(chunk, callback)
  }

  /**
   * aedes (mqtt-packet) writes a packet in several small pieces under cork: passed on one by one,
   * each would be its own syscall on a TCP_NODELAY socket (about six per PUBLISH, for every
   * subscriber of a ring). Corked below too, they leave as one write.
   */
  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    if (this.storing > 0) { for (const c of chunks) this.held.push(c.chunk); callback(); return }
    if (this.inner.destroyed) { callback(new Error('connection closed')); return }
    const last = chunks.length - 1
    this.inner.cork()
    for (let i = 0; i < last; i++) this.inner.write(chunks[i]!.chunk)
    this.inner.write(chunks[last]!.chunk, callback)
    this.inner.uncork()
  }

  override _final (callback: (err?: Error | null) => void): void {
    this.inner.end()
    callback()
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    // What waited for a store is not sent.
    this.storing = 0
    this.held = []
    if (this.storeTimer !== null) clearTimeout(this.storeTimer)
    this.inner.destroy()
    callback(err)
  }
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])

export interface ConnectionGuard {
  /**
   * Wraps a new connection, or returns null when too many are waiting to sign in (the connection
   * is then closed). `tcp`: a raw TCP connection, where a proxy's PROXY header may come first (a
   * WebSocket's address comes with its upgrade request instead).
   */
  admit: (inner: Duplex, remoteAddress: string, tcp: boolean) => GuardedConnection | null
  /** Called when Aedes has accepted the client's CONNECT (its `client` event): the larger limit applies from now on. */
  signedIn: (conn: unknown) => void
  /** Called when the broker has stored (or refused) a QoS 1 message that came in on `conn` (ackAfterStore.ts). */
  stored: (conn: unknown) => void
  /** Called when storing a QoS 1 message that came in on `conn` failed: it is closed unacknowledged, and the client sends again. */
  notStored: (conn: unknown, err: Error) => void
  /** Connections open and not signed in now. */
  readonly pending: number
}

export function connectionGuard (limits: GuardLimits, log: Logger): ConnectionGuard {
  for (const [name, value] of Object.entries({ maxConnectBytes: limits.maxConnectBytes, maxPacketBytes: limits.maxPacketBytes, maxPending: limits.maxPending })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a whole number ≥ 1, not ${value}`)
  }
  let pending = 0
  const waiting = new WeakSet<GuardedConnection>()
  const settle = (conn: GuardedConnection): void => {
    if (waiting.delete(conn)) pending--
  }
  return {
    admit (inner, remoteAddress, tcp) {
      if (pending >= limits.maxPending) {
        log.warn('refused a connection: too many waiting to sign in', { address: remoteAddress, pending })
        inner.destroy()
        return null
      }
      const conn = new GuardedConnection(inner, {
        limits,
        remoteAddress,
        trustedPeer: LOOPBACK.has(remoteAddress),
        readProxyHeader: tcp && limits.proxyProtocol,
        // The client id once aedes knows it (it sets `conn.client`), so a member's oversize publish is traced to it.
        onRefused: (reason) => { log.warn('dropped an MQTT connection', { client: (conn as { client?: { id?: string | null } }).client?.id ?? '(not signed in)', address: conn.remoteAddress, reason }) }
      })
      pending++
      waiting.add(conn)
      conn.once('close', () => { settle(conn) })
      return conn
    },
    signedIn (c) {
      if (!(c instanceof GuardedConnection)) return
      c.signedIn = true
      settle(c)
    },
    stored (c) {
      if (c instanceof GuardedConnection) c.stored()
    },
    notStored (c, err) {
      if (c instanceof GuardedConnection) c.refuse(`a message not stored (${err.message})`)
    },
    get pending () { return pending }
  }
}
