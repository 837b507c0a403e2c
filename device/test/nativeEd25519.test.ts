import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DoorGuard, Grant, exportPublicKey, generateSigningKey, newId, open, sign, signDoorCommand, webCryptoCheck, type SigningKey
} from '@doorbell/core'
import { nativeEd25519Check } from '../src/peer/nativeEd25519'

const HOME = 'home'
const DEVICE = 'front-door'
const VIEWER = 'v-kitchen'

test('the native check gives WebCrypto\'s answer for good, tampered, foreign-key and unusable signatures', async () => {
  const keys = await generateSigningKey(false)
  const other = await generateSigningKey(false)
  const data = new TextEncoder().encode(JSON.stringify({ type: 'unlock', at: Date.now() }))
  const signature = new Uint8Array(await globalThis.crypto.subtle.sign('Ed25519', keys.privateKey, data))
  const tampered = signature.slice()
  tampered[10]! ^= 1
  const otherData = data.slice()
  otherData[0]! ^= 1
  // A key of another kind (ECDSA P-256) and a private key: WebCrypto refuses them with a throw; the native check says "no match".
  const ecdsa = (await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as { publicKey: SigningKey }
  const cases: Array<[string, SigningKey, Uint8Array, Uint8Array, boolean]> = [
    ['good', keys.publicKey, signature, data, true],
    ['tampered signature', keys.publicKey, tampered, data, false],
    ['other bytes', keys.publicKey, signature, otherData, false],
    ['another member\'s key', other.publicKey, signature, data, false],
    ['a short signature', keys.publicKey, signature.slice(0, 63), data, false]
  ]
  for (const [what, key, sig, bytes, expected] of cases) {
    assert.equal(nativeEd25519Check(key, sig, bytes), expected, what)
    assert.equal(await webCryptoCheck(key, sig, bytes), expected, `WebCrypto agrees: ${what}`)
  }
  assert.equal(nativeEd25519Check(ecdsa.publicKey, signature, data), false, 'an ECDSA key')
  assert.equal(nativeEd25519Check(keys.privateKey, signature, data), false, 'a private key')
})

test('a DoorGuard with the native check opens the door for a signed command and refuses a forged one, as with WebCrypto', async () => {
  const homeKeys = await generateSigningKey(false)
  const viewerKeys = await generateSigningKey(false)
  const forger = await generateSigningKey(false)
  const credential = await sign(Grant, {
    v: 1, id: 'm-kitchen', home: HOME, sub: VIEWER, name: 'Kitchen', role: 'resident', door: true, zones: [],
    key: await exportPublicKey(viewerKeys.publicKey), iat: Date.now(), exp: null
  }, homeKeys.privateKey)
  const homeKey = await exportPublicKey(homeKeys.publicKey)
  for (const checkSignature of [nativeEd25519Check, undefined]) {
    const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey, ...(checkSignature ? { checkSignature } : {}) })
    const good = await signDoorCommand({ credential, key: viewerKeys.privateKey, home: HOME, device: DEVICE, session: 's-1', command: newId('c') })
    const forged = await signDoorCommand({ credential, key: forger.privateKey, home: HOME, device: DEVICE, session: 's-1', command: newId('c') })
    const ok = await guard.check(good, { sessionId: 's-1', viewerId: VIEWER })
    assert.equal(ok.ok, true, JSON.stringify(ok))
    const refused = await guard.check(forged, { sessionId: 's-1', viewerId: VIEWER })
    assert.ok(!refused.ok && refused.reason === 'bad-signature', JSON.stringify(refused))
    // And a credential not signed by the home.
    const notHome = await guard.check({ ...good, id: newId('c'), credential: await sign(Grant, { ...(await open(Grant, credential, homeKeys.publicKey) as { ok: true, value: Grant }).value }, forger.privateKey) }, { sessionId: 's-1', viewerId: VIEWER })
    assert.ok(!notHome.ok && notHome.reason === 'bad-credential', JSON.stringify(notHome))
  }
})
