import type { Aedes, Client } from 'aedes'
import type { Member } from '@doorbell/core'
import type { Principal } from '../broker/gate'
import { mayBeWoken } from '../push/ringPush'

/**
 * Who was shown a ring: the members with a screen connected to the broker when it rang, who may
 * see that doorbell (the broker's rule). Their screens got the ring live and showed the banner; a
 * screen that comes back later gets it as over (missed), so it was not shown it. A ring every one
 * of them dismissed is "dismissed by everyone" in the history (docs/history.md).
 */
export function membersShown (d: { broker: () => Aedes, principalOf: (client: Client) => Principal | null, members: () => Member[] }): (deviceId: string) => string[] {
  return (deviceId) => {
    const members = d.members()
    const device = members.find((m) => m.kind === 'device' && m.subject === deviceId)
    const now = Date.now()
    const shown = new Set<string>()
    // aedes keeps its connected clients by id; its typings do not declare the map.
    const clients = (d.broker() as unknown as { clients: Record<string, Client> }).clients
    for (const client of Object.values(clients)) {
      const who = d.principalOf(client)
      if (who?.kind === 'viewer' && mayBeWoken(who.member, device, now)) shown.add(who.member.id)
    }
    return [...shown]
  }
}
