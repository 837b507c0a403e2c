import { Id, MemberToken, Role, Signed, generateSigningKey } from '@doorbell/core'
import { idbStore } from '../lib/idb'

/**
 * This browser's pairing, kept in IndexedDB (database `doorbell`, store `pairing`, one record).
 * IndexedDB rather than localStorage because the key pair is kept as CryptoKey objects, which
 * structured-clone into it: the private key is made non-extractable, so neither this page nor
 * anything injected into it can ever read its bytes, only ask the browser to sign with it.
 */
export interface StoredPairing {
  /** The viewer id used when pairing: the grant's `sub`, used on every path from then on. */
  viewerId: string
  memberId: string
  /** API bearer token and MQTT password. */
  token: string
  /** The grant, signed by the home. */
  credential: string
  homeId: string
  role: Role
  /** The member's name, as the hub recorded it. */
  name: string
  key: CryptoKeyPair
}

const RECORD = 'current'
const { withStore } = idbStore({
  db: 'doorbell', version: 1, store: 'pairing',
  unavailable: 'this browser keeps no IndexedDB (a private window?), so it cannot keep its pairing'
})

/** A key pair for this screen: Ed25519, private half not extractable. */
export async function newKeyPair (): Promise<CryptoKeyPair> {
  return await generateSigningKey(false)
}

/** The stored value if it is a whole pairing; anything else (an older shape, a damaged record) is not trusted. */
export function parseStoredPairing (value: unknown): StoredPairing | null {
  if (typeof value !== 'object' || value === null) return null
  const v = value as Record<string, unknown>
  const key = v.key as Partial<CryptoKeyPair> | null | undefined
  const isKey = (k: unknown): k is CryptoKey => typeof CryptoKey !== 'undefined' && k instanceof CryptoKey
  if (!Id.safeParse(v.viewerId).success || !Id.safeParse(v.memberId).success || !Id.safeParse(v.homeId).success) return null
  if (!MemberToken.safeParse(v.token).success || !Signed.safeParse(v.credential).success) return null
  const role = Role.safeParse(v.role)
  if (!role.success || typeof v.name !== 'string' || v.name === '') return null
  if (typeof key !== 'object' || key === null || !isKey(key.privateKey) || !isKey(key.publicKey)) return null
  return {
    viewerId: v.viewerId as string,
    memberId: v.memberId as string,
    token: v.token as string,
    credential: v.credential as string,
    homeId: v.homeId as string,
    role: role.data,
    name: v.name,
    key: { privateKey: key.privateKey, publicKey: key.publicKey }
  }
}

export async function loadPairing (): Promise<StoredPairing | null> {
  return parseStoredPairing(await withStore('readonly', (store) => store.get(RECORD)))
}

export async function savePairing (pairing: StoredPairing): Promise<void> {
  await withStore('readwrite', (store) => store.put(pairing, RECORD))
}

export async function forgetPairing (): Promise<void> {
  await withStore('readwrite', (store) => store.delete(RECORD))
}
