/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2) that nginx's stream module sends
 * first on each connection with `proxy_protocol on;`: the client's real address, so the sign-in
 * limit counts a stranger behind the proxy as the stranger, not as 127.0.0.1. Pure: bytes in,
 * a verdict out.
 */
export type ProxyHeader =
  /** Not enough bytes yet to decide. */
  | { kind: 'need-more' }
  /** The connection does not start with a PROXY header. */
  | { kind: 'none' }
  /** A header of `length` bytes; `address` null for LOCAL/UNKNOWN (the proxy's own health check). */
  | { kind: 'header', length: number, address: string | null }
  | { kind: 'bad', reason: string }

const V1_PREFIX = Buffer.from('PROXY ')
/** §2.1: a v1 line is at most 107 bytes, CRLF included. */
const V1_MAX = 107
/** §2.2: the v2 signature. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
/** Addresses and TLVs; nginx sends far less. Larger is refused rather than buffered. */
const V2_MAX_BODY = 536

const startsLike = (buf: Buffer, prefix: Buffer): boolean => buf.subarray(0, prefix.length).equals(prefix.subarray(0, Math.min(buf.length, prefix.length)))

export function parseProxyHeader (buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { kind: 'need-more' }
  if (startsLike(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { kind: 'need-more' } : parseV1(buf)
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? { kind: 'need-more' } : parseV2(buf)
  return { kind: 'none' }
}

function parseV1 (buf: Buffer): ProxyHeader {
  const end = buf.subarray(0, V1_MAX).indexOf('\r\n')
  if (end < 0) return buf.length >= V1_MAX ? { kind: 'bad', reason: 'PROXY v1 line longer than 107 bytes' } : { kind: 'need-more' }
  const words = buf.subarray(0, end).toString('latin1').split(' ')
  if (words[1] === 'UNKNOWN') return { kind: 'header', length: end + 2, address: null }
  if (words.length !== 6 || (words[1] !== 'TCP4' && words[1] !== 'TCP6')) return { kind: 'bad', reason: 'PROXY v1 line is not "PROXY TCP4|TCP6 src dst sport dport"' }
  const source = words[2]!
  const ok = words[1] === 'TCP4' ? /^\d{1,3}(\.\d{1,3}){3}$/.test(source) && source.split('.').every((o) => Number(o) <= 255) : /^[0-9a-fA-F:.]+$/.test(source) && source.includes(':')
  if (!ok || !/^\d{1,5}$/.test(words[4]!) || Number(words[4]) > 65535) return { kind: 'bad', reason: 'PROXY v1 source address or port is not valid' }
  return { kind: 'header', length: end + 2, address: source }
}

function parseV2 (buf: Buffer): ProxyHeader {
  if (buf.length < 16) return { kind: 'need-more' }
  const versionCommand = buf[12]!
  const family = buf[13]!
  const bodyLength = buf.readUInt16BE(14)
  if (versionCommand >> 4 !== 2) return { kind: 'bad', reason: 'PROXY v2 header with another version' }
  if (bodyLength > V2_MAX_BODY) return { kind: 'bad', reason: `PROXY v2 header of ${bodyLength} bytes (at most ${V2_MAX_BODY})` }
  if (buf.length < 16 + bodyLength) return { kind: 'need-more' }
  const length = 16 + bodyLength
  const command = versionCommand & 0x0f
  if (command === 0) return { kind: 'header', length, address: null } // LOCAL
  if (command !== 1) return { kind: 'bad', reason: 'PROXY v2 command is neither LOCAL nor PROXY' }
  const body = buf.subarray(16, length)
  if (family === 0x11 && body.length >= 12) return { kind: 'header', length, address: [...body.subarray(0, 4)].join('.') }
  if (family === 0x21 && body.length >= 36) {
    const groups = Array.from({ length: 8 }, (_, i) => body.readUInt16BE(i * 2).toString(16))
    return { kind: 'header', length, address: groups.join(':') }
  }
  if (family === 0x00) return { kind: 'header', length, address: null } // UNSPEC
  return { kind: 'bad', reason: 'PROXY v2 header with an address family other than TCP over IPv4 or IPv6' }
}
