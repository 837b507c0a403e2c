import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, startLan } from '../src/harness'
import { openResident, waitForText } from '../src/browser'
import { inviteCode } from '../src/trust'
import { readWav, speechOf } from '../src/audio'

const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url))

/**
 * Quick replies in the browser (issue 17): the owner writes the list in Home settings; when the
 * doorbell rings, the banner offers them, and one press plays a reply on the doorbell's speaker
 * without answering (a signed command over the hub). The speaker is a WAV file: the reply must
 * be in it as speech; the audit log names who played which.
 */
test('quick replies: saved in Home settings, played from the ring banner without answering, heard on the speaker and audited', { timeout: 150_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-replies-e2e-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const said = join(dir, 'speaker.wav')
  const lan = await startLan({ audio: { speaker: { kind: 'wav', path: said } } })
  let stopped = false
  t.after(async () => { if (!stopped) await lan.stop() })
  const owner = await openResident(lan.hub.url, 'Owner phone', await inviteCode(lan.hub, 'owner'))
  t.after(() => owner.close())
  t.after(() => { if (process.exitCode) console.log([...owner.console, ...lan.lines.slice(-60)].join('\n')) })
  const page = owner.page
  await page.getByTestId('doorbell-front-door').waitFor({ timeout: 10_000 })

  // Home settings: a bad list is refused on the page and nothing is saved; then a good one.
  await page.getByTestId('owner-panel-toggle').click()
  await page.getByTestId('replies-text').fill(Array.from({ length: 9 }, (_, i) => `Reply ${i}`).join('\n'))
  await page.getByTestId('replies-save').click()
  await waitForText(page, 'replies-error', /at most 8 quick replies/)
  const reply = 'Leave it at the door, please'
  await page.getByTestId('replies-text').fill(`${reply}\nWe will be right there`)
  await page.getByTestId('replies-save').click()
  await waitForText(page, 'replies-note', /Saved 2 quick replies/)
  await eventually('the doorbell to render both replies', () => lan.lines.some((l) => /\[device\/replies\] quick replies ready count=2/.test(l)), 30_000)

  // A ring: the banner offers the replies; one press plays the first without answering.
  lan.button.press()
  await page.getByTestId('ring-banner').waitFor({ timeout: 10_000 })
  await page.getByTestId('quick-reply-banner-0').waitFor({ timeout: 10_000 })
  const before = lan.device.audio.speaker.packets
  await page.getByTestId('quick-reply-banner-0').click()
  await waitForText(page, 'quick-reply-status-banner', /Playing “Leave it at the door, please”/)
  await page.screenshot({ path: `${SCREENSHOTS}/ring-quick-reply.png` })
  await eventually('the reply at the speaker', () => lan.device.audio.speaker.packets >= before + 50, 10_000)
  assert.equal(lan.device.call.getSnapshot().matches('ringing'), true, 'nobody answered: still ringing')
  assert.equal(lan.device.state().participants.length, 0, 'no call was made')
  const record = await eventually('the reply in the audit log', () => lan.hub.trust.audit.list({ limit: 1000 }).find((r) => r.kind === 'reply' && r.outcome === 'allowed'))
  assert.equal(record.actor, 'Owner phone')
  assert.equal(record.message, `Owner phone played "${reply}"`)

  // The speaker's WAV holds the reply as speech.
  await new Promise((resolve) => setTimeout(resolve, 2500))
  stopped = true
  await lan.stop()
  const { samples, rate } = readWav(said)
  const speech = speechOf(samples, rate)
  t.diagnostic(`speaker: ${(samples.length / rate).toFixed(2)} s, RMS ${speech.rms.toFixed(3)}, voiced ${speech.voicedMs} ms, voice band ${(speech.voiceBand * 100).toFixed(1)} %, top 5 % of bins ${(speech.peakShare * 100).toFixed(1)} %`)
  assert.ok(speech.rms > 0.02 && speech.voicedMs >= 600, 'the reply is not silence')
  assert.ok(speech.voiceBand > 0.8 && speech.peakShare < 0.9, 'the reply is a voice, not a tone')
})
