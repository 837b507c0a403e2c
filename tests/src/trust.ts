import type { Page } from 'playwright-core'
import { DEFAULT_ZONE, PairResponse, exportPublicKey, generateSigningKey, newId, signViewClaim, type InviteRequest, type Offer, type Role, type SigningKeyPair } from '@doorbell/core'
import type { Hub } from '@doorbell/hub'
import type { ViewerTrust } from '@doorbell/viewer/lib'

/**
 * Pairing for tests, the way people do it: the owner's invite (here from the hub's console, as the
 * demo does), then the code redeemed over the hub's HTTP API (Node) or its pairing screen (Chromium).
 */

export interface PairedViewer extends ViewerTrust { viewerId: string, homeId: string }

/** A one-time code: the owner's setup code while the home has none, else a console invite. */
export async function inviteCode (hub: Hub, req: InviteRequest | 'owner'): Promise<string> {
  if (req === 'owner') {
    const setup = hub.trust.setupCode()
    if (!setup) throw new Error('the home already has an owner')
    return setup.code
  }
  return (await hub.trust.invite('console', req, hub.url)).code
}

/** A viewer in Node (werift peer, mqtt.js): key pair, code, POST /api/pair, like the browser's pairing screen. */
export async function pairViewer (hub: Hub, o: { name: string, role?: Role, door?: boolean, accessHours?: number, viewerId?: string, zones?: string[], talkZones?: string[] }): Promise<PairedViewer> {
  const role = o.role ?? 'resident'
  const code = await inviteCode(hub, role === 'owner'
    ? 'owner'
    : {
        kind: 'viewer',
        role,
        ...(o.door !== undefined ? { door: o.door } : {}),
        ...(o.accessHours !== undefined ? { accessHours: o.accessHours } : {}),
        ...(o.zones !== undefined ? { zones: o.zones } : {}),
        ...(o.talkZones !== undefined ? { talkZones: o.talkZones } : {})
      })
  const keys = await generateSigningKey(false)
  const viewerId = o.viewerId ?? newId('v')
  const res = await fetch(`${hub.url}api/pair`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'viewer', code, id: viewerId, name: o.name, key: await exportPublicKey(keys.publicKey) })
  })
  if (!res.ok) throw new Error(`pairing ${o.name} failed: ${res.status} ${await res.text()}`)
  return pairedViewer(viewerId, keys, PairResponse.parse(await res.json()))
}

/** What a screen keeps of its pairing: its id, the hub's answer and its own private key. */
export function pairedViewer (viewerId: string, keys: SigningKeyPair, paired: PairResponse): PairedViewer {
  return {
    viewerId,
    homeId: paired.homeId,
    memberId: paired.member.id,
    token: paired.token,
    credential: paired.credential!,
    key: keys.privateKey,
    role: paired.member.role!,
    name: paired.member.name
  }
}

/**
 * An offer as the viewer app sends it: the grant, and a proof signed by the viewer's own key for
 * this doorbell and session, now. `as` sends it under another viewer's id and name (a borrowed grant).
 */
export async function offerFrom (p: PairedViewer, o: { device: string, sessionId: string, sdp: string, viewerName?: string, key?: PairedViewer['key'], now?: number }): Promise<Offer> {
  const proof = await signViewClaim({ key: o.key ?? p.key, home: p.homeId, device: o.device, session: o.sessionId, ...(o.now !== undefined ? { now: o.now } : {}) })
  return { type: 'offer', sessionId: o.sessionId, viewerId: p.viewerId, viewerName: o.viewerName ?? p.name, sdp: o.sdp, credential: p.credential, proof }
}

/** The invite URL a doorbell pairs with on its first start (device config `pairing.url`). */
export async function deviceInvite (hub: Hub, deviceId: string, zone: string = DEFAULT_ZONE): Promise<string> {
  return (await hub.trust.invite('console', { kind: 'device', deviceId, zones: [zone] }, hub.url, hub.tls ? `&ca=${hub.tls.fingerprint}` : '')).url
}

/** Pairs a browser through its pairing screen: code and name typed in, as a person would. */
export async function pairPage (page: Page, origin: string, code: string, name: string): Promise<void> {
  await page.goto(`${origin}pair#code=${code.replace('-', '')}`)
  await page.getByTestId('pair-name').fill(name)
  await page.getByTestId('pair-submit').click()
  await page.getByTestId('viewer-name').waitFor({ state: 'visible', timeout: 15_000 })
}
