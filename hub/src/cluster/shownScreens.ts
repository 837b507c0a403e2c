import type { Member } from '@doorbell/core'
import { mayBeWoken } from '../push/ringPush'
import type { ShownScreen } from '../history/shown'
import type { PresenceSource } from './presence'

/**
 * Who was shown a ring on a cluster (docs/cluster.md): the screens connected to **any** hub when
 * it rang, read from the shared presence in Redis (./presence.ts: each hub's signed-in clients,
 * written at each connection), whose member may see that doorbell (the broker's rule). A screen is
 * one hub connection, its MQTT client id, as on one hub (../history/shown.ts); a member with a
 * phone on hub A and a laptop on hub B has two. The hub the doorbell is connected to notes them
 * with the ring, so "dismissed by everyone" holds whichever hub each screen is on.
 */
export function clusterScreensShown (d: { presence: PresenceSource, members: () => readonly Member[] }): (deviceId: string) => Promise<ShownScreen[]> {
  return async (deviceId) => {
    const connected = await d.presence.list()
    const members = d.members()
    const byId = new Map(members.map((m) => [m.id, m]))
    const device = members.find((m) => m.kind === 'device' && m.subject === deviceId)
    const now = Date.now()
    const shown = new Map<string, ShownScreen>()
    for (const c of connected) {
      const member = byId.get(c.memberId)
      if (c.kind === 'viewer' && member !== undefined && mayBeWoken(member, device, now)) shown.set(c.clientId, { memberId: member.id, screen: c.clientId })
    }
    return [...shown.values()]
  }
}
