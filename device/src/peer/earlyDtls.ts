import type { RTCDtlsTransport } from 'werift'

/** RFC 7983: a datagram whose first byte is 20-63 is DTLS (not STUN, not SRTP). */
export const isDtlsRecord = (data: Buffer): boolean => data.length >= 13 && data[0]! >= 20 && data[0]! <= 63

/** More than a handshake's first flight is never worth keeping (a viewer resends after its timer anyway). */
export const MAX_EARLY_RECORDS = 8

/** The parts of werift this needs: the ICE connection's datagrams and the DTLS transport's state. */
export interface EarlyDtlsPeer {
  ice: { onData: { subscribe: (f: (data: Buffer) => void) => { unSubscribe: () => void }, execute: (data: Buffer) => void } }
  dtls: Pick<RTCDtlsTransport, 'state' | 'role'> & { onStateChange: { subscribe: (f: (state: string) => void) => { unSubscribe: () => void } } }
}

/** Records handed over late: the set-up log says so instead of counting them as the viewer's resends. */
const handedOver = new WeakSet<Buffer>()
export const wasHandedOver = (data: Buffer): boolean => handedOver.has(data)

/**
 * werift makes its DTLS server only when its own ICE agent says connected. As the controlled
 * side that is a moment after the viewer's ICE is connected (werift waits for its own check's
 * response), while a browser sends its ClientHello the moment its first check succeeds. A hello
 * that comes in between reaches no listener and is dropped, and the browser resends it only
 * after its retransmission timer (at least 50 ms, more when its ICE round trip was slow, as on a
 * busy machine). This keeps the DTLS records that arrive before the server listens and hands
 * them to it as soon as it does, so that hello is answered at once.
 */
export function keepEarlyDtls ({ ice, dtls }: EarlyDtlsPeer): () => void {
  const early: Buffer[] = []
  let stopped = false
  const data = ice.onData.subscribe((buf) => {
    if (dtls.state === 'new' && early.length < MAX_EARLY_RECORDS && isDtlsRecord(buf) && !handedOver.has(buf)) early.push(Buffer.from(buf))
  })
  const stop = (): void => {
    if (stopped) return
    stopped = true
    data.unSubscribe()
    state.unSubscribe()
  }
  const state = dtls.onStateChange.subscribe((s) => {
    if (s === 'new') return
    stop()
    // Only a server waits for the viewer's first flight (as the client werift starts it itself).
    if (s !== 'connecting' || dtls.role !== 'server' || early.length === 0) return
    // werift makes the server right after it says 'connecting', in the same turn: hand the records over after it.
    queueMicrotask(() => {
      for (const record of early.splice(0)) {
        handedOver.add(record)
        ice.onData.execute(record)
      }
    })
  })
  return stop
}
