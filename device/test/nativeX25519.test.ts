import { test } from 'node:test'
import assert from 'node:assert/strict'
import nacl from 'tweetnacl'
import { RTCPeerConnection } from 'werift'
import { nativeKeyPair, nativeScalarMult, nativeX25519ForDtls, restoreTweetnacl } from '../src/peer/nativeX25519'

/**
 * werift's DTLS X25519 by node:crypto instead of tweetnacl (peer/nativeX25519.ts): the same bytes
 * as tweetnacl, tweetnacl's own answer for what OpenSSL refuses, and a real werift handshake that
 * goes through it.
 */

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))

test('X25519 by OpenSSL is tweetnacl\'s, for RFC 7748\'s vector and for random keys', () => {
  // RFC 7748 §6.1: Alice's private key, Bob's public key, their shared secret.
  const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
  const bob = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
  assert.equal(Buffer.from(nativeScalarMult(alice, bob)!).toString('hex'), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
  for (let i = 0; i < 30; i++) {
    const a = nacl.box.keyPair()
    const b = nacl.box.keyPair()
    assert.deepEqual(nativeScalarMult(a.secretKey, b.publicKey), nacl.scalarMult(a.secretKey, b.publicKey))
  }
})

test('a key pair by OpenSSL is a valid X25519 pair in Uint8Arrays of their own (werift reads .buffer)', () => {
  for (let i = 0; i < 10; i++) {
    const k = nativeKeyPair()
    assert.equal(k.secretKey.buffer.byteLength, 32)
    assert.equal(k.publicKey.buffer.byteLength, 32)
    assert.deepEqual(k.publicKey, nacl.scalarMult.base(k.secretKey))
  }
})

test('what OpenSSL cannot take is left to tweetnacl: wrong sizes and a low-order point', () => {
  const key = nacl.box.keyPair().secretKey
  assert.equal(nativeScalarMult(key.subarray(0, 31), new Uint8Array(32)), null)
  assert.equal(nativeScalarMult(key, new Uint8Array(33)), null)
  assert.equal(nativeScalarMult(key, new Uint8Array(32)), null, 'the all-zero point: OpenSSL refuses the all-zero secret')
  assert.equal(nativeX25519ForDtls().ok, true)
  try {
    assert.deepEqual(nacl.scalarMult(key, new Uint8Array(32)), new Uint8Array(32), 'tweetnacl\'s own answer')
    assert.throws(() => nacl.scalarMult(key.subarray(0, 31), new Uint8Array(32)), /bad n size/)
    assert.equal(typeof nacl.scalarMult.base, 'function', 'tweetnacl\'s helpers stay')
    assert.equal(typeof nacl.box.keyPair.fromSecretKey, 'function')
  } finally {
    restoreTweetnacl()
  }
})

test('a real werift DTLS handshake (X25519) goes through OpenSSL, and the data channel carries a message', async () => {
  const lib = nacl as unknown as { scalarMult: (n: Uint8Array, p: Uint8Array) => Uint8Array, box: { keyPair: () => nacl.BoxKeyPair } }
  const tweetnacl = { scalarMult: lib.scalarMult, keyPair: lib.box.keyPair }
  assert.equal(nativeX25519ForDtls().ok, true)
  assert.notEqual(lib.scalarMult, tweetnacl.scalarMult)
  assert.notEqual(lib.box.keyPair, tweetnacl.keyPair)
  // Counted on top of the native path, where werift calls them.
  const native = { scalarMult: lib.scalarMult, keyPair: lib.box.keyPair }
  const calls = { scalarMult: 0, keyPair: 0 }
  lib.scalarMult = Object.assign((n: Uint8Array, p: Uint8Array) => { calls.scalarMult++; return native.scalarMult(n, p) }, native.scalarMult)
  lib.box.keyPair = Object.assign(() => { calls.keyPair++; return native.keyPair() }, native.keyPair)
  const a = new RTCPeerConnection()
  const b = new RTCPeerConnection()
  try {
    a.onIceCandidate.subscribe((c) => { if (c) void b.addIceCandidate(c) })
    b.onIceCandidate.subscribe((c) => { if (c) void a.addIceCandidate(c) })
    const channel = a.createDataChannel('control')
    const got = new Promise<string>((resolve) => {
      b.onDataChannel.subscribe((dc) => { dc.onMessage.subscribe((m) => { resolve(m.toString()) }) })
    })
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription!)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription!)
    await new Promise<void>((resolve) => { channel.stateChanged.subscribe((s) => { if (s === 'open') resolve() }) })
    channel.send('door')
    assert.equal(await got, 'door')
    assert.ok(calls.keyPair >= 1, `key pairs through the native path: ${calls.keyPair}`)
    assert.ok(calls.scalarMult >= 2, `shared secrets through the native path (both ends): ${calls.scalarMult}`)
  } finally {
    await a.close()
    await b.close()
    restoreTweetnacl()
  }
  assert.equal(lib.scalarMult, tweetnacl.scalarMult, 'restored')
})
