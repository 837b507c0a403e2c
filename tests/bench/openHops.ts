/**
 * Where one opening's time goes, for the slow rounds as well as the typical one (issue 21: open
 * door → "Door open" p99). Each hop is on one clock: the page's User Timing marks for the page's
 * hops, the doorbell's own `open-door timing` line (door.ts: `performance.now()` spans, logged
 * after the ack) for its hops. The transport hop is the page's wait minus the doorbell's share:
 * both directions over SCTP/DTLS/UDP, plus any wait before the doorbell's loop read the packet.
 */
import type { Page } from 'playwright-core'
import { round, spread } from './lib'
import type { DeviceProcess } from './proc'

/** One opening, in ms. */
export interface OpenRound {
  /** Hold complete → "Door open" shown (the figure). */
  shown: number
  /** Hold complete → the signed command sent (the page). */
  sign: number
  /** Sent → the report "Door open" is shown from arrived (the page). */
  wait: number
  /** Of `wait`, on the doorbell: the command read → the viewer told the door is open. */
  doorbell: number | null
  /** Of `doorbell`: the guard's checks, and the lock (machine and relay). */
  guard: number | null
  lock: number | null
  /** `wait` − `doorbell`: the network stacks both ways and the wait for each end's loop. */
  transport: number | null
  /** The report arrived → "Door open" in the page (Vue, the call machine). */
  render: number
}

/** The doorbell's `open-door timing` line (door.ts), as numbers (null: a step that did not happen). */
export function doorbellTiming (text: string): { parse: number | null, guard: number | null, lock: number | null, told: number | null, ack: number | null } | null {
  if (!text.includes('open-door timing')) return null
  const field = (name: string): number | null => {
    const m = new RegExp(` ${name}=(null|[0-9.]+)`).exec(text)
    return m === null || m[1] === 'null' ? null : Number(m[1])
  }
  return { parse: field('parse'), guard: field('guard'), lock: field('lock'), told: field('told'), ack: field('ack') }
}

/**
 * One round from the page's times (hold complete, sent, the last report before "Door open" was
 * shown, shown) and the doorbell's timing line. The page's marks are on its clock, the doorbell's
 * spans on its own: only differences within each are used.
 */
export function openRound (page: { mark: number, sent: number, told: number, shown: number }, line: string | undefined): OpenRound {
  const d = line === undefined ? null : doorbellTiming(line)
  const wait = page.told - page.sent
  const doorbell = d?.told ?? null
  return {
    shown: page.shown - page.mark,
    sign: page.sent - page.mark,
    wait,
    doorbell,
    guard: d?.guard ?? null,
    lock: d?.lock ?? null,
    transport: doorbell === null ? null : wait - doorbell,
    render: page.shown - page.told
  }
}

const HOPS = ['sign', 'wait', 'doorbell', 'guard', 'lock', 'transport', 'render'] as const

/** A hop's samples over the rounds that have it. */
export const hopValues = (rounds: OpenRound[], hop: keyof OpenRound): number[] =>
  rounds.map((r) => r[hop]).filter((v): v is number => v !== null && Number.isFinite(v))

/** p50 / p95 / p99 of every hop, and the slowest rounds hop by hop: what the bench logs. */
export function openReport (rounds: OpenRound[], slowest = 5): string {
  const stats = (xs: number[]): string => spread(xs)
  const lines = [`open door over ${rounds.length} rounds, p50 / p95 / p99 ms: shown ${stats(hopValues(rounds, 'shown'))}`]
  for (const hop of HOPS) lines.push(`  ${hop.padEnd(10)} ${stats(hopValues(rounds, hop))}`)
  lines.push(`  slowest ${Math.min(slowest, rounds.length)} rounds (ms): ${HOPS.join(' | ')}`)
  for (const r of [...rounds].sort((a, b) => b.shown - a.shown).slice(0, slowest)) {
    lines.push(`    shown ${round(r.shown)}: ${HOPS.map((h) => r[h] === null ? '-' : round(r[h])).join(' | ')}`)
  }
  return lines.join('\n')
}

/**
 * One opening in a call already up: wait for "Locked" and the button, hold it, wait for "Door
 * open" (a MutationObserver the caller installed sets `window.openShownAt`), then read the page's
 * marks and the doorbell's lines. Also the older hops (`hop`, call.ts's `open-hop-*` figures):
 * sign, sent → first word back, checked → lock open from the log's ms times, first word → shown.
 */
export async function openOnce (page: Page, device: DeviceProcess): Promise<{ round: OpenRound, actuated: number | null, hop: { sign: number, roundTrip: number, lock: number, render: number } }> {
  // Locked, and no door shown open anywhere on the page (a second doorbell's card included): the observer looks page-wide.
  await page.waitForFunction(() => document.querySelector('[data-door=locked]') !== null && document.querySelector('[data-door=unlocked]') === null, undefined, { timeout: 5000 })
  await page.waitForFunction(() => !(document.querySelector('[data-testid=open-door]') as HTMLButtonElement).disabled)
  await page.evaluate('window.openShownAt = 0; for (const m of ["doorbell:open-door", "doorbell:command-sent", "doorbell:reply-received"]) performance.clearMarks(m)')
  const box = (await page.getByTestId('open-door').boundingBox())!
  const printedBefore = device.lines.length
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
  await page.mouse.down()
  // Read by the observer: at a relock of 0.2 s the "Door open" text may be gone before a poll sees it.
  // A function, not a string: the hub's Content-Security-Policy forbids the eval a string predicate needs.
  await page.waitForFunction(() => (window as unknown as { openShownAt: number }).openShownAt > 0, undefined, { timeout: 5000, polling: 'raf' }).catch(async (err: Error) => {
    // Say what the page and the doorbell said instead.
    const shown = await page.evaluate(() => [...document.querySelectorAll('[data-testid=door-status], [data-testid=command-error]')].map((e) => e.textContent).join(' | ')).catch(() => '?')
    throw new Error(`${err.message}\n  the page shows: ${shown}\n  the doorbell printed:\n${device.lines.slice(printedBefore).map((l) => `    ${l.text}`).join('\n')}`)
  })
  await page.mouse.up()
  const t = await page.evaluate(`(() => {
    const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN
    const sent = at('doorbell:command-sent')
    const shown = window.openShownAt
    const replies = performance.getEntriesByName('doorbell:reply-received').filter((m) => m.startTime >= sent)
    // The report "Door open" was shown from: the last to arrive before it was.
    const told = replies.filter((m) => m.startTime <= shown).at(-1)?.startTime ?? NaN
    return { mark: at('doorbell:open-door'), sent, reply: replies[0]?.startTime ?? NaN, told, shown, origin: performance.timeOrigin }
  })()`) as { mark: number, sent: number, reply: number, told: number, shown: number, origin: number }
  // The doorbell logs its own spans once the ack is sent: give the line a moment to arrive.
  const deadline = Date.now() + 2000
  let timing: string | undefined
  while ((timing = device.lines.slice(printedBefore).find((l) => l.text.includes('open-door timing'))?.text) === undefined && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const printed = device.lines.slice(printedBefore)
  const actuated = printed.find((l) => l.text.includes('DOOR UNLOCKED'))
  const round = openRound(t, timing)
  return {
    round,
    actuated: actuated ? actuated.at - (t.origin + t.mark) : null,
    // The lock's hop from the doorbell's own spans (checked → lock open), as the round's.
    hop: { sign: t.sent - t.mark, roundTrip: t.reply - t.sent, lock: round.lock ?? NaN, render: t.shown - t.reply }
  }
}
