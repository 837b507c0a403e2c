import type { ZonesResponse } from '@doorbell/core'

/** "Camera 2" before "Camera 10". */
const natural = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true })

/** One zone of the console: its heading and its cameras, in the order the grid shows them. */
export interface ZoneGroup {
  zone: string
  devices: Array<{ deviceId: string, name: string }>
}

/**
 * The hub's zones (GET /api/zones, already limited to the operator's) as the grid shows them:
 * zones by name, cameras by name (numbers in order: 2 before 10); a camera listed twice appears once (in its first zone).
 */
export function zoneGroups (res: ZonesResponse): ZoneGroup[] {
  const seen = new Set<string>()
  return [...res.zones]
    .sort((a, b) => natural(a.zone, b.zone))
    .map((z) => ({
      zone: z.zone,
      devices: [...z.devices]
        .sort((a, b) => natural(a.name, b.name) || natural(a.deviceId, b.deviceId))
        .filter((d) => { if (seen.has(d.deviceId)) return false; seen.add(d.deviceId); return true })
        .map((d) => ({ deviceId: d.deviceId, name: d.name }))
    }))
}

/**
 * Columns and rows of the grid for this many cameras: as square as it goes, at most four columns
 * (sixteen tiles fill a 1920×1080 screen as 4×4). Each zone starts on its own row.
 */
export function gridShape (groups: ZoneGroup[]): { cols: number, rows: number, zones: number } {
  const count = groups.reduce((n, g) => n + g.devices.length, 0)
  const cols = Math.max(1, Math.min(4, Math.ceil(Math.sqrt(count))))
  const rows = groups.reduce((n, g) => n + Math.ceil(g.devices.length / cols), 0)
  return { cols, rows: Math.max(1, rows), zones: groups.length }
}
