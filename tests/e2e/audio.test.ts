import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, startLan } from '../src/harness'
import { holdToOpen, openResident, videoIsPlaying, waitForText } from '../src/browser'
import { inviteCode } from '../src/trust'
import { dominantFrequency, pageToneFrequency, readWav, toneWav } from '../src/audio'

/** What the resident says (Chromium's fake microphone) and what the doorbell's microphone hears: two tones a test can tell apart. */
const RESIDENT_HZ = 440
const DOORBELL_HZ = 660
/** An FFT bin at 48 kHz / 16384 is 2.9 Hz; Opus and the analyser keep a tone within a few. */
const near = (hz: number, target: number): boolean => Math.abs(hz - target) < 8

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

  // The doorbell's microphone reaches the page: its tone, found by an analyser on the received track.
  const heard = await pageToneFrequency(kitchen.page)
  assert.ok(near(heard, DOORBELL_HZ), `the page hears ${heard.toFixed(1)} Hz from the doorbell (its microphone is ${DOORBELL_HZ} Hz)`)

  // Not talking yet: the audio line is up, and nothing reaches the speaker.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal(lan.device.audio.speaker.packets, 0, 'no sound from a resident who has not pressed Talk')

  // Talk: the microphone is asked for now (granted), swapped in, and the doorbell plays it.
  await kitchen.page.getByTestId('talk-toggle').click()
  await waitForText(kitchen.page, 'talk-status', /Front door hears you/)
  assert.equal(await kitchen.page.getByTestId('talk-toggle').getAttribute('aria-pressed'), 'true')
  await eventually('the resident\'s voice at the doorbell\'s speaker', () => lan.device.audio.speaker.packets >= 150, 15_000)
  // Stop talking: nothing more is sent.
  await kitchen.page.getByTestId('talk-toggle').click()
  await waitForText(kitchen.page, 'talk-toggle', /^Talk$/)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const afterStop = lan.device.audio.speaker.packets
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.ok(lan.device.audio.speaker.packets - afterStop <= 2, 'talk off sends nothing')

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
  assert.ok(existsSync(said), 'the speaker wrote its WAV')
  const { samples, rate } = readWav(said)
  assert.equal(rate, 48000)
  assert.ok(samples.length > rate * 2, `at least two seconds were played (${(samples.length / rate).toFixed(2)} s)`)
  const tone = dominantFrequency(samples, rate)
  assert.ok(tone.rms > 0.005, `the speaker's sound is not silence (RMS ${tone.rms.toFixed(4)})`)
  t.diagnostic(`page heard ${heard.toFixed(1)} Hz and ${hallHeard.toFixed(1)} Hz; speaker played ${tone.hz.toFixed(1)} Hz (RMS ${tone.rms.toFixed(3)}, ${(samples.length / rate).toFixed(1)} s)`)
  assert.ok(near(tone.hz, RESIDENT_HZ), `the doorbell's speaker played ${tone.hz.toFixed(1)} Hz (the resident's microphone plays ${RESIDENT_HZ} Hz)`)
})
