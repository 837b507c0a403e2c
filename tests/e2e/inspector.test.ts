import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AnyStateMachine } from 'xstate'
import type { Page } from 'playwright-core'
import * as machines from '@doorbell/machines'
import { eventually, startLan } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying } from '../src/browser'
import { inviteCode } from '../src/trust'
import { axeViolations, describeViolations } from '../src/axe'
import { chartStates, openInspector, pairOwnerBrowser, scrubTo, sequenceEvents, serveViewerOnly } from '../src/inspector'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

const trail = async (page: Page, name: string): Promise<string[]> =>
  page.locator(`[data-testid="trail-${name}"] li`).allTextContents()

/** Is `wanted` a subsequence of `seen` (in order, gaps allowed)? */
const passedThrough = (seen: string[], wanted: string[]): boolean => {
  let i = 0
  for (const s of seen) if (s === wanted[i]) i++
  return i === wanted.length
}

/** The transitions in a machine's definition, counted straight from XState's state nodes. */
const definedTransitions = (id: string): number => {
  const machine = Object.values(machines).find((m): m is AnyStateMachine => typeof m === 'object' && m !== null && 'root' in m && (m as AnyStateMachine).id === id)
  assert.ok(machine, `a machine with id ${id}`)
  let n = 0
  const walk = (node: AnyStateMachine['root']): void => {
    for (const defs of node.transitions.values()) n += defs.length
    n += node.always?.length ?? 0
    for (const child of Object.values(node.states)) walk(child)
  }
  walk(machine.root)
  return n
}

/** The transitions an actor's chart says it took, oldest first: "label: source → target" and when. */
const fired = async (page: Page, name: string): Promise<Array<{ text: string, at: number }>> =>
  page.locator(`[data-testid="fired-${name}"] li`).evaluateAll((els) => els.map((e) => ({ text: (e.textContent ?? '').trim(), at: Number((e as HTMLElement).dataset.at) })))

const firstAt = (list: Array<{ text: string, at: number }>, text: string): number => {
  const hit = list.find((f) => f.text === text)
  assert.ok(hit, `fired "${text}" (fired: ${list.map((f) => f.text).join(' | ')})`)
  return hit.at
}

test('the inspector draws every transition, lights the ones a call fires, lists the events between lifelines, and replays an exported trace', { timeout: 300_000 }, async (t) => {
  const lan = await startLan({ inspect: true, relockSeconds: 2 }, { inspect: true })
  t.after(() => lan.stop())
  // The inspector is the owner's: it signs in with this browser's owner pairing.
  const { owner: kitchen, token, key } = await pairOwnerBrowser(lan.hub.url.replace(/\/$/, ''), await inviteCode(lan.hub, 'owner'), 'Kitchen tablet')
  t.after(() => kitchen.close())
  await kitchen.page.getByTestId('doorbell-front-door').waitFor()
  const inspector = await openInspector(kitchen, lan.hub.url.replace(/\/$/, ''))
  // Actors started before the page opened arrive with the next roster (every 3 s).
  for (const name of ['deviceCall', 'lock', 'viewerCall:front-door', 'link']) {
    await inspector.getByTestId(`actor-${name}`).locator('svg .transition').first().waitFor({ timeout: 15_000 })
  }

  // Every chart draws one arrow per transition of its machine's definition.
  const charts = await inspector.locator('article[data-machine]').evaluateAll((els) => els.map((e) => ({
    machine: (e as HTMLElement).dataset.machine!,
    arrows: e.querySelectorAll('svg .transition').length
  })))
  for (const c of charts) assert.equal(c.arrows, definedTransitions(c.machine), `${c.machine}: arrows drawn`)
  assert.deepEqual(new Set(charts.map((c) => c.machine)), new Set(['deviceCall', 'lock', 'viewerCall', 'link']))
  const axe = await axeViolations(inspector)
  assert.deepEqual(axe, [], `axe-core finds nothing on the inspector:\n${describeViolations(axe)}`)

  // One window, two tabs: the resident's tab in front while they use it (a hidden tab gets no animation frames).
  await kitchen.page.bringToFront()
  lan.button.press()
  await kitchen.page.getByTestId('ring-banner').waitFor()
  await kitchen.page.getByTestId('answer').click()
  await videoIsPlaying(kitchen.page)
  await holdToOpen(kitchen.page)
  await kitchen.page.waitForSelector('[data-door=unlocked]')
  await kitchen.page.waitForSelector('[data-door=locked]', { timeout: 8000 })

  // Mid-call: the statechart with the call's arrows lit, and a trace of the call so far.
  await inspector.bringToFront()
  await inspector.waitForSelector('[data-testid=actor-deviceCall][data-value=inCall]')
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await mkdir(SCREENSHOTS, { recursive: true })
  await inspector.getByTestId('actor-deviceCall').screenshot({ path: `${SCREENSHOTS}/inspector-statechart.png` })
  await inspector.getByTestId('export-choice').selectOption({ label: (await inspector.getByTestId('export-choice').locator('option', { hasText: 'Call 1' }).textContent())! })
  const [download] = await Promise.all([inspector.waitForEvent('download'), inspector.getByTestId('export').click()])
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-trace-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const tracePath = join(dir, 'call.json')
  await download.saveAs(tracePath)
  const traceText = await readFile(tracePath, 'utf8')
  assert.ok(!traceText.includes(token), 'the trace does not carry the member\'s token')
  assert.ok(!traceText.includes(key), 'the trace does not carry the member\'s key')
  assert.match(traceText, /"format": "doorbell-inspector-trace"/)

  await kitchen.page.bringToFront()
  await kitchen.page.getByTestId('hang-up').click()
  await eventually('the device back to idle', () => lan.device.call.getSnapshot().matches('idle'))

  // Read it off the inspector page, as a developer would.
  await inspector.bringToFront()
  await eventually('the device call machine through ringing, inCall and back to idle', async () =>
    passedThrough(await trail(inspector, 'deviceCall'), ['idle', 'ringing', 'inCall', 'idle']))
  await eventually('the lock through unlocked and back to locked', async () =>
    passedThrough(await trail(inspector, 'lock'), ['locked', 'unlocking', 'unlocked', 'relocking', 'locked']))
  await eventually('the viewer call machine through the call', async () =>
    passedThrough(await trail(inspector, 'viewerCall:front-door'), ['idle', 'incoming.snapshot', 'active.connected.ready', 'ended']))
  // The active state is lit in the drawn statechart, and the arrow that brought it there.
  const lit = await inspector.locator('[data-testid=actor-deviceCall] [data-active=true]').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))
  assert.ok(lit.includes('idle'), `deviceCall shows idle lit (lit: ${lit.join(', ')})`)
  const lastArrow = await inspector.locator('[data-testid=actor-deviceCall] .transition[data-fired=true]').evaluateAll((els) => els.map((e) => e.getAttribute('data-transition')))
  assert.ok(lastArrow.some((id) => id?.startsWith('inCall|')), `the arrow out of inCall is highlighted (${lastArrow.join(', ')})`)

  // Ring, answer, open door, hang up: the arrows that fired, in order.
  const call = await fired(inspector, 'deviceCall')
  const lock = await fired(inspector, 'lock')
  const ring = firstAt(call, 'PRESS: idle → ringing')
  // Answered on the live preview (issue 21): the preview session becomes the call.
  const answer = firstAt(call, 'TAKE_CALL: ringing → inCall')
  const open = firstAt(lock, 'UNLOCK: locked → unlocking')
  const relock = firstAt(lock, 'after relockDelay: unlocked → relocking')
  const hangUp = call.findLast((f) => / inCall → idle$/.test(f.text))
  assert.ok(hangUp, `an arrow from inCall back to idle (${call.map((f) => f.text).join(' | ')})`)
  assert.ok(ring <= answer && answer <= open && open <= relock && relock <= hangUp.at, `in order: ${[ring, answer, open, relock, hangUp.at].join(' ≤ ')}`)

  // The sequence view: the events between the right lifelines.
  const seq = await sequenceEvents(inspector)
  const one = (event: string, from: string, to: string): { at: number } => {
    const hit = seq.find((s) => s.event === event && s.from === from && s.to === to)
    assert.ok(hit, `${event}: ${from} → ${to} in ${JSON.stringify(seq.filter((s) => s.event === event))}`)
    return hit
  }
  one('PRESS', 'Front door · outside', 'Front door · deviceCall')
  one('OFFER_RECEIVED', 'Kitchen tablet · viewerCall:front-door', 'Front door · deviceCall')
  one('OFFER', 'Front door · deviceCall', 'Front door · deviceCall')
  one('UNLOCK', 'Kitchen tablet · viewerCall:front-door', 'Front door · lock')
  one('BYE', 'Front door · deviceCall', 'Front door · deviceCall')
  // Its payload, redacted, and the states around it.
  await inspector.locator('[data-testid=seq-event][data-event=OFFER_RECEIVED]').first().click()
  const payload = await inspector.getByTestId('payload').textContent() ?? ''
  assert.match(payload, /"path": "lan"/)
  assert.match(payload, /"credential": "\[redacted\]"/)
  assert.match(payload, /"proof": "\[redacted\]"/)
  assert.equal(await inspector.getByTestId('state-before').textContent(), 'ringing')
  // Filtered by actor: only the lock's events.
  await inspector.getByTestId('filter-actor').selectOption({ label: 'Front door · lock' })
  assert.ok((await sequenceEvents(inspector)).every((s) => s.to === 'Front door · lock' || s.from === 'Front door · lock'))
  await inspector.getByTestId('filter-actor').selectOption({ value: '' })
  await inspector.screenshot({ path: `${SCREENSHOTS}/inspector.png`, fullPage: false })
  await inspector.locator('section[aria-label="Sequence of events"]').screenshot({ path: `${SCREENSHOTS}/inspector-sequence.png` })

  // Scrub back: every chart as it was then (the times its arrows fired), that step's arrows lit.
  await scrubTo(inspector, ring)
  assert.equal((await chartStates(inspector)).deviceCall, 'ringing')
  assert.equal(await inspector.locator('[data-testid=actor-deviceCall] .transition[data-fired=true]').getAttribute('data-transition'), 'idle|PRESS|0')
  await scrubTo(inspector, open)
  assert.deepEqual([(await chartStates(inspector)).deviceCall, (await chartStates(inspector)).lock], ['inCall', 'unlocking'])
  await inspector.getByTestId('step').click()
  const stepped = Number(await inspector.getByTestId('cursor').getAttribute('data-time'))
  assert.ok(stepped > open, 'a step moves on to the next event')

  // The trace, in a page with no doorbell and no hub: each step shows what the live page showed then.
  const served = await serveViewerOnly()
  t.after(() => served.close())
  const replay = await openResident(`${served.url}/inspector`, 'Replay')
  t.after(() => replay.close())
  await replay.page.getByRole('alert').filter({ hasText: 'A saved trace can still be loaded' }).waitFor()
  await replay.page.getByTestId('load-trace').setInputFiles(tracePath)
  await replay.page.waitForSelector('[data-testid=cursor][data-paused=true]')
  let steps = 0
  for (;;) {
    const at = Number(await replay.page.getByTestId('cursor').getAttribute('data-time'))
    const there = await chartStates(replay.page)
    await scrubTo(inspector, at)
    const here = await chartStates(inspector)
    for (const [name, value] of Object.entries(there)) assert.equal(value, here[name], `${name} at ${at} (step ${steps + 1})`)
    steps++
    await replay.page.getByTestId('step').click()
    if (Number(await replay.page.getByTestId('cursor').getAttribute('data-time')) === at) break
  }
  assert.ok(steps >= 5, `the trace replays step by step (${steps} steps)`)
  assert.ok((await sequenceEvents(replay.page)).some((s) => s.event === 'UNLOCK'), 'the replayed sequence has the unlock')

  // Refused files: a clear message, and the replay stays as it was.
  const cursor = await replay.page.getByTestId('cursor').textContent()
  const refuse = async (name: string, body: string, message: RegExp): Promise<void> => {
    await writeFile(join(dir, name), body)
    await replay.page.getByTestId('load-trace').setInputFiles(join(dir, name))
    await eventually(`${name} refused`, async () => message.test(await replay.page.getByTestId('trace-error').textContent().catch(() => '') ?? ''))
    assert.equal(await replay.page.getByTestId('cursor').textContent(), cursor)
  }
  const trace = JSON.parse(traceText) as { version: number, entries: unknown[] }
  await refuse('newer.json', JSON.stringify({ ...trace, version: trace.version + 1 }), /made by a newer inspector/)
  await refuse('damaged.json', JSON.stringify({ ...trace, entries: [{ nonsense: true }] }), /This trace is damaged: entries\.0/)
  await refuse('huge.json', JSON.stringify({ ...trace, padding: 'x'.repeat(5 * 1024 * 1024) }), /up to 4 MB/)
  await refuse('notes.txt', 'not a trace at all', /not JSON/)
})
