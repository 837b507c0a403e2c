import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, startLan } from '../src/harness'
import { openResident, videoIsPlaying, waitForText } from '../src/browser'
import { inviteCode } from '../src/trust'
import { toneWav } from '../src/audio'

/**
 * The talk lease between two residents in one call, in real Chromium against the real doorbell:
 * one talker at a time, the second told who holds it, every screen shown who is talking, and the
 * lease passing on release and on hang-up.
 */
test('two residents: the second asking to talk is refused with who is talking; every screen shows the talker; the lease passes after release and hang-up', { timeout: 150_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-talk-e2e-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const kitchenVoice = join(dir, 'kitchen.wav')
  const hallVoice = join(dir, 'hall.wav')
  toneWav(kitchenVoice, 440, 30)
  toneWav(hallVoice, 880, 30)
  const lan = await startLan({ audio: { source: { kind: 'test-tone', frequencyHz: 660 }, speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  t.after(() => lan.stop())
  const kitchen = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, 'owner'), { microphone: kitchenVoice })
  t.after(() => kitchen.close())
  const hall = await openResident(lan.hub.url, 'Hall phone', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }), { microphone: hallVoice })
  t.after(() => hall.close())
  t.after(() => { if (process.exitCode) console.log([...kitchen.console, ...hall.console, ...lan.lines.slice(-80)].join('\n')) })

  for (const page of [kitchen.page, hall.page]) {
    await page.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })
    await page.waitForSelector('[data-testid=link][data-up=true]')
  }
  lan.button.press()
  for (const page of [kitchen.page, hall.page]) {
    await page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
    await page.getByTestId('answer').click()
    await videoIsPlaying(page)
  }

  // Kitchen takes the lease: its screen says "You are talking", the other names it.
  await kitchen.page.getByTestId('talk-toggle').click()
  await waitForText(kitchen.page, 'talk-status', /Front door hears you/)
  await waitForText(kitchen.page, 'talker', /^\s*You are talking\s*$/)
  await waitForText(hall.page, 'talker', /Kitchen tablet is talking/)
  await eventually('the kitchen\'s voice at the speaker', () => lan.device.audio.speaker.packets >= 50, 10_000)

  // Hall asks while Kitchen holds it: refused, told who is talking, nothing swapped in.
  await hall.page.getByTestId('talk-toggle').click()
  await waitForText(hall.page, 'talk-status', /Kitchen tablet is talking/)
  assert.equal(await hall.page.getByTestId('talk-status').getAttribute('data-talk'), 'off')
  assert.equal(await hall.page.getByTestId('talk-toggle').getAttribute('aria-pressed'), 'false')

  // Kitchen lets go: the lease is free on every screen; Hall may now talk, and is heard.
  await kitchen.page.getByTestId('talk-toggle').click()
  for (const page of [kitchen.page, hall.page]) await waitForText(page, 'talker', /^\s*$/)
  const beforeHall = lan.device.audio.speaker.packets
  await hall.page.getByTestId('talk-toggle').click()
  await waitForText(hall.page, 'talk-status', /Front door hears you/)
  await waitForText(kitchen.page, 'talker', /Hall phone is talking/)
  await eventually('the hall\'s voice at the speaker', () => lan.device.audio.speaker.packets >= beforeHall + 50, 10_000)

  // Kitchen asks now: refused, naming Hall.
  await kitchen.page.getByTestId('talk-toggle').click()
  await waitForText(kitchen.page, 'talk-status', /Hall phone is talking/)

  // Hall hangs up while talking: the lease passes; Kitchen talks again.
  await hall.page.getByTestId('hang-up').click()
  await waitForText(kitchen.page, 'talker', /^\s*$/)
  await kitchen.page.getByTestId('talk-toggle').click()
  await waitForText(kitchen.page, 'talker', /^\s*You are talking\s*$/)

  // Every request to talk, allowed or refused, is in the audit log the device reports to the hub.
  await eventually('the talk lines in the hub\'s audit log', () => {
    const talk = lan.hub.trust.audit.all().filter((r) => r.kind === 'talk')
    return talk.filter((r) => r.outcome === 'allowed').length >= 3 && talk.filter((r) => r.reason === 'busy').length >= 2
  }, 10_000)
})
