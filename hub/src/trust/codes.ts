import { randomInt } from 'node:crypto'
import type { AuditRecord, Logger } from '@doorbell/core'
import { sha256 } from './members'
import type { TrustBackend } from './store'

/** Characters of a one-time code: no 0/O, 1/I/L look-alikes (the same alphabet `PairingCode` accepts). */
const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ'
const CODE_LENGTH = 10
/** How long the owner's setup code printed at start stays valid. */
export const SETUP_CODE_TTL_MS = 24 * 60 * 60 * 1000

/** `CODE_LENGTH` characters, each uniformly from the alphabet (randomInt rejects biased draws). */
export function newCode (): string {
  let code = ''
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]
  return code
}

/** `ABCDE-FGHJK`: easier to read out and type. */
export function display (code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`
}

/**
 * The owner's setup code, issued while the home has no owner: a fresh one replaces older ones.
 * In a cluster, a live code another hub issued stays the one, and this hub logs where to find it
 * (null then, as when the home has an owner). Returns the code to print, as it is typed.
 */
export function issueSetupCode (o: {
  store: TrustBackend
  now: number
  ttlMs: number
  log: Logger
  record: (r: Pick<AuditRecord, 'kind' | 'actor' | 'message'>) => void
}): { code: string, expiresAt: number } | null {
  const { store, now } = o
  if (store.liveOwnerCount(now) > 0) return null
  const code = newCode()
  const expiresAt = now + o.ttlMs
  let elsewhere: { node: string, expiresAt: number } | null = null
  store.transaction(() => {
    elsewhere = store.setupCodeElsewhere?.(now) ?? null
    if (elsewhere !== null) return
    store.dropSetupCodes()
    store.insertInvite({ codeHash: sha256(code), kind: 'viewer', role: 'owner', door: true, zones: [], talk: true, talkZones: [], deviceId: null, accessHours: null, expiresAt, createdBy: null })
    o.record({ kind: 'invite', actor: '(hub)', message: 'owner setup code issued' })
  })
  const other = elsewhere as { node: string, expiresAt: number } | null
  if (other !== null) {
    o.log.info('the home has no owner: pair the owner\'s browser with the setup code another hub of the cluster printed (its log); restart that hub for a new one', { hub: other.node, expires: new Date(other.expiresAt).toISOString() })
    return null
  }
  return { code: display(code), expiresAt }
}
