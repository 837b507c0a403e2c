import { DEFAULT_ZONE, Id, type InviteRequest, type InviteResponse } from '@doorbell/core'
import { checkDeviceId as checkCameraId } from '../../camera/pairing'

/**
 * The owner's invite form, its pure parts (test/invite.test.ts): what the fields mean as an
 * InviteRequest, or which field is wrong and why, so nothing is sent; and, for a device, the two
 * ready lines that pair it. The ids are checked with core's own `Id`, the rule the hub applies.
 */

export type InvitedRole = 'resident' | 'guest' | 'operator'

/** Which field a message is about, so the form can mark it. */
export type InviteField = 'deviceId' | 'zone' | 'zones' | 'hours' | 'talkZones'
export type InviteCheck = { ok: true, request: InviteRequest } | { ok: false, field: InviteField, message: string }

const ID_CHARS = 'letters, digits, "_" and "-" only, up to 64'

/** The operators' zones field ("north-gate, car-park") as ids, or why not. */
export function parseZoneList (raw: string): { ok: true, ids: string[] } | { ok: false, message: string } {
  const ids = raw.split(',').map((z) => z.trim()).filter(Boolean)
  const bad = ids.find((z) => !Id.safeParse(z).success)
  if (bad !== undefined) return { ok: false, message: `"${bad}" is not a zone id (${ID_CHARS}).` }
  if (ids.length > 64) return { ok: false, message: 'An operator can be given up to 64 zones.' }
  return { ok: true, ids: [...new Set(ids)] }
}

/**
 * A person's invite: residents and guests get the door and talk rights as ticked (a form that
 * does not say: the hub's defaults), guests a number of hours, operators zones and the zones
 * among them where they may talk.
 */
export function personInvite (f: { role: InvitedRole, door: boolean, hours: number | '', zones: string, talk?: boolean, talkZones?: string }): InviteCheck {
  if (f.role === 'operator') {
    const zs = parseZoneList(f.zones)
    if (!zs.ok) return { ok: false, field: 'zones', message: zs.message }
    const tz = parseZoneList(f.talkZones ?? '')
    if (!tz.ok) return { ok: false, field: 'talkZones', message: tz.message }
    const outside = tz.ids.find((z) => !zs.ids.includes(z))
    if (outside !== undefined) return { ok: false, field: 'talkZones', message: `"${outside}" is not one of the operator's zones: they can talk only where they watch.` }
    return { ok: true, request: { kind: 'viewer', role: 'operator', zones: zs.ids, ...(tz.ids.length > 0 ? { talkZones: tz.ids } : {}), accessHours: null } }
  }
  const accessHours = f.role === 'guest' ? Number(f.hours) : null
  if (accessHours !== null && (f.hours === '' || !(accessHours > 0 && accessHours <= 24 * 366))) {
    return { ok: false, field: 'hours', message: 'Give the guest\'s access a number of hours (up to a year).' }
  }
  return { ok: true, request: { kind: 'viewer', role: f.role, door: f.door, ...(f.talk !== undefined ? { talk: f.talk } : {}), accessHours } }
}

/**
 * A doorbell's or camera node's invite: its id (the `deviceId` in its config, or the id typed on
 * `/camera`) and exactly one zone; an empty zone is the home's own (`home`).
 */
export function deviceInvite (f: { deviceId: string, zone: string }): InviteCheck {
  const deviceId = f.deviceId.trim()
  if (deviceId === '') return { ok: false, field: 'deviceId', message: 'Give the device\'s id: the deviceId in the doorbell\'s config, or the camera id typed on its /camera page.' }
  if (!Id.safeParse(deviceId).success) return { ok: false, field: 'deviceId', message: `"${deviceId}" is not a device id (${ID_CHARS}).` }
  const zone = f.zone.trim() || DEFAULT_ZONE
  if (zone.includes(',')) return { ok: false, field: 'zone', message: `A device is in exactly one zone: "${zone}" names several.` }
  if (!Id.safeParse(zone).success) return { ok: false, field: 'zone', message: `"${zone}" is not a zone id (${ID_CHARS}), e.g. CBD-TRAFFIC-01.` }
  return { ok: true, request: { kind: 'device', deviceId, zones: [zone] } }
}

/** Why a browser camera node could not take this id (its page accepts lower-case ids only), or null. */
export function cameraIdProblem (deviceId: string): string | null {
  return checkCameraId(deviceId).ok
    ? null
    : 'A browser camera node takes lower-case letters, digits and dashes only: this id suits a Node doorbell, not /camera.'
}

/** A string as one argument for a POSIX shell, in single quotes. */
export function shellQuote (s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export interface DeviceSetup {
  /** For a Node doorbell, in the repository on the doorbell (device/src/pair.ts). */
  pairCommand: string
  /** For a browser camera node: the hub's `/camera` page with the code (and the id, when /camera takes it). */
  cameraLink: string
}

/**
 * The two ready lines for a device invite. The camera link has the invite URL's origin (where the
 * owner reached the hub) and its code, in the fragment like the invite URL, so no server logs it.
 */
export function deviceSetup (invite: Pick<InviteResponse, 'url'>, deviceId: string): DeviceSetup | null {
  let url: URL
  try {
    url = new URL(invite.url)
  } catch {
    return null
  }
  const code = new URLSearchParams(url.hash.slice(1)).get('code')
  if (!code) return null
  const hash = new URLSearchParams({ code })
  if (cameraIdProblem(deviceId) === null) hash.set('device', deviceId)
  return {
    pairCommand: `npm run pair --workspace device -- ${shellQuote(invite.url)}`,
    cameraLink: `${url.origin}/camera#${hash.toString()}`
  }
}
