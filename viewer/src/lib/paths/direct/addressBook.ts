import { DirectBook, type DirectReach, type Presence } from '@doorbell/core'

/**
 * Where each doorbell can be reached without the hub: learned from its presence while the hub is
 * up, kept in the browser (localStorage) so that a page opened with the hub down still knows.
 * A malformed stored book is ignored, not trusted.
 */
export class AddressBook {
  private readonly entries = new Map<string, DirectReach>()

  constructor (private readonly storage?: Pick<Storage, 'getItem' | 'setItem'>, private readonly key = 'doorbell.direct') {
    const raw = storage?.getItem(key)
    if (!raw) return
    try {
      const parsed = DirectBook.safeParse(JSON.parse(raw))
      if (parsed.success) for (const [id, reach] of Object.entries(parsed.data)) this.entries.set(id, reach)
    } catch {}
  }

  learn (presence: Presence): void {
    if (!presence.direct) return
    const before = JSON.stringify(this.entries.get(presence.deviceId) ?? null)
    if (before === JSON.stringify(presence.direct)) return
    this.entries.set(presence.deviceId, presence.direct)
    this.storage?.setItem(this.key, JSON.stringify(Object.fromEntries(this.entries)))
  }

  list (): Array<{ deviceId: string, reach: DirectReach }> {
    return [...this.entries].map(([deviceId, reach]) => ({ deviceId, reach }))
  }
}
