/**
 * Where a call's set-up time goes, hop by hop, from timestamps on both ends: the page's User
 * Timing marks (viewer/src/lib/callSession.ts `CALL_MARKS`, home.ts's `doorbell:ring-received`,
 * the card's `doorbell:answer`) and the doorbell's log lines (ISO time, to the millisecond). One
 * machine, one clock: the page's `performance.timeOrigin + startTime` and the log's time are both
 * epoch milliseconds.
 */
import type { Page } from 'playwright-core'
import { percentile, round } from './lib'

export interface Mark { name: string, at: number, session: string | null }

/** Every `doorbell:` mark in the page, as epoch ms, with the session it belongs to. */
export async function pageMarks (page: Page, since: number): Promise<Mark[]> {
  const marks = await page.evaluate(`performance.getEntriesByType('mark')
    .filter((m) => m.name.startsWith('doorbell:'))
    .map((m) => ({ name: m.name, at: performance.timeOrigin + m.startTime, session: m.detail?.sessionId ?? null }))`) as Mark[]
  return marks.filter((m) => m.at >= since)
}

/** The epoch time of a doorbell log line (`2026-12-06T09:43:16.123Z info [...] ...`). */
export function logTime (text: string): number | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /.exec(text)
  return m ? Date.parse(m[1]!) : null
}

/** The first doorbell log line since `since` that `match` accepts, as epoch ms. */
export function deviceAt (lines: Array<{ text: string }>, since: number, match: (text: string) => boolean): number | null {
  for (const { text } of lines) {
    const at = logTime(text)
    if (at !== null && at >= since - 1 && match(text)) return at
  }
  return null
}

/** A chain of named points in time: each hop is the time from the point before it. */
export type Chain = Array<[hop: string, at: number | null]>

/** Hop times gathered over rounds; a hop whose either end is missing is left out of that round. */
export class Hops {
  private readonly samples = new Map<string, number[]>()

  add (chain: Chain): void {
    for (let i = 1; i < chain.length; i++) {
      const [hop, at] = chain[i]!
      const before = chain[i - 1]![1]
      if (at === null || before === null) continue
      const list = this.samples.get(hop) ?? []
      list.push(at - before)
      this.samples.set(hop, list)
    }
  }

  /** Each hop's p50 and p95, in the order first seen. */
  summary (): Array<{ hop: string, p50: number, p95: number, n: number }> {
    return [...this.samples].map(([hop, xs]) => ({ hop, p50: round(percentile(xs, 50)), p95: round(percentile(xs, 95)), n: xs.length }))
  }

  /** One line per hop, for the bench's log. */
  table (title: string): string {
    return [`${title}:`, ...this.summary().map((h) => `  ${h.hop.padEnd(44)} p50 ${String(h.p50).padStart(7)} ms   p95 ${String(h.p95).padStart(7)} ms   (n=${h.n})`)].join('\n')
  }
}

/** A session's own mark (the first with that name). */
export const markOf = (marks: Mark[], name: string, session: string): number | null =>
  marks.find((m) => m.name === `doorbell:${name}` && m.session === session)?.at ?? null

/** The doorbell's log lines for one session: the machine's `offer` line, then the session's own. */
export function deviceSession (lines: Array<{ text: string }>, since: number, session: string): { offer: number | null, admitted: number | null, answered: number | null, connected: number | null, takeCallIn: number | null, audioOpen: number | null } {
  const own = (what: string) => (t: string) => t.includes(`session ${session}]`) && t.includes(what)
  return {
    offer: deviceAt(lines, since, (t) => / offer viewer=/.test(t) && t.includes(`session=${session}`)),
    admitted: deviceAt(lines, since, own('] admitted')),
    answered: deviceAt(lines, since, own('] answer sent')),
    connected: deviceAt(lines, since, own('] peer state=connected')),
    takeCallIn: deviceAt(lines, since, own('] take-call in')),
    audioOpen: deviceAt(lines, since, own('] preview answered'))
  }
}

/**
 * The set-up chain of one session, from the screen's decision to connect to its first frame:
 * the page's marks and the doorbell's lines in the order they happen.
 */
export function setupChain (marks: Mark[], lines: Array<{ text: string }>, since: number, session: string, frameAt: number): Chain {
  const d = deviceSession(lines, since, session)
  const m = (name: string): number | null => markOf(marks, name, session)
  return [
    ['session start', m('session-start')],
    ['screen: ICE gathering', m('gathered')],
    ['screen: offer signed and sent', m('offer-sent')],
    ['hub: offer relayed to the doorbell', d.offer],
    ['doorbell: admits (grant, proof)', d.admitted],
    ['doorbell: peer made, answer sent', d.answered],
    ['hub: answer relayed to the screen', m('answer-received')],
    ['ICE connected', m('ice-connected')],
    ['DTLS done (connected)', m('connected')],
    ['first video packet', m('first-rtp')],
    ['first frame presented', frameAt]
  ]
}
