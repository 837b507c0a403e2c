import { Id } from './ids'

/**
 * Topic layout (MQTT on the LAN hub; the cloud bridge keeps the same tail):
 *
 *   doorbell/{home}/{device}/ring                                   ring events, QoS 1, not retained
 *   doorbell/{home}/{device}/state                                  device state, QoS 1, retained
 *   doorbell/{home}/{device}/presence                               online/offline, retained, also the will
 *   doorbell/{home}/{device}/calls                                  call records, QoS 1
 *   doorbell/{home}/{source}/inspect                                inspection batches, QoS 0, only when on
 *   doorbell/{home}/{device}/audit                                  the device's open-door attempts, QoS 1
 *   doorbell/{home}/revocations                                     the home's signed revocation list, retained, hub only
 *   doorbell/{home}/{device}/session/{viewer}/{session}/to-device   signaling, viewer -> device
 *   doorbell/{home}/{device}/session/{viewer}/{session}/to-viewer   signaling, device -> viewer
 *
 * The viewer id is its own topic level so that the broker's ACL can bind a session to the
 * client that owns it.
 */
export const ROOT = 'doorbell'

export type DeviceTopicKind = 'ring' | 'state' | 'presence' | 'calls' | 'inspect' | 'audit'
export type SessionDirection = 'to-device' | 'to-viewer'

export type ParsedTopic =
  | { kind: DeviceTopicKind, home: string, device: string }
  | { kind: SessionDirection, home: string, device: string, viewer: string, session: string }
  | { kind: 'revocations', home: string }

export const topics = {
  ring: (home: string, device: string) => `${ROOT}/${home}/${device}/ring`,
  state: (home: string, device: string) => `${ROOT}/${home}/${device}/state`,
  presence: (home: string, device: string) => `${ROOT}/${home}/${device}/presence`,
  calls: (home: string, device: string) => `${ROOT}/${home}/${device}/calls`,
  audit: (home: string, device: string) => `${ROOT}/${home}/${device}/audit`,
  revocations: (home: string) => `${ROOT}/${home}/revocations`,
  /** `source` is a device id, or a viewer tab's client id. */
  inspect: (home: string, source: string) => `${ROOT}/${home}/${source}/inspect`,
  /** What the inspector page subscribes to. */
  homeInspection: (home: string) => `${ROOT}/${home}/+/inspect`,
  session: (home: string, device: string, viewer: string, session: string, dir: SessionDirection) =>
    `${ROOT}/${home}/${device}/session/${viewer}/${session}/${dir}`,

  /** What a viewer subscribes to: every device of its home. */
  homeEvents: (home: string) => [
    `${ROOT}/${home}/+/ring`,
    `${ROOT}/${home}/+/state`,
    `${ROOT}/${home}/+/presence`,
    `${ROOT}/${home}/+/calls`
  ],
  /** Every answer addressed to one viewer, whichever device or session. */
  viewerInbox: (home: string, viewer: string) => `${ROOT}/${home}/+/session/${viewer}/+/to-viewer`,
  /** Every offer addressed to one device. */
  deviceInbox: (home: string, device: string) => `${ROOT}/${home}/${device}/session/+/+/to-device`
}

const isId = (s: string | undefined): s is string => s !== undefined && Id.safeParse(s).success

/** Parses a concrete topic (no wildcards); null if it is not one of ours. */
export function parseTopic (topic: string): ParsedTopic | null {
  const p = topic.split('/')
  if (p.length === 3 && p[0] === ROOT && isId(p[1]) && p[2] === 'revocations') return { kind: 'revocations', home: p[1] }
  if (p[0] !== ROOT || !isId(p[1]) || !isId(p[2])) return null
  const home = p[1]
  const device = p[2]
  if (p.length === 4) {
    const kind = p[3]
    if (kind === 'ring' || kind === 'state' || kind === 'presence' || kind === 'calls' || kind === 'inspect' || kind === 'audit') {
      return { kind, home, device }
    }
    return null
  }
  if (p.length === 7 && p[3] === 'session' && isId(p[4]) && isId(p[5])) {
    const dir = p[6]
    if (dir === 'to-device' || dir === 'to-viewer') {
      return { kind: dir, home, device, viewer: p[4], session: p[5] }
    }
  }
  return null
}
