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

/** In the page: the next new <video>'s first presented frame, against the named marks; the video is kept as `window.benchVideo`. */
const FIRST_FRAME = `(async () => {
  let video = null
  while (!(video = [...document.querySelectorAll('video')].find((v) => !v.dataset.benchSeen))) await new Promise((r) => setTimeout(r, 2))
  video.dataset.benchSeen = '1'
  window.benchVideo = video
  const frameAt = await new Promise((resolve) => video.requestVideoFrameCallback((now) => resolve(now)))
  const at = (name) => performance.getEntriesByName(name).at(-1)?.startTime ?? NaN
  return { origin: performance.timeOrigin, frameAt, answer: at('doorbell:answer'), offerSent: at('doorbell:offer-sent'), answerReceived: at('doorbell:answer-received'), iceConnected: at('doorbell:ice-connected') }
})()`

/** The next new <video>'s first presented frame and the call's marks, in the page's ms (`origin`: its timeOrigin). */
export const firstFrame = async (page: Page): Promise<Record<'origin' | 'frameAt' | 'answer' | 'offerSent' | 'answerReceived' | 'iceConnected', number>> =>
  await page.evaluate(FIRST_FRAME) as Record<'origin' | 'frameAt' | 'answer' | 'offerSent' | 'answerReceived' | 'iceConnected', number>

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
export function deviceSession (lines: Array<{ text: string }>, since: number, session: string): Record<'offer' | 'admitted' | 'peerMade' | 'answerMade' | 'answered' | 'iceConnected' | 'firstHello' | 'dtlsListening' | 'dtlsConnected' | 'videoOut' | 'connected' | 'takeCallIn' | 'audioOpen' | 'audioOut', number | null> & { hellos: Array<{ at: number, text: string }> } {
  const own = (what: string) => (t: string) => t.includes(`session ${session}]`) && t.includes(what)
  const at = (what: string): number | null => deviceAt(lines, since, own(what))
  return {
    offer: deviceAt(lines, since, (t) => / offer viewer=/.test(t) && t.includes(`session=${session}`)),
    admitted: at('] admitted'),
    peerMade: at('] peer made'),
    answerMade: at('] answer made'),
    answered: at('] answer sent'),
    iceConnected: at('] ice connected'),
    firstHello: at('] dtls hello in'),
    dtlsListening: at('] dtls listening'),
    dtlsConnected: at('] dtls connected'),
    videoOut: at('] video out'),
    connected: at('] peer state=connected'),
    takeCallIn: at('] take-call in'),
    // Logged after the microphone's first packet and `call-taken` left (device/src/answering/session.ts).
    audioOpen: at('] preview answered'),
    // The microphone's first packet handed to the session's sender (device/src/peer/session.ts).
    audioOut: at('] audio out'),
    // Each ClientHello's line (n, cookie, whether the DTLS server listened yet): a lost first hello shows here.
    hellos: lines.flatMap((l) => {
      const at = logTime(l.text)
      return own('] dtls hello in')(l.text) && at !== null && at >= since - 1 ? [{ at, text: l.text.slice(l.text.indexOf('dtls hello in') + 14) }] : []
    })
  }
}

/**
 * The set-up chain of one session, from the screen's decision to connect to its first frame:
 * the page's marks and the doorbell's lines in the order they happen (the doorbell's and the
 * screen's ICE connected are nearly one moment; either may come first).
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
    ['doorbell: ICE settings, peer made', d.peerMade],
    ['doorbell: offer applied, answer made (gathered)', d.answerMade],
    ['doorbell: answer sent', d.answered],
    ['hub: answer relayed to the screen', m('answer-received')],
    ['screen: ICE connected', m('ice-connected')],
    ['doorbell: ICE connected', d.iceConnected],
    ['doorbell: DTLS server listening', d.dtlsListening],
    ['doorbell: DTLS connected', d.dtlsConnected],
    ['doorbell: video out (cached group sent)', d.videoOut],
    ['screen: DTLS done (connected)', m('connected')],
    ['screen: first video packet', m('first-rtp')],
    ['first frame presented', frameAt]
  ]
}

/** How often the viewer's first ClientHello came before werift's DTLS server listened, and how long its resend took, over rounds. */
export class HelloLog {
  rounds = 0
  early = 0
  resent = 0
  /** First hello → the viewer's resend of it (ms), where it resent. */
  readonly resendAfter: number[] = []
  add (hellos: Array<{ at: number, text: string }>): void {
    if (hellos.length === 0) return
    this.rounds++
    if (hellos[0]!.text.includes('listening=false')) this.early++
    const plain = hellos.filter((h) => h.text.includes('cookie=false'))
    if (plain.length > 1) {
      this.resent++
      this.resendAfter.push(plain[1]!.at - plain[0]!.at)
    }
  }

  toString (): string {
    const gap = this.resendAfter.length > 0 ? ` (after p50 ${round(percentile(this.resendAfter, 50))} ms, max ${round(Math.max(...this.resendAfter))} ms)` : ''
    return `the viewer's first DTLS hello came before the doorbell's DTLS server listened in ${this.early}/${this.rounds} sessions; the viewer resent it in ${this.resent}/${this.rounds}${gap}`
  }
}
