import type { Socket } from 'node:dgram'
import { isIP } from 'node:net'
import type { RTCPeerConnection } from 'werift'

/**
 * Node's `socket.send(data, port, address)` on an unconnected UDP socket first resolves
 * `address` through the socket's lookup (`dns.lookup`), which answers an IP address on
 * `process.nextTick`. A tick queued from inside a promise chain runs only once the whole
 * microtask queue is empty, and werift sends from promise chains (SCTP → DTLS → ICE, all
 * `await`s). So every datagram the doorbell sends while it handles a command (the SCTP
 * acknowledgement, "unlocking", "unlocked": the report "Door open" is shown from) stayed in the
 * process until the command's whole chain had run (the guard, the lock, the audit record, the
 * ack, the log lines), and left in one burst at the end: measured on loopback, "unlocked" 0.2-2.5 ms
 * after werift handed it over, the acknowledgement 3-5 ms (docs/performance.md).
 *
 * A peer's sockets only ever send to the IP addresses ICE found, so the answer is known: this
 * gives it at once, and the datagram leaves inside `send`. Names (a TURN server given by name)
 * still go through the socket's own lookup.
 *
 * Node has no public way to set a bound socket's lookup (only `createSocket({ lookup })`, and
 * werift makes its sockets itself): this replaces the lookup on the socket's handle, which Node 24
 * keeps under the socket's `state symbol`. If a later Node keeps it elsewhere, nothing is changed
 * and the socket sends as before (`promptSend` returns how many sockets it changed; tested).
 */
type Lookup = (address: string, callback: (err: Error | null, ip?: string, family?: number) => void) => void

const changed = new WeakSet<Socket>()

/** The handle's lookup of one UDP socket, where Node keeps it (null: not found). */
function handleOf (socket: Socket): { lookup: Lookup } | null {
  const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol')
  const handle = symbol === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { lookup?: unknown } } | undefined>)[symbol]?.handle
  return handle !== undefined && typeof handle.lookup === 'function' ? handle as { lookup: Lookup } : null
}

/** One UDP socket sends to an IP address at once; true if it does now (or already did). */
export function promptSocket (socket: Socket): boolean {
  if (changed.has(socket)) return true
  const handle = handleOf(socket)
  if (handle === null) return false
  const lookup = handle.lookup
  handle.lookup = (address, callback) => {
    const family = isIP(address)
    if (family === 0) { lookup(address, callback); return }
    callback(null, address, family)
  }
  changed.add(socket)
  return true
}

/** werift's UDP sockets of one peer connection (ICE's host transports, and a TURN relay's socket to its server): those made so far. */
export function peerSockets (pc: RTCPeerConnection): Socket[] {
  type Held = { transport?: { socket?: unknown } }
  const sockets: Socket[] = []
  for (const transport of pc.iceTransports) {
    const protocols = (transport.connection as unknown as { protocols?: Array<Held & { turn?: Held }> } | undefined)?.protocols ?? []
    for (const protocol of protocols) {
      // A host candidate's protocol holds its transport; a relay's (StunOverTurnProtocol) holds the TURN client, which holds it.
      for (const socket of [protocol.transport?.socket, protocol.turn?.transport?.socket]) {
        // A UDP socket only (a TURN over TCP's is a stream: it writes at once already).
        if (socket !== null && typeof socket === 'object' && typeof (socket as Socket).send === 'function') sockets.push(socket as Socket)
      }
    }
  }
  return sockets
}

/**
 * Every UDP socket the peer has made so far sends at once; how many do. Call again after new ones.
 * Never throws: werift's or Node's insides found elsewhere (a later version) change nothing.
 */
export function promptSend (pc: RTCPeerConnection): { sockets: number, prompt: number } {
  try {
    const sockets = peerSockets(pc)
    return { sockets: sockets.length, prompt: sockets.filter(promptSocket).length }
  } catch {
    return { sockets: 0, prompt: 0 }
  }
}
