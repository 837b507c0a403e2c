import type { RTCDtlsTransport, RTCPeerConnection } from 'werift'
import { isDtlsRecord, wasHandedOver } from './earlyDtls'

/** One step of a session's set-up, as the doorbell saw it (the benches read these log lines). */
export type SetupStep = (step: string, detail?: Record<string, string | number | boolean>) => void

/**
 * A DTLS ClientHello record (RFC 6347 4.2.1) and whether it carries a cookie: the first hello
 * has none, the answer to our HelloVerifyRequest has one. A second hello without a cookie is the
 * viewer's retransmission: its first was lost. Null for any other record.
 */
export function clientHello (data: Buffer): { cookie: boolean } | null {
  // Record header 13 bytes, handshake header 12: a handshake (22) record, message type 1.
  if (data.length < 61 || data[0] !== 22 || data[13] !== 1) return null
  // client_version (2) and random (32) start the body at 25; then session_id and cookie, each length-prefixed.
  const sessionIdLength = data[59]!
  const cookieAt = 60 + sessionIdLength
  if (data.length <= cookieAt) return null
  return { cookie: data[cookieAt]! > 0 }
}

/**
 * Where a session's set-up time goes on the doorbell's side, step by step, until video is out:
 * its ICE connected, each DTLS ClientHello in (with whether the DTLS server was listening yet),
 * the server listening, DTLS connected. A few log lines per session, nothing per packet after it.
 * Call after setRemoteDescription (which makes the transports).
 */
export function observeSetup (pc: RTCPeerConnection, dtls: RTCDtlsTransport | undefined, step: SetupStep): () => void {
  const offs: Array<() => void> = []
  const ice = pc.iceTransports[0]?.connection
  let hellos = 0
  const done = (): void => { for (const off of offs.splice(0)) off() }
  offs.push(pc.iceConnectionStateChange.subscribe((state) => {
    if (state === 'connected') step('ice connected')
  }).unSubscribe)
  if (ice && dtls) {
    offs.push(ice.onData.subscribe((data) => {
      const hello = isDtlsRecord(data) ? clientHello(data) : null
      if (!hello) return
      // A hello kept while the server was not listening (earlyDtls.ts), handed to it now: not the viewer's.
      if (wasHandedOver(data)) step('dtls hello handed over')
      else step('dtls hello in', { n: ++hellos, cookie: hello.cookie, listening: dtls.state !== 'new' })
    }).unSubscribe)
  }
  if (dtls) {
    offs.push(dtls.onStateChange.subscribe((state) => {
      if (state === 'connecting') step('dtls listening')
      if (state === 'connected') { step('dtls connected'); done() }
      if (state === 'failed' || state === 'closed') done()
    }).unSubscribe)
  }
  return done
}
