import { shallowReactive } from 'vue'
import type { LinkPath } from '@doorbell/machines'

/**
 * Which quick replies a ring banner offers: the hub's list while the hub carries the home (the
 * `lan` path); with the hub down, the doorbell's own list as it answered (docs/audio.md), which is
 * right even if the owner changed it since this page last saw the hub; the hub's last list when
 * the doorbell's could not be read (a guest, who may not play one, still sees why at a press).
 */
export function repliesToOffer (path: LinkPath | null, hubList: readonly string[], doorbellList: readonly string[] | undefined): readonly string[] {
  return path === 'lan' || doorbellList === undefined ? hubList : doorbellList
}

/**
 * Each doorbell's own list, read once per ring while the hub is down (a visitor pressing again
 * repeats the ring's event, not the read: each read costs the doorbell a signature check and counts
 * against this screen's per-sender limit); `read` is `Home.repliesWithoutHub`.
 */
export function doorbellReplies (log: (message: string) => void) {
  const lists = shallowReactive(new Map<string, readonly string[]>())
  const readFor = new Map<string, string>()
  return {
    lists,
    /** A ring on `path`: on the hub's path nothing is read; else, once per ring, the doorbell's list replaces the one held for it. */
    ring (deviceId: string, ringId: string, path: LinkPath | null, read: (deviceId: string) => Promise<string[]>): void {
      if (path === 'lan' || path === null || readFor.get(deviceId) === ringId) return
      readFor.set(deviceId, ringId)
      read(deviceId).then((list) => { lists.set(deviceId, list) }, (err: unknown) => {
        lists.delete(deviceId)
        log(`the quick replies of ${deviceId} could not be read from it: ${(err as Error).message}; offering the hub's last list`)
      })
    },
    offer (deviceId: string, path: LinkPath | null, hubList: readonly string[]): readonly string[] {
      return repliesToOffer(path, hubList, lists.get(deviceId))
    }
  }
}
