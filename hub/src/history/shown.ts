import type { Aedes, Client } from 'aedes'
import type { Member } from '@doorbell/core'
import type { Principal } from '../broker/gate'
import { mayBeWoken } from '../push/ringPush'

/** One screen shown a ring: its member and its hub connection's client id. */
export interface ShownScreen { memberId: string, screen: string }

/**
 * Who was shown a ring: the screens connected to the broker when it rang whose member may see that
 * doorbell (the broker's rule), by member and screen (the connection's client id: one per tab).
 * They got the ring live and showed the banner; a screen that comes back later gets it as over
 * (missed), so it was not shown it. A ring every one of those screens dismissed is "dismissed by
 * everyone" in the history (docs/history.md).
 */
export function screensShown (d: { broker: () => Aedes, principalOf: (client: Client) => Principal | null, members: () => readonly Member[] }): (deviceId: string) => ShownScreen[] {
  return (deviceId) => {
    const members = d.members()
    const device = members.find((m) => m.kind === 'device' && m.subject === deviceId)
    const now = Date.now()
    const shown: ShownScreen[] = []
    // aedes keeps its connected clients by id; its typings do not declare the map.
    const clients = (d.broker() as unknown as { clients: Record<string, Client> }).clients
    for (const client of Object.values(clients)) {
      const who = d.principalOf(client)
      if (who?.kind === 'viewer' && mayBeWoken(who.member, device, now)) shown.push({ memberId: who.member.id, screen: client.id })
    }
    return shown
  }
}
