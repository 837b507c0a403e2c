/**
 * Open door → "Door open" side by side in one run: two doorbells in their own processes, paired
 * to the same hub, one as shipped and one configured the way it was before a change; the page
 * calls each in turn and opens its door `perBlock` times, for `rounds` rounds, so both see the
 * same machine at nearly the same time (this machine's load moves the tail far more than any
 * change does). `npm run bench -- --only call` runs it when DOORBELL_BENCH_CALL_AB=1.
 */
import type { Page } from 'playwright-core'
import { round, spread } from './lib'
import { firstFrame } from './hops'
import { hopValues, openOnce, openReport, type OpenRound } from './openHops'
import type { DeviceProcess } from './proc'

/**
 * One side: a doorbell, and what to do before each of its blocks (`prepare`: e.g. set its encoder's
 * niceness, when both sides are one doorbell configured two ways in turn; it returns what to log).
 */
export interface Variant { name: string, device: DeviceProcess, prepare?: () => Promise<string> }

/** What the resident saw of the video in each block: Answer → first frame, frames shown (not dropped) per second while opening, and frames dropped. */
export interface BlockVideo { answerToFrame: number, fps: number, dropped: number }

/** The video's frames so far (presented and dropped), read from the element firstFrame kept. */
const VIDEO_FRAMES = `(() => { const q = window.benchVideo.getVideoPlaybackQuality(); return { at: performance.now(), total: q.totalVideoFrames, dropped: q.droppedVideoFrames } })()`

/** The doorbell's guard lets a member open 5 times at once, then once every 2 s: every sample is a real opening. */
const OPEN_BURST = 5
const OPEN_REFILL_MS = 2000

export async function openSideBySide (o: { page: Page, variants: Variant[], rounds: number, perBlock: number, log: (line: string) => void }): Promise<Map<string, OpenRound[]>> {
  const { page } = o
  const results = new Map<string, OpenRound[]>(o.variants.map((v) => [v.name, []]))
  const videos = new Map<string, BlockVideo[]>(o.variants.map((v) => [v.name, []]))
  // The guard's budget is the doorbell's: two sides may be one doorbell.
  const budgets = new Map(o.variants.map((v) => [v.device, new Budget()]))
  for (let r = 0; r < o.rounds; r++) {
    // Alternate which goes first, so neither always follows the other's call set-up.
    const order = r % 2 === 0 ? o.variants : [...o.variants].reverse()
    for (const v of order) {
      if (v.prepare) o.log(`call: side by side, round ${r + 1}, ${v.name}: ${await v.prepare()}`)
      v.device.ring()
      await page.getByTestId('ring-banner').waitFor({ timeout: 15_000 })
      await page.getByTestId('answer').click()
      const frame = await firstFrame(page)
      await page.getByTestId('open-door').waitFor({ timeout: 15_000 })
      const framesFrom = await page.evaluate(VIDEO_FRAMES) as { at: number, total: number, dropped: number }
      for (let i = 0; i < o.perBlock; i++) {
        await page.waitForTimeout(budgets.get(v.device)!.take())
        // A refusal by the guard's rate (seen at the first opening after the bench's own 60) is no
        // opening: said, and tried once more after two refills.
        const one = await openOnce(page, v.device).catch(async (err: Error) => {
          if (!err.message.includes('too many open-door requests')) throw err
          o.log(`call: side by side, ${v.name}: refused by the doorbell's rate, tried again in 4.2 s`)
          await page.mouse.up()
          await page.waitForTimeout(4200)
          return await openOnce(page, v.device)
        })
        results.get(v.name)!.push(one.round)
      }
      const framesTo = await page.evaluate(VIDEO_FRAMES) as { at: number, total: number, dropped: number }
      videos.get(v.name)!.push({ answerToFrame: frame.frameAt - frame.answer, fps: (framesTo.total - framesTo.dropped - framesFrom.total + framesFrom.dropped) / ((framesTo.at - framesFrom.at) / 1000), dropped: framesTo.dropped - framesFrom.dropped })
      await page.getByTestId('hang-up').click()
      await page.getByTestId('ended').waitFor({ timeout: 15_000 })
      await page.getByTestId('seen').click()
      await page.getByTestId('ended').waitFor({ state: 'detached', timeout: 15_000 })
    }
    o.log(`call: side by side, round ${r + 1}/${o.rounds}: ${[...results].map(([name, rs]) => `${name} p50 ${round(median(hopValues(rs, 'shown')))} ms`).join(', ')}`)
  }
  for (const [name, rs] of results) {
    const vs = videos.get(name)!
    o.log(`call: side by side, ${name}: ${openReport(rs)}\n  video per block: Answer → first frame p50 / p95 / p99 ${spread(vs.map((b) => b.answerToFrame))} ms; frames shown per second while opening ${vs.map((b) => round(b.fps)).join(', ')} (median ${round(median(vs.map((b) => b.fps)))}), dropped ${vs.reduce((n, b) => n + b.dropped, 0)}`)
  }
  return results
}

/** The guard's budget for one member on one doorbell, as the bench sees it: how long to wait before the next opening. */
class Budget {
  // Empty at first: the doorbell may have been opened just before (the bench's own opens).
  private tokens = 0
  private at = Date.now()

  /** Takes a token; returns the ms to wait first (with a margin for the doorbell's clock). */
  take (): number {
    const now = Date.now()
    this.tokens = Math.min(OPEN_BURST, this.tokens + (now - this.at) / OPEN_REFILL_MS)
    this.at = now
    const wait = this.tokens >= 1 ? 0 : (1 - this.tokens) * OPEN_REFILL_MS + 100
    this.tokens -= 1
    return wait
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!
}
