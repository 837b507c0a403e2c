import type { AedesOptions, Client } from 'aedes'
import { parseTopic, type Member } from '@doorbell/core'
import { zoneOfDevice, type Principal } from './gate'

/**
 * Which devices the home has and which zone each is in, read from the trust store once and then
 * kept until something changes (a device paired, a member removed or replaced), so the
 * broker's hooks look a device up in a Map instead of reading every member per message.
 */
export interface DeviceDirectory {
  devices: () => readonly string[]
  zonesOf: (deviceId: string) => readonly string[]
  /** Read the trust store again at the next lookup. */
  invalidate: () => void
}

export function deviceDirectory (members: () => readonly Member[]): DeviceDirectory {
  let zones: Map<string, readonly string[]> | null = null
  let ids: readonly string[] = []
  const load = (): Map<string, readonly string[]> => {
    if (zones === null) {
      const live = members().filter((m) => m.kind === 'device' && m.revokedAt === null)
      zones = new Map(live.map((m) => [m.subject, [zoneOfDevice(m)]]))
      ids = [...zones.keys()]
    }
    return zones
  }
  return {
    devices: () => { load(); return ids },
    zonesOf: (deviceId) => load().get(deviceId) ?? [],
    invalidate: () => { zones = null }
  }
}

/**
 * Access checked again when the broker forwards a message (aedes `authorizeForward`), not only at
 * SUBSCRIBE: a device's messages reach a screen only while the device is still paired, and an
 * operator only while the device is in one of the operator's zones. So a device moved to another
 * zone stops reaching the old zone's operators at once, and a removed camera stops reaching open
 * consoles, without anyone resubscribing. Devices and Home Assistant's member are not screens:
 * what they may receive is fixed at SUBSCRIBE. Inspection topics carry viewers' client ids, not
 * devices, and are left to the owner's SUBSCRIBE check.
 */
export function forwardAccess (principalOf: (client: Client) => Principal | undefined, directory: DeviceDirectory): NonNullable<AedesOptions['authorizeForward']> {
  // aedes asks once per subscriber with the same topic: parse it once per message, not per
  // delivery. Only the topic's parse is kept; who may see the device is looked up every time.
  let lastTopic = ''
  let lastParsed: ReturnType<typeof parseTopic> = null
  return (client, packet) => {
    const who = principalOf(client)
    if (who?.kind !== 'viewer') return packet
    if (packet.topic !== lastTopic) { lastParsed = parseTopic(packet.topic); lastTopic = packet.topic }
    const t = lastParsed
    if (t === null || t.kind === 'revocations' || t.kind === 'replies' || t.kind === 'grants' || t.kind === 'inspect') return packet
    const zones = directory.zonesOf(t.device)
    if (zones.length === 0) return null // not (or no longer) a paired device
    if (who.member.role !== 'operator') return packet
    return who.member.zones.some((z) => zones.includes(z)) ? packet : null
  }
}
