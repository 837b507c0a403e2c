import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, startLan } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying, waitForText } from '../src/browser'
import { inviteCode } from '../src/trust'
import { DOORBELL_HZ, RESIDENT_HZ, near, pageToneFrequency, speakerPlayedTone, talkBothWays, toneWav } from '../src/audio'

test('sound both ways: the visitor is heard on the page, the resident who talks is heard on the doorbell\'s speaker; a page without a microphone still hears and opens the door', { timeout: 150_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-audio-e2e-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const voice = join(dir, 'resident.wav')
  toneWav(voice, RESIDENT_HZ, 30)
  const said = join(dir, 'speaker.wav')
  const lan = await startLan({
    relockSeconds: 2,
    audio: { source: { kind: 'test-tone', frequencyHz: DOORBELL_HZ }, speaker: { kind: 'wav', path: said } }
  })
  let lanStopped = false
  t.after(async () => { if (!lanStopped) await lan.stop() })
  const kitchen = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, 'owner'), { microphone: voice })
  t.after(() => kitchen.close())
  const hall = await openResident(lan.hub.url, 'Hall phone', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }), { microphone: 'refused' })
  t.after(() => hall.close())
  t.after(() => { if (process.exitCode) console.log([...kitchen.console, ...hall.console, ...lan.lines.slice(-60)].join('\n')) })

  for (const page of [kitchen.page, hall.page]) {
    await page.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })
    await page.waitForSelector('[data-testid=link][data-up=true]')
  }
  lan.button.press()
  await kitchen.page.getByTestId('ring-banner').waitFor({ timeout: 5000 })
  await kitchen.page.getByTestId('answer').click()
  await videoIsPlaying(kitchen.page)

  // The doorbell's tone on the page; the resident's voice at the speaker only while Talk is on.
  const heard = await talkBothWays(kitchen.page, () => lan.device.audio.speaker.packets)

  // Hold to talk: heard while held (the microphone already granted), silent once let go.
  const hold = kitchen.page.getByTestId('hold-to-talk')
  const box = (await hold.boundingBox())!
  const beforeHold = lan.device.audio.speaker.packets
  await kitchen.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2)
  await kitchen.page.mouse.down()
  await eventually('the held voice at the speaker', () => lan.device.audio.speaker.packets >= beforeHold + 50, 10_000)
  await kitchen.page.mouse.up()
  await new Promise((resolve) => setTimeout(resolve, 500))
  const afterLetGo = lan.device.audio.speaker.packets
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.ok(lan.device.audio.speaker.packets - afterLetGo <= 2, 'letting go sends nothing')

  // A page whose microphone is refused joins, hears the doorbell, is told why it cannot talk, and opens the door.
  await hall.page.getByTestId('answer').click()
  await videoIsPlaying(hall.page)
  const hallHeard = await pageToneFrequency(hall.page)
  assert.ok(near(hallHeard, DOORBELL_HZ), `the page without a microphone hears ${hallHeard.toFixed(1)} Hz`)
  await hall.page.getByTestId('talk-toggle').click()
  await waitForText(hall.page, 'talk-status', /Talk is off: the microphone was not allowed.*still listen/)
  assert.equal(await hall.page.getByTestId('talk-status').getAttribute('data-talk'), 'unavailable')
  assert.equal(await hall.page.getByTestId('talk-toggle').isDisabled(), true)
  // Listening goes on after the refusal.
  assert.ok(near(await pageToneFrequency(hall.page), DOORBELL_HZ), 'still hears the doorbell after the microphone was refused')
  await holdToOpen(hall.page)
  await eventually('the relay to open', () => lan.printed.includes('DOOR UNLOCKED'))
  await waitForText(hall.page, 'door-status', /Door open/)

  // The speaker's WAV (closed when the doorbell stops) holds the resident's tone.
  for (const page of [kitchen.page, hall.page]) await page.getByTestId('hang-up').click()
  lanStopped = true
  await lan.stop()
  const tone = speakerPlayedTone(said)
  t.diagnostic(`page heard ${heard.toFixed(1)} Hz and ${hallHeard.toFixed(1)} Hz; speaker played ${tone.hz.toFixed(1)} Hz (RMS ${tone.rms.toFixed(3)}, ${tone.seconds.toFixed(1)} s)`)
})
