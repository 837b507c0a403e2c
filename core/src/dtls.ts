/**
 * The device answers as the DTLS server (`a=setup:passive`), so the viewer's browser starts the
 * handshake the moment its own ICE check succeeds, on the pair it chose. As client, werift
 * started it from its side of ICE, and the browser dropped or deferred that first flight until
 * its retransmission timer: ~100 ms more between "ICE connected" and the first frame. Every
 * answering side uses it: the Node doorbell (werift) and the browser camera node.
 */
export function asDtlsServer<T extends { type: string, sdp: string }> (answer: T): T {
  return { ...answer, sdp: answer.sdp.replace(/^a=setup:active\r?$/gm, (line) => line.replace('active', 'passive')) }
}
