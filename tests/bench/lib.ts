/**
 * What every benchmark returns, and the small statistics they share. A figure carries its
 * target (from issue 7) and the conditions it was measured under, so results.json reads
 * on its own.
 */
import { exportPublicKey, generateSigningKey, newId, type Role } from '@doorbell/core'
import type { Hub } from '@doorbell/hub'
import { pairedViewer, type PairedViewer } from '../src/trust'

export type Unit = 'ms' | '%' | 'MB' | 'msg/s' | 'x' | 'viewers'

export interface Figure {
  /** Stable key, e.g. `ring-notify-p99-100`. */
  id: string
  /** What a person reads, e.g. "ring → notification, p99, 100 viewers". */
  name: string
  value: number
  unit: Unit
  /** The figure to beat; `<=` for latencies and sizes, `>=` for throughput. */
  target?: { op: '<=' | '>=', value: number }
  conditions: string
  /** Section of the report: ring, video, door, load, broker. */
  group: string
  /** When the run that measured it started this bench (a partial run keeps older figures). */
  measuredAt?: string
}

export interface BenchOptions {
  /** One short round of each figure: the test suite runs this so the bench never rots. */
  smoke: boolean
  log: (line: string) => void
}

export type Bench = (o: BenchOptions) => Promise<Figure[]>

/** Nearest-rank percentile. */
export function percentile (xs: number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits

/** "p50 / p95 / p99" of the samples, rounded, for the benches' and diagnostics' logs. */
export const spread = (xs: number[], digits = 1): string => [50, 95, 99].map((p) => round(percentile(xs, p), digits)).join(' / ')

export function meets (f: Figure): boolean | null {
  if (!f.target) return null
  return f.target.op === '<=' ? f.value <= f.target.value : f.value >= f.target.value
}

/** Resolves after `ms`; every wait in the benches is bounded. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------- members for the benches

/**
 * A viewer paired through the hub's trust API in this process: the same invite and pairing as
 * POST /api/pair (tests/src/trust.ts), without HTTP, whose per-address pairing limit (10, then
 * one every 30 s) a bench pairing dozens of viewers from 127.0.0.1 would hit.
 */
export async function pairViewerInProcess (hub: Hub, o: { name: string, viewerId?: string, role?: Exclude<Role, 'owner'> }): Promise<PairedViewer> {
  const { code } = await hub.trust.invite('console', { kind: 'viewer', role: o.role ?? 'resident' }, hub.url)
  const keys = await generateSigningKey(false)
  const viewerId = o.viewerId ?? newId('v')
  return pairedViewer(viewerId, keys, await hub.trust.pair({ kind: 'viewer', code, id: viewerId, name: o.name, key: await exportPublicKey(keys.publicKey) }))
}

/** A device member (its MQTT user name and password), paired through the hub's trust API in this process. */
export async function pairDeviceInProcess (hub: Hub, deviceId: string): Promise<{ memberId: string, token: string }> {
  const { code } = await hub.trust.invite('console', { kind: 'device', deviceId }, hub.url)
  const paired = await hub.trust.pair({ kind: 'device', code, id: deviceId, name: deviceId })
  return { memberId: paired.member.id, token: paired.token }
}
