import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { waitFor } from 'xstate'
import { eventually, startLan } from '../src/harness'
import { openResident } from '../src/browser'
import { inviteCode, pairViewer } from '../src/trust'
import { nodeViewer } from '../src/nodeViewer'
import { chartStates, sequenceEvents } from '../src/inspector'
import { axeViolations, describeViolations } from '../src/axe'

/**
 * The owner fetches a doorbell's kept call trace in the browser (issue 25): Home settings lists
 * the call, "Download" gives the file exactly as the doorbell kept it, and "Open in inspector"
 * opens the inspector in a new tab, which replays the call step by step.
 */
test('Home settings: the owner lists a kept call trace, downloads it, and opens it in the inspector, which replays it', { timeout: 180_000 }, async (t) => {
  const lan = await startLan({ keepTraces: { calls: 3 } })
  t.after(() => lan.stop())
  const owner = await openResident(lan.hub.url, 'Owner phone', await inviteCode(lan.hub, 'owner'))
  t.after(() => owner.close())
  t.after(() => { if (process.exitCode) console.log([...owner.console, ...lan.lines.slice(-60)].join('\n')) })
  const page = owner.page
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })

  // A call answered by a resident's screen (werift in Node): ring, answer, open the door, hang up.
  const resident = await pairViewer(lan.hub, { name: 'Hall phone', role: 'resident' })
  const hall = nodeViewer(lan.hub.mqttUrl, resident)
  t.after(() => hall.close())
  await eventually('the resident\'s screen to see the doorbell', () => hall.home.doorbells.get('front-door'))
  const doorbell = hall.home.doorbell('front-door')
  lan.button.press()
  await waitFor(doorbell, (s) => s.matches('incoming'), { timeout: 5000 })
  hall.home.answer('front-door')
  await waitFor(doorbell, (s) => s.matches({ active: 'connected' }), { timeout: 15_000 })
  hall.home.unlock('front-door')
  await waitFor(doorbell, (s) => s.context.door?.status === 'unlocked', { timeout: 5000 })
  hall.home.hangUp('front-door')
  await eventually('the call\'s trace kept', () => lan.device.traces!.list().length === 1, 15_000)
  const [kept] = lan.device.traces!.list()

  // Home settings: the list, with who joined.
  await page.getByTestId('owner-panel-toggle').click()
  const row = page.getByTestId(`kept-trace-${kept!.id}`)
  await row.waitFor({ timeout: 15_000 })
  assert.match(await row.textContent() ?? '', /Hall phone/)
  const axe = await axeViolations(page, '[data-testid=kept-traces]')
  assert.deepEqual(axe, [], `axe-core finds nothing in the Call traces section:\n${describeViolations(axe)}`)

  // Download: the file as kept.
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('kept-trace-download').click()])
  assert.equal(download.suggestedFilename(), `doorbell-trace-front-door-${kept!.id}.json`)
  assert.equal(await readFile((await download.path())!, 'utf8'), lan.device.traces!.read(kept!.id))

  // Open in inspector: a new tab replays it, paused at its first step.
  const [inspector] = await Promise.all([owner.context.waitForEvent('page'), row.getByTestId('kept-trace-open').click()])
  await inspector.waitForSelector('[data-testid=cursor][data-paused=true]', { timeout: 30_000 })
  assert.equal(new URL(inspector.url()).hash, '', 'the handoff is taken once')
  assert.match(await inspector.getByTestId('cursor').textContent() ?? '', /Trace: Front door · call at .* · step 1 of \d+/)
  const states = new Set<string>()
  for (let i = 0; i < 200; i++) {
    states.add((await chartStates(inspector)).deviceCall ?? '')
    const at = await inspector.getByTestId('cursor').getAttribute('data-time')
    await inspector.getByTestId('step').click()
    if (await inspector.getByTestId('cursor').getAttribute('data-time') === at) break
  }
  for (const state of ['idle', 'ringing']) assert.ok(states.has(state), `the replay steps through ${state} (${[...states].join(', ')})`)
  assert.equal((await chartStates(inspector)).deviceCall, 'idle', 'and back to idle at its end')
  // Stepped to its end, the sequence view shows the whole call.
  const events = new Set((await sequenceEvents(inspector)).map((s) => s.event))
  for (const e of ['PRESS', 'OFFER', 'UNLOCK']) assert.ok(events.has(e), `the replayed sequence has ${e} (${[...events].join(', ')})`)
})
