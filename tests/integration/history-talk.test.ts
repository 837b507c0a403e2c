import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HubApi } from '@doorbell/viewer/lib'
import { startLan, eventually } from '../src/harness'
import { pairViewer } from '../src/trust'
import { nodeViewer } from '../src/nodeViewer'
import { ringAndAnswer } from '../src/fullCall'

/**
 * How long someone talked, with real parts (the doorbell's talk lease and audit outbox, the hub's
 * Aedes, audit log and history, the viewer's own Home and talk link on mqtt.js and werift): the
 * doorbell reports the lease's end with the talk, and the history's talk event has its duration.
 */

const DEVICE = 'front-door'

test('a talk in a call: the history\'s talk event says how long it lasted; the audit log has the request and its end', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-talk-history-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const lan = await startLan({ audio: { speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  t.after(() => lan.stop())
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const viewer = nodeViewer(lan.hub.mqttUrl, owner)
  t.after(() => viewer.close())
  await eventually('the screen to see the doorbell', () => viewer.home.doorbells.get(DEVICE))
  await ringAndAnswer(lan, viewer, DEVICE)
  const talk = await eventually('the call\'s talk link', () => viewer.talk.get(DEVICE))

  const asked = Date.now()
  const answer = await talk.request()
  assert.ok(answer.ok, JSON.stringify(answer))
  // Released well inside the 2 s silence window (this screen sends no sound).
  await new Promise((resolve) => setTimeout(resolve, 900))
  talk.release()
  const released = Date.now()

  const api = new HubApi({ base: lan.hub.url, token: owner.token })
  const event = await eventually('the talk\'s duration in the history', async () => {
    const e = (await api.events({ filter: 'talk' })).events[0]
    return e?.durationMs != null ? e : null
  }, 15_000)
  assert.deepEqual([event.kind, event.outcome, event.who], ['talk', 'allowed', ['Owner phone']])
  assert.ok(event.durationMs! >= 500 && event.durationMs! <= released - asked + 500, `${event.durationMs} ms talked, ${released - asked} ms between asking and letting go here`)
  assert.equal((await api.events({ filter: 'talk' })).events.length, 1, 'the end is not an event of its own')
  const audit = lan.hub.trust.audit.all().filter((r) => r.kind === 'talk')
  assert.equal(audit.length, 2)
  assert.match(audit[1]!.message, /^Owner phone stopped talking after \d+ s$/)
  t.diagnostic(`talked ${event.durationMs} ms`)
})
