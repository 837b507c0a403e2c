// Preloaded into a doorbell process for a diagnostic run (`--import`): when each DTLS application-data
// datagram (a data channel's SCTP packets: first byte 23; RTP and STUN are left out) was read from or
// handed to a UDP socket, on the system clock (`performance.timeOrigin + performance.now()`). Kept in
// memory and written to stderr in one go 100 ms after the last one, so the writing does not sit on
// the path it measures. One line: `udp-stamp in|out <epoch ms> <bytes>`. Not part of any shipped program.
import dgram from 'node:dgram'

const stamps = []
let timer = null
const now = () => performance.timeOrigin + performance.now()
const flush = () => {
  timer = null
  process.stderr.write(stamps.map(([way, at, bytes]) => `udp-stamp ${way} ${at.toFixed(3)} ${bytes}\n`).join(''))
  stamps.length = 0
}
const stamp = (way, data) => {
  if (!Buffer.isBuffer(data) || data[0] !== 23) return
  stamps.push([way, now(), data.length])
  if (timer === null) timer = setTimeout(flush, 100)
}
const { emit, send } = dgram.Socket.prototype
dgram.Socket.prototype.emit = function (name, data, ...rest) {
  if (name === 'message') stamp('in', data)
  return emit.call(this, name, data, ...rest)
}
dgram.Socket.prototype.send = function (data, ...rest) {
  stamp('out', data)
  return send.call(this, data, ...rest)
}
