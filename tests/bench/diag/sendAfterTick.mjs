// Preloaded into a doorbell process for a side by side (`--import`; diag/openPath.ts with
// OPEN_PATH_AB=1): every UDP send waits for a process.nextTick first, as Node's own send to an IP
// address did before device/src/peer/promptSend.ts (its lookup answers on a tick, which a promise
// chain holds back until the microtask queue is empty): the doorbell "before" that change, all else
// as shipped. SIGUSR2 switches it off and on, so one doorbell, one call and one camera serve both
// sides, block by block. Not part of any shipped program.
import dgram from 'node:dgram'

let afterTick = true
process.on('SIGUSR2', () => { afterTick = !afterTick })
const { send } = dgram.Socket.prototype
dgram.Socket.prototype.send = function (...args) {
  if (!afterTick) return send.apply(this, args)
  // Node's own send dropped a datagram whose socket closed before the tick; so does this.
  process.nextTick(() => { try { send.apply(this, args) } catch {} })
}
