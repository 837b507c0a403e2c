import { mkdir, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Id, exportPublicKey, generateSigningKey, type SigningKey } from '@doorbell/core'

/**
 * Home Assistant's signing keys: the hub holds one Ed25519 key per integration member, because
 * Home Assistant cannot sign the doorbell's commands itself. The private half stays in
 * `dataDir/trust/integrations/<member id>.key` (PKCS#8 PEM, 0600, the folder 0700), is read only
 * to sign that member's door commands, and is never logged, sent, or given to the API; the public
 * half is the member's `key`, named in its grant, so the doorbell checks the commands signed with
 * it like any member's. A cluster keeps them in PostgreSQL instead, sealed with a key derived from
 * the home key (../cluster/sealedKeys.ts).
 */

/** Where the integration keys are held: these files on one hub, PostgreSQL (sealed) in a cluster. */
export interface IntegrationKeys {
  /** Makes a new key for `memberId` (never over an existing one); returns its public half, as grants name it. */
  create: (memberId: string) => Promise<string>
  /** The member's private key, not extractable. */
  load: (memberId: string) => Promise<SigningKey>
  remove: (memberId: string) => Promise<void>
}

/** The single hub's: the files below in `trustDir/integrations/`. */
export function fileIntegrationKeys (trustDir: string): IntegrationKeys {
  return {
    create: async (memberId) => await createIntegrationKey(trustDir, memberId),
    load: async (memberId) => await loadIntegrationKey(trustDir, memberId),
    remove: async (memberId) => { await removeIntegrationKey(trustDir, memberId) }
  }
}

const DIR = 'integrations'
const PEM_LABEL = 'PRIVATE KEY'
const ED25519 = { name: 'Ed25519' } as const

const fileOf = (trustDir: string, memberId: string): string => join(trustDir, DIR, `${Id.parse(memberId)}.key`)

/** Makes a new key for `memberId` (never over an existing file); returns its public half, as grants name it. */
export async function createIntegrationKey (trustDir: string, memberId: string): Promise<string> {
  await mkdir(join(trustDir, DIR), { recursive: true, mode: 0o700 })
  const pair = await generateSigningKey(true)
  const der = Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey))
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  const handle = await open(fileOf(trustDir, memberId), 'wx', 0o600)
  try {
    await handle.writeFile(`-----BEGIN ${PEM_LABEL}-----\n${lines.join('\n')}\n-----END ${PEM_LABEL}-----\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  return await exportPublicKey(pair.publicKey)
}

/** The member's private key, not extractable: it can sign, and nothing can read it back out. */
export async function loadIntegrationKey (trustDir: string, memberId: string): Promise<SigningKey> {
  const pem = await readFile(fileOf(trustDir, memberId), 'utf8')
  const body = new RegExp(`^-----BEGIN ${PEM_LABEL}-----\\s*([A-Za-z0-9+/=\\s]+?)\\s*-----END ${PEM_LABEL}-----\\s*$`).exec(pem)
  if (body === null) throw new Error(`the integration key of ${memberId} is not a PEM "${PEM_LABEL}"`)
  return await globalThis.crypto.subtle.importKey('pkcs8', Buffer.from(body[1]!.replace(/\s/g, ''), 'base64'), ED25519, false, ['sign']) as SigningKey
}

/** A removed integration's key is of no more use: deleted, so a copy of the data folder cannot sign with it. */
export async function removeIntegrationKey (trustDir: string, memberId: string): Promise<void> {
  await rm(fileOf(trustDir, memberId), { force: true })
}
