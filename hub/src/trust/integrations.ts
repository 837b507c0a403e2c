import { randomBytes } from 'node:crypto'
import { Grant, Member, newId, sign, toB64url, type SigningKey } from '@doorbell/core'
import type { IntegrationKeys } from './integrationKey'
import { isLive, publicMember, sha256 } from './members'
import { TrustError } from './errors'
import type { StoredMember } from './store'
import type { RightsHost } from './rights'

/**
 * Home Assistant's integration members: a credential for its MQTT connection, a door right the
 * owner gives or withdraws, and the signer the hub uses to send Home Assistant's door commands as
 * that member (its own key, held by the hub in `integrationKey.ts`), so the doorbell checks them
 * like any member's.
 */

/** An integration's grant is signed for each command and lasts this long: a copy of one is soon of no use. */
const INTEGRATION_GRANT_MS = 10 * 60_000

/** An integration member's signing material: never logged, never sent anywhere. */
export interface IntegrationSigner {
  member: Member
  /** Its grant, signed by the home key now. */
  credential: string
  key: SigningKey
}

/** What the trust module lends these functions: as for rights.ts, plus where each integration's own key is held. */
export interface IntegrationHost extends RightsHost {
  dir: string
  keys: IntegrationKeys
}

export async function createIntegration (h: IntegrationHost, by: Member, name: string): Promise<{ member: Member, token: string }> {
  const owner = h.requireOwner(by, 'pairing')
  const now = h.now()
  const secret = toB64url(randomBytes(32))
  const id = newId('m')
  // Its own key, held by the hub: Home Assistant cannot sign, so the hub signs its door commands as this member.
  const key = await h.keys.create(id)
  const member: StoredMember = {
    id,
    kind: 'integration',
    subject: newId('ha'),
    name: Member.shape.name.parse(name),
    role: null,
    // Off until the owner grants it (Home settings).
    door: false,
    zones: [],
    talk: false,
    talkZones: [],
    createdAt: now,
    expiresAt: null,
    revokedAt: null,
    key,
    secretHash: sha256(secret)
  }
  h.store.transaction(() => {
    h.store.insertMember(member)
    h.record({ kind: 'pairing', actor: owner.name, message: `created the integration credential ${member.name} (door: no)` })
  })
  h.log.info('integration credential created', { member: member.id, by: owner.id })
  return { member: publicMember(member), token: `${member.id}.${secret}` }
}

export async function setIntegrationDoor (h: IntegrationHost, by: Member, memberId: string, door: boolean): Promise<Member> {
  const owner = h.requireOwner(by, 'pairing')
  const target = h.store.member(memberId)
  if (target === null || target.kind !== 'integration' || target.revokedAt !== null) throw new TrustError('not-found', `no Home Assistant integration ${memberId}`)
  if (target.door !== door) {
    h.store.transaction(() => {
      h.store.setDoor(memberId, door)
      h.record({ kind: 'pairing', actor: owner.name, message: `${door ? 'granted' : 'withdrew'} the door right of ${target.name} (integration)` })
    })
    h.log.info('integration door right changed', { member: memberId, door, by: owner.id })
  }
  return publicMember(h.store.member(memberId)!)
}

export async function integrationSigner (h: IntegrationHost, memberId: string): Promise<IntegrationSigner> {
  const now = h.now()
  const m = h.store.member(memberId)
  if (m === null || m.kind !== 'integration' || !isLive(m, now)) throw new TrustError('not-found', `no Home Assistant integration ${memberId} (removed?)`)
  if (m.key === null) throw new TrustError('not-found', `${m.name} was made before Home Assistant could open the door: make a new integration credential`)
  // A grant's roles are people's: an integration gets a guest's (no talk; the door only if the owner granted it).
  const credential = await sign(Grant, {
    v: 1, id: m.id, home: h.homeId, sub: m.subject, name: `${m.name.slice(0, 50)} (integration)`, role: 'guest',
    door: m.door, zones: [], talk: false, talkZones: [], key: m.key, iat: now, exp: now + INTEGRATION_GRANT_MS
  }, h.homeKey)
  return { member: publicMember(m), credential, key: await h.keys.load(m.id) }
}
