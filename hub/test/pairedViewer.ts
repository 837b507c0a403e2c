import assert from 'node:assert/strict'
import { PairResponse, exportPublicKey, generateSigningKey, newId, type Role, type SigningKeyPair } from '@doorbell/core'
import type { Hub } from '../src/hub'

/** A screen paired on a test hub, as the hub's HTTP API returned it (shared by the rights tests). */
export interface Paired { memberId: string, token: string, subject: string, credential: string, keys: SigningKeyPair }

/** One JSON request to the hub's HTTP API, with the member's bearer token if given. */
export async function callHub (hub: Hub, path: string, o: { method?: string, token?: string, body?: unknown } = {}): Promise<{ status: number, json: unknown }> {
  const res = await fetch(new URL(path.replace(/^\//, ''), hub.url), {
    method: o.method ?? 'GET',
    headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {})
  })
  return { status: res.status, json: await res.json() }
}

/** Pairs a new screen as `role` (the owner with the setup code, others with an invite), as a page does. */
export async function pairViewer (hub: Hub, role: Role, name: string, zones: string[] = []): Promise<Paired> {
  const code = role === 'owner' ? hub.trust.setupCode()!.code : (await hub.trust.invite('console', { kind: 'viewer', role, zones }, hub.url)).code
  const keys = await generateSigningKey(false)
  const id = newId('v')
  const r = await callHub(hub, '/api/pair', { method: 'POST', body: { kind: 'viewer', code, id, name, key: await exportPublicKey(keys.publicKey) } })
  assert.equal(r.status, 200, JSON.stringify(r.json))
  const p = PairResponse.parse(r.json)
  return { memberId: p.member.id, token: p.token, subject: id, credential: p.credential!, keys }
}

/** Pairs a device in the hub's process (no HTTP), in `zone` if given: its member id and token for MQTT. */
export async function pairDevice (hub: Hub, deviceId: string, zone?: string): Promise<{ memberId: string, token: string }> {
  const { code } = await hub.trust.invite('console', { kind: 'device', deviceId, ...(zone === undefined ? {} : { zones: [zone] }) }, hub.url)
  const paired = await hub.trust.pair({ kind: 'device', code, id: deviceId, name: deviceId })
  return { memberId: paired.member.id, token: paired.token }
}

/** Pairs a screen in the hub's process (no HTTP): its member id, token and viewer id (its client ids are `viewer-{viewerId}-…`). */
export async function pairScreen (hub: Hub, role: 'operator' | 'resident', zones: string[] = []): Promise<{ memberId: string, token: string, viewerId: string }> {
  const { code } = await hub.trust.invite('console', { kind: 'viewer', role, zones }, hub.url)
  const viewerId = newId('v')
  const key = await generateSigningKey(false)
  const paired = await hub.trust.pair({ kind: 'viewer', code, id: viewerId, name: viewerId, key: await exportPublicKey(key.publicKey) })
  return { memberId: paired.member.id, token: paired.token, viewerId }
}
