/** What the "Call traces" list shows of a kept trace (KeptTraces.vue), pure so it is unit-tested. */

/** "45 s", "2 min 5 s". */
export function durationText (ms: number): string {
  const s = Math.round(ms / 1000)
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`
}

/** Who joined the call, or that nobody answered. */
export function whoText (who: readonly string[]): string {
  return who.length === 0 ? 'nobody answered' : who.join(', ')
}

/** The downloaded file's name: the doorbell and the trace's id (the call's start). */
export function keptTraceFileName (deviceId: string, traceId: string): string {
  return `doorbell-trace-${deviceId}-${traceId}.json`
}
