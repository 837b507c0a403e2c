import type { PairResponse } from '@doorbell/core'
import { CameraNodePairing, pairedMemberOf } from '@doorbell/device/answering'
import type { HubApi } from '../lib/api'

/**
 * A browser camera node's pairing: the page pairs as a device (core PairRequest kind 'device')
 * with the owner's device invite, and keeps what it needs to sign in to the hub and to check its
 * watchers' credentials. Pure parts, unit-tested (test/cameraPairing.test.ts).
 */

/** Where the pairing is kept (localStorage: a camera node has no private key to protect). */
export const CAMERA_NODE_KEY = 'doorbell.cameraNode'

/** What a camera node keeps: the one pairing record of every device, with the camera's own id and name. */
export { CameraNodePairing }

/** A pairing record checked with the protocol's own schemas, or null. */
export function parseCameraPairing (value: unknown): CameraNodePairing | null {
  const parsed = CameraNodePairing.safeParse(value)
  return parsed.success ? parsed.data : null
}

/** The stored pairing, or null when there is none or it cannot be read (then it is forgotten). */
export function loadCameraPairing (storage: Pick<Storage, 'getItem' | 'removeItem'>): CameraNodePairing | null {
  const raw = storage.getItem(CAMERA_NODE_KEY)
  if (raw === null) return null
  try {
    const parsed = parseCameraPairing(JSON.parse(raw))
    if (parsed) return parsed
  } catch { /* not JSON */ }
  storage.removeItem(CAMERA_NODE_KEY)
  return null
}

export function saveCameraPairing (storage: Pick<Storage, 'setItem'>, pairing: CameraNodePairing): void {
  if (!parseCameraPairing(pairing)) throw new TypeError('not a camera node pairing')
  storage.setItem(CAMERA_NODE_KEY, JSON.stringify(pairing))
}

export function forgetCameraPairing (storage: Pick<Storage, 'removeItem'>): void {
  storage.removeItem(CAMERA_NODE_KEY)
}

/** "Junction cam 3" → "junction-cam-3": a device id that fits a topic level, from the camera's name. */
export function deviceIdFromName (name: string): string {
  return name
    .normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '')
}

/** A device id as this page accepts it: `[a-z0-9-]`, 1-64 characters; the owner's invite names the same one. */
export function checkDeviceId (raw: string): { ok: true, deviceId: string } | { ok: false, message: string } {
  const id = raw.trim()
  if (/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(id)) return { ok: true, deviceId: id }
  return { ok: false, message: 'A camera id is 1-64 lower-case letters, digits and dashes (for example junction-cam-3), the one the owner typed in the invite.' }
}

/** The camera id an invitation link may carry next to the code (`#code=…&device=…`), or null. */
export function deviceIdFromUrl (at: Pick<Location, 'hash'>): string | null {
  const id = new URLSearchParams(at.hash.replace(/^#/, '')).get('device')
  return id !== null && checkDeviceId(id).ok ? id : null
}

/** What the page keeps of the hub's answer; refuses an answer that is not a device's pairing. */
export function pairingFrom (reply: PairResponse, deviceId: string): CameraNodePairing {
  const m = reply.member
  if (m.kind !== 'device' || m.subject !== deviceId) throw new Error('the hub paired something other than this camera: ask the owner for a camera invite')
  const { zone, ...member } = pairedMemberOf(reply)
  if (zone === undefined) throw new Error('the hub gave this camera no zone: ask the owner for a new camera invite')
  return { ...member, deviceId, name: m.name, zone }
}

/** Redeems the owner's device invite for this page: POST /api/pair with kind 'device'. */
export async function pairCameraNode (o: { api: Pick<HubApi, 'pair'>, code: string, deviceId: string, name: string, signal?: AbortSignal }): Promise<CameraNodePairing> {
  const reply = await o.api.pair({ kind: 'device', code: o.code, id: o.deviceId, name: o.name }, o.signal ? { signal: o.signal } : {})
  return pairingFrom(reply, o.deviceId)
}
