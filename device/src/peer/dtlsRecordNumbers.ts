/**
 * Every DTLS record the doorbell sends in a call must carry a number of its own (RFC 6347 §4.1:
 * epoch and sequence number; the receiver drops a number it has seen as a replay, §4.1.2.6).
 *
 * werift (0.25) numbers its handshake records on one counter across epochs 0 and 1: its Finished,
 * the first record of epoch 1, takes the next number (8 in a typical handshake as the server, 5-7
 * as the client), and only then is the counter set back to 0. The call's data then counts 1, 2, …
 * in epoch 1 again, so the data record that reaches the Finished's number repeats it. Chromium
 * (BoringSSL) and libdatachannel (OpenSSL) drop that record as a replay, silently: whatever SCTP
 * chunk it carried waits for werift's retransmission timer, at least 1 s (seen on loopback,
 * `tests/bench/diag/sctpTrace.ts`: the eighth data record of every call with Chromium; a reply
 * 1 s late, an open-door reply among them; docs/performance.md).
 *
 * This keeps werift's counter where the Finished left it: the data records go on from the
 * Finished's number (N+1, N+2, … in epoch 1), each one new, as the peers' replay windows need (they
 * accept any increasing numbers; none requires the epoch to start again at 0). Only the reset made
 * once epoch 1 has begun is kept from happening; the one werift makes in epoch 0 (after a
 * HelloVerifyRequest) stays.
 */

/** The parts of werift's DTLS this needs: its record counter and epoch (werift's `DtlsContext`). */
export interface RecordCounter { recordSequenceNumber: number, epoch: number }

const kept = new WeakSet<object>()

/**
 * Numbers on `context` stay unique: its counter is not set back to 0 once epoch 1 has begun.
 * Returns false, changing nothing, when the context is not werift's as known (its fields missing).
 */
export function keepRecordNumbers (context: unknown): boolean {
  if (typeof context !== 'object' || context === null) return false
  if (kept.has(context)) return true
  const c = context as Partial<RecordCounter>
  const own = Object.getOwnPropertyDescriptor(context, 'recordSequenceNumber')
  if (typeof c.recordSequenceNumber !== 'number' || typeof c.epoch !== 'number' || own === undefined || !('value' in own) || own.writable !== true) return false
  let value = c.recordSequenceNumber
  Object.defineProperty(context, 'recordSequenceNumber', {
    configurable: true,
    enumerable: own.enumerable ?? true,
    get: () => value,
    set: (next: number) => {
      // werift sets 0 right after numbering its Finished in epoch 1: carry on from there instead.
      if (next === 0 && (context as RecordCounter).epoch > 0) return
      value = next
    }
  })
  kept.add(context)
  return true
}

/**
 * The same for every context a werift DTLS socket holds: the one it has, and any it makes later
 * (werift makes a new one when a viewer starts the handshake again, `renegotiation`). False,
 * changing nothing, when the socket or its context is not shaped as werift's.
 */
export function keepSocketRecordNumbers (socket: unknown): boolean {
  if (typeof socket !== 'object' || socket === null) return false
  const own = Object.getOwnPropertyDescriptor(socket, 'dtls')
  if (own === undefined || !('value' in own) || own.writable !== true) return kept.has(socket)
  if (!keepRecordNumbers(own.value)) return false
  let context: unknown = own.value
  Object.defineProperty(socket, 'dtls', {
    configurable: true,
    enumerable: own.enumerable ?? true,
    get: () => context,
    set: (next: unknown) => { keepRecordNumbers(next); context = next }
  })
  kept.add(socket)
  return true
}

/** The DTLS transport of one werift peer as this needs it: its socket (`dtls`, with its context `dtls`) and its state. */
export interface DtlsTransportLike {
  dtls?: { dtls?: unknown } | undefined
  onStateChange: { subscribe: (f: (state: string) => void) => { unSubscribe: () => void } }
}

/**
 * For one call: once werift makes its DTLS socket (in the same turn as it says 'connecting', long
 * before the handshake's Finished), its record numbers are kept unique. `done` says whether that
 * worked (false: werift's shape was not the one known, and nothing was changed).
 */
export function uniqueRecordNumbers (transport: DtlsTransportLike, done: (applied: boolean) => void = () => {}): () => void {
  let stopped = false
  const sub = transport.onStateChange.subscribe((state) => {
    if (state !== 'connecting' || stopped) return
    stopped = true
    sub.unSubscribe()
    // werift makes the socket right after it says 'connecting': look once that turn's code has run.
    queueMicrotask(() => { done(keepSocketRecordNumbers(transport.dtls)) })
  })
  return () => {
    if (stopped) return
    stopped = true
    sub.unSubscribe()
  }
}
