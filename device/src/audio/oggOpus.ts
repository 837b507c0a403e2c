/**
 * The Opus packets of an Ogg Opus file (RFC 7845), in order, without the two header packets
 * (OpusHead, OpusTags): what a quick reply's cache holds, sent one 20 ms packet at a time.
 * Throws an Error naming the problem on anything that is not Ogg Opus.
 */
export function opusPackets (file: Uint8Array): Uint8Array[] {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength)
  const packets: Uint8Array[] = []
  let partial: Buffer[] = []
  let at = 0
  while (at < buf.length) {
    if (at + 27 > buf.length || buf.toString('latin1', at, at + 4) !== 'OggS') throw new Error(`not an Ogg page at byte ${at}`)
    const segments = buf[at + 26]!
    const table = at + 27
    if (table + segments > buf.length) throw new Error(`a truncated Ogg page at byte ${at}`)
    let body = table + segments
    for (let i = 0; i < segments; i++) {
      const len = buf[table + i]!
      if (body + len > buf.length) throw new Error(`a truncated Ogg page at byte ${at}`)
      partial.push(buf.subarray(body, body + len))
      body += len
      // A lacing value under 255 ends a packet; 255 continues it (in this page or the next).
      if (len < 255) { packets.push(Buffer.concat(partial)); partial = [] }
    }
    at = body
  }
  const head = packets[0]
  if (head === undefined || Buffer.from(head).toString('latin1', 0, 8) !== 'OpusHead') throw new Error('not Ogg Opus (no OpusHead)')
  return packets.slice(2)
}
