/**
 * What every benchmark returns, and the small statistics they share. A figure carries its
 * target (from issue 7) and the conditions it was measured under, so results.json reads
 * on its own.
 */
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

export function meets (f: Figure): boolean | null {
  if (!f.target) return null
  return f.target.op === '<=' ? f.value <= f.target.value : f.value >= f.target.value
}

/** Resolves after `ms`; every wait in the benches is bounded. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
