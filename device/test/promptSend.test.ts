import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { Worker } from 'node:worker_threads'
import { RTCPeerConnection } from 'werift'
import { peerSockets, promptSend, promptSocket } from '../src/peer/promptSend'
import { createPeerConnection, withoutDefaultStun } from '../src/peer/werift'

/**
 * "Door open" waited for the doorbell to finish handling the command: werift sends from promise
 * chains, and Node's send to an IP address waited for a tick that runs only once the microtask
 * queue is empty (peer/promptSend.ts). The datagrams are timed where they arrive, in a worker
 * thread (its own event loop), against a sender that keeps its microtask queue busy after send.
 */

const now = (): number => performance.timeOrigin + performance.now()

/** A UDP receiver on its own thread: each datagram's arrival time. */
async function receiver (): Promise<{ port: number, next: () => Promise<number>, stop: () => Promise<number> }> {
  const worker = new Worker(`
    const dgram = require('node:dgram')
    const { parentPort } = require('node:worker_threads')
    const s = dgram.createSocket('udp4')
    s.on('message', () => { parentPort.postMessage({ at: performance.timeOrigin + performance.now() }) })
    s.bind(0, '127.0.0.1', () => { parentPort.postMessage({ port: s.address().port }) })
  `, { eval: true })
  const port = await new Promise<number>((resolve) => worker.once('message', (m: { port: number }) => { resolve(m.port) }))
  return { port, next: async () => await new Promise<number>((resolve) => worker.once('message', (m: { at: number }) => { resolve(m.at) })), stop: async () => await worker.terminate() }
}

/** Sends inside a promise chain that then stays busy for `busyMs` (as a command's guard, lock and ack do); when the chain ended. */
async function sendFromBusyChain (socket: Socket, port: number, busyMs: number): Promise<number> {
  return await Promise.resolve().then(async () => {
    socket.send(Buffer.from('open'), port, '127.0.0.1')
    for (let i = 0; i < busyMs * 4; i++) {
      const until = performance.now() + 0.25
      while (performance.now() < until) { /* the rest of the command's work */ }
      await null
    }
    return now()
  })
}

async function bound (socket: Socket): Promise<Socket> {
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return socket
}

test('a datagram sent from a busy promise chain leaves at once, not when the chain ends', async () => {
  const rx = await receiver()
  const before = await bound(createSocket('udp4'))
  const after = await bound(createSocket('udp4'))
  try {
    // Node as it is: the datagram waits for the chain (this is what the doorbell did).
    let arrived = rx.next()
    let ended = await sendFromBusyChain(before, rx.port, 20)
    assert.ok(await arrived >= ended - 0.5, `without promptSocket the datagram left with the chain's end (arrived ${(await arrived - ended).toFixed(2)} ms after it)`)

    assert.equal(promptSocket(after), true, 'Node keeps the socket\'s lookup where promptSend looks for it')
    arrived = rx.next()
    ended = await sendFromBusyChain(after, rx.port, 100)
    assert.ok(ended - await arrived > 50, `with promptSocket it arrived ${(ended - await arrived).toFixed(2)} ms before the chain ended`)
  } finally {
    before.close()
    after.close()
    await rx.stop()
  }
})

test('a name still goes through the socket\'s own lookup; a bad one still fails as before', async () => {
  const socket = await bound(createSocket('udp4'))
  const rx = await receiver()
  try {
    promptSocket(socket)
    const arrived = rx.next()
    socket.send(Buffer.from('x'), rx.port, 'localhost')
    assert.ok(await arrived > 0)
    const error = await new Promise<Error | null>((resolve) => { socket.send(Buffer.from('x'), rx.port, 'no-such-host.invalid', (err) => { resolve(err) }) })
    assert.match(String(error?.message), /ENOTFOUND|EAI_AGAIN/)
  } finally {
    socket.close()
    await rx.stop()
  }
})

test('the doorbell\'s werift peer: every socket sends at once after the answer, and its data channel still works', async () => {
  const viewer = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
  const doorbell = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
  const rx = await receiver()
  try {
    const dc = viewer.createDataChannel('commands')
    await viewer.setLocalDescription(await viewer.createOffer())
    withoutDefaultStun(viewer, [])
    const replies: string[] = []
    dc.onMessage.subscribe((m) => { replies.push(m.toString()) })
    doorbell.onDataChannel.subscribe((channel) => { channel.onMessage.subscribe((m) => { channel.send(`ack ${m.toString()}`) }) })
    await doorbell.setRemoteDescription(viewer.localDescription!)
    withoutDefaultStun(doorbell, [])
    await doorbell.setLocalDescription(await doorbell.createAnswer())
    const made = promptSend(doorbell)
    assert.ok(made.sockets >= 1, 'the answer made at least one socket')
    assert.deepEqual(made, { sockets: made.sockets, prompt: made.sockets })
    assert.deepEqual(promptSend(doorbell), made, 'again: nothing changes twice')

    // A datagram through werift's own socket, from a busy chain, arrives before the chain ends.
    const socket = peerSockets(doorbell)[0]!
    const arrived = rx.next()
    const ended = await sendFromBusyChain(socket, rx.port, 100)
    assert.ok(ended - await arrived > 50, `arrived ${(ended - await arrived).toFixed(2)} ms before the chain ended`)

    await viewer.setRemoteDescription(doorbell.localDescription!)
    if (dc.readyState !== 'open') await dc.stateChanged.watch((s) => s === 'open', 10_000)
    for (const n of [1, 2, 3]) dc.send(`open ${n}`)
    const deadline = Date.now() + 5000
    while (replies.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    assert.deepEqual(replies, ['ack open 1', 'ack open 2', 'ack open 3'])
  } finally {
    await viewer.close()
    await doorbell.close()
    await rx.stop()
  }
})
