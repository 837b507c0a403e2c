/**
 * The X25519 in werift's DTLS handshake (the curve Chromium picks), by tweetnacl's JavaScript and
 * by node:crypto (device/src/peer/nativeX25519.ts), side by side in one run: handshakes between
 * two werift peers in this process, alternating the two, each timed by the CPU this thread spent
 * inside the X25519 calls (both ends: a key pair and a shared secret each; synchronous, so the
 * median of their wall time is their CPU). The Chromium figure it feeds, join → first frame, is the `call` bench's.
 */
import nacl from 'tweetnacl'
import type { RTCPeerConnection } from 'werift'
import { createPeerConnection, nativeX25519ForDtls, restoreTweetnacl, withoutDefaultStun } from '@doorbell/device'
import { percentile, round, type Bench, type Figure } from './lib'

interface Handshake { x25519Ms: number, calls: number }

async function handshake (): Promise<Handshake> {
  const lib = nacl as unknown as { scalarMult: (n: Uint8Array, p: Uint8Array) => Uint8Array, box: { keyPair: () => nacl.BoxKeyPair } }
  const inner = { scalarMult: lib.scalarMult, keyPair: lib.box.keyPair }
  const spent = { ms: 0, calls: 0 }
  const timed = <A extends unknown[], R>(f: (...a: A) => R) => (...a: A): R => {
    // Synchronous calls: their wall time is their CPU unless the thread is preempted (the median
    // of many drops those); the thread's CPU clock ticks too coarsely for sub-millisecond calls.
    const t0 = performance.now()
    try { return f(...a) } finally { spent.ms += performance.now() - t0; spent.calls++ }
  }
  lib.scalarMult = Object.assign(timed(inner.scalarMult), inner.scalarMult)
  lib.box.keyPair = Object.assign(timed(inner.keyPair), inner.keyPair)
  // As the doorbell makes them: no STUN server (werift's default one is unreachable here), loopback as a host address.
  const [a, b] = [0, 1].map(() => {
    const pc = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
    withoutDefaultStun(pc, [])
    return pc
  }) as [RTCPeerConnection, RTCPeerConnection]
  try {
    a.onIceCandidate.subscribe((c) => { if (c) void b.addIceCandidate(c) })
    b.onIceCandidate.subscribe((c) => { if (c) void a.addIceCandidate(c) })
    const channel = a.createDataChannel('control')
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription!)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription!)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no DTLS connection within 20 s')) }, 20_000)
      channel.stateChanged.subscribe((s) => { if (s === 'open') { clearTimeout(timer); resolve() } })
    })
    return { x25519Ms: spent.ms, calls: spent.calls }
  } finally {
    lib.scalarMult = inner.scalarMult
    lib.box.keyPair = inner.keyPair
    await a.close()
    await b.close()
  }
}

export const dtlsBench: Bench = async ({ smoke, log }) => {
  const rounds = smoke ? 1 : 10
  const runs = { tweetnacl: [] as Handshake[], native: [] as Handshake[] }
  try {
    // One uncounted of each first (module and JIT warm-up), then alternating.
    for (let i = -1; i < rounds; i++) {
      for (const kind of ['tweetnacl', 'native'] as const) {
        if (kind === 'native') { const r = nativeX25519ForDtls(); if (!r.ok) throw new Error(r.reason) } else restoreTweetnacl()
        const h = await handshake()
        if (h.calls < 4) throw new Error(`${kind}: ${h.calls} X25519 calls in a handshake (expected 4: werift did not use X25519?)`)
        if (i >= 0) runs[kind].push(h)
      }
    }
  } finally {
    restoreTweetnacl()
  }
  const p50 = (xs: Handshake[], f: (h: Handshake) => number): number => percentile(xs.map(f), 50)
  const t = p50(runs.tweetnacl, (h) => h.x25519Ms)
  const n = p50(runs.native, (h) => h.x25519Ms)
  log(`dtls: X25519 time per handshake (both ends), p50: tweetnacl ${round(t, 2)} ms, node:crypto ${round(n, 2)} ms (${round(t / n, 1)}x)`)
  const cond = `${rounds} handshakes of each, alternating, between two werift peers in one process on loopback (ECDHE X25519, both ends in this thread: a key pair and a shared secret each); time inside the (synchronous) X25519 calls, median over handshakes`
  const fig = (id: string, name: string, value: number, unit: Figure['unit'] = 'ms'): Figure => ({ id, name, value: round(value, 2), unit, conditions: cond, group: 'video' })
  return [
    fig('dtls-x25519-tweetnacl-p50', 'DTLS X25519 per handshake (both ends), tweetnacl (werift\'s own), p50', t),
    fig('dtls-x25519-native-p50', 'DTLS X25519 per handshake (both ends), node:crypto (the doorbell\'s), p50', n),
    fig('dtls-x25519-ratio', 'DTLS X25519 per handshake: tweetnacl / node:crypto', t / n, 'x')
  ]
}
