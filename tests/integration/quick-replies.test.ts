import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { NO_CALL_SESSION, RepliesResponse, newId, sign, signReplyCommand, signReplyList, type SignedReplies } from '@doorbell/core'
import { eventually, startLan } from '../src/harness'
import { pairViewer, type PairedViewer } from '../src/trust'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'
import { ringAndAnswer } from '../src/fullCall'
import { waitFor } from 'xstate'
import { readWav, speechOf, toneWav } from '../src/audio'

const DEVICE = 'front-door'

/**
 * Quick replies (issue 17) end to end with real parts: the owner's list saved on the hub, retained
 * for the doorbell, rendered by espeak-ng, and played on a signed command from a werift viewer in
 * a call; the doorbell's speaker is a WAV file, in which the reply must be speech.
 */
test('quick replies: bad lists refused and nothing changes; the owner\'s list reaches the doorbell; a reply plays on the speaker, is refused while another resident talks and without the talk right, and is audited', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-replies-it-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const said = join(dir, 'speaker.wav')
  const lan = await startLan({ audio: { speaker: { kind: 'wav', path: said } } })
  let stopped = false
  t.after(async () => { if (!stopped) await lan.stop() })
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-80).join('\n')) })
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(lan.hub, { name: 'Guest phone', role: 'guest' })

  const put = async (who: PairedViewer, body: unknown): Promise<{ status: number, body: { error?: string } & Partial<RepliesResponse> }> => {
    const res = await fetch(`${lan.hub.url}api/replies`, { method: 'PUT', headers: { Authorization: `Bearer ${who.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() as { error?: string } }
  }
  const get = async (who: PairedViewer): Promise<RepliesResponse> => {
    const res = await fetch(`${lan.hub.url}api/replies`, { headers: { Authorization: `Bearer ${who.token}` } })
    assert.equal(res.status, 200)
    return RepliesResponse.parse(await res.json())
  }
  // Signed by a client that does not check the list first (a bug, or a forger): the hub and the doorbell must.
  const loose = z.strictObject({ home: z.string(), at: z.number(), replies: z.array(z.string()) })
  const signed = async (replies: string[], o: { by?: PairedViewer, key?: PairedViewer } = {}): Promise<SignedReplies> =>
    ({ credential: (o.by ?? owner).credential, list: await sign(loose, { home: owner.homeId, at: Date.now(), replies }, (o.key ?? o.by ?? owner).key) })

  await t.test('bad lists are refused with a clear error, and nothing changes on the hub or the doorbell', async () => {
    const from = lan.lines.length
    const refused: Array<[string, number, RegExp, () => Promise<unknown>]> = [
      ['nine replies', 400, /at most 8 quick replies/, async () => await signed(Array.from({ length: 9 }, (_, i) => `Reply ${i}`))],
      ['a reply of 121 characters', 400, /at most 120 characters/, async () => await signed(['x'.repeat(121)])],
      ['an empty reply', 400, /not empty/, async () => await signed(['  '])],
      ['two replies alike', 400, /two quick replies are the same/, async () => await signed(['Coming!', 'coming!'])],
      ['a reply with a line break', 400, /one line of text/, async () => await signed(['Leave it\nat the door'])],
      ['a list signed by another key than the owner grant\'s', 400, /not signed by Owner phone's key/, async () => await signed(['Hello'], { key: resident })],
      ['a list signed with another member\'s credential', 400, /your own credential/, async () => await signed(['Hello'], { by: resident })],
      ['no list at all', 400, /list/, async () => ({ credential: owner.credential })],
      ['not a signed token', 400, /not a signed token/, async () => ({ credential: owner.credential, list: 'hello' })]
    ]
    for (const [what, status, error, body] of refused) {
      const r = await put(owner, await body())
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`)
      assert.match(r.body.error ?? '', error, what)
    }
    // A resident may not save the owner's list, even one signed correctly by the resident.
    const byResident = await put(resident, await signed(['Hello'], { by: resident }))
    assert.equal(byResident.status, 403)
    assert.deepEqual(await get(owner), { replies: [], at: null, signed: null }, 'the hub has no list')
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.ok(!lan.lines.slice(from).some((l) => /quick replies (changed|ready)/.test(l)), 'the doorbell took nothing')
  })

  const list = ['Leave it at the door', 'We will be right there']
  await t.test('the owner\'s list is kept by the hub, retained for the doorbell, and rendered there', async () => {
    const saved = await put(owner, await signed(list))
    assert.equal(saved.status, 200, JSON.stringify(saved.body))
    assert.deepEqual((await get(resident)).replies, list, 'any member reads it')
    await eventually('the doorbell to render both replies', () => lan.lines.some((l) => /\[device\/replies\] quick replies ready count=2/.test(l)), 30_000)
    // An older list (signed before the one saved) changes nothing.
    const older = await signReplyList({ credential: owner.credential, key: owner.key, home: owner.homeId, replies: ['Old'], now: Date.now() - 60_000 })
    assert.equal((await put(owner, older)).status, 409)
    assert.deepEqual((await get(owner)).replies, list)
  })

  const viewers: NodeViewer[] = []
  t.after(async () => { for (const v of viewers) await v.close() })

  await t.test('from the ring banner, without answering: a signed reply command over the hub\'s MQTT plays on the speaker and is audited', async () => {
    const ownerView = nodeViewer(lan.hub.mqttUrl, owner)
    viewers.push(ownerView)
    await eventually('the owner\'s screen to see the doorbell', () => ownerView.home.doorbells.get(DEVICE))
    lan.button.press()
    await waitFor(ownerView.home.doorbell(DEVICE), (s) => s.matches('incoming'), { timeout: 10_000 })
    const before = lan.device.audio.speaker.packets
    const auditBefore = lan.hub.trust.audit.list({ limit: 1000 }).length
    const command = await signReplyCommand({ credential: owner.credential, key: owner.key, home: owner.homeId, device: DEVICE, session: NO_CALL_SESSION, command: newId('c'), reply: list[1]! })
    const result = await ownerView.home.hub.sendCommand(DEVICE, command)
    assert.ok(result.ok && result.type === 'reply' && (result.durationMs ?? 0) > 500, JSON.stringify(result))
    assert.equal(lan.device.call.getSnapshot().matches('ringing'), true, 'still ringing: nobody answered')
    await new Promise((resolve) => setTimeout(resolve, (result.durationMs ?? 0) + 500))
    const packets = lan.device.audio.speaker.packets - before
    assert.ok(packets >= Math.floor((result.durationMs ?? 0) / 20) - 2, `${packets} packets reached the speaker`)
    // The same command again is a replay; a command for no call cannot serve in a call either.
    const replayed = await ownerView.home.hub.sendCommand(DEVICE, command)
    assert.ok(!replayed.ok && replayed.reason === 'replay', JSON.stringify(replayed))
    const record = await eventually('the played reply in the audit log', () => lan.hub.trust.audit.list({ limit: 1000 }).slice(auditBefore).find((r) => r.kind === 'reply' && r.outcome === 'allowed'))
    assert.equal(record.message, `Owner phone played "${list[1]}"`)
    assert.equal(record.path, 'lan')
    await ownerView.close()
  })

  await t.test('in a call: refused while another resident talks and without the talk right; played, audited and heard on the speaker', async () => {
    const inCall = [owner, resident, guest].map((p) => nodeViewer(lan.hub.mqttUrl, p))
    const [ownerView, kitchenView, guestView] = inCall
    viewers.push(...inCall)
    for (const v of inCall) await eventually('each screen to see the doorbell', () => v.home.doorbells.get(DEVICE))
    lan.button.press()
    for (const v of inCall) await waitFor(v.home.doorbell(DEVICE), (s) => s.matches('incoming'), { timeout: 10_000 })
    // All three answer at once (a screen that sees the call already answered shows it as taken).
    for (const v of inCall) v.home.answer(DEVICE)
    for (const v of inCall) {
      await waitFor(v.home.doorbell(DEVICE), (s) => s.matches({ active: 'connected' }), { timeout: 30_000 })
      await eventually('the call\'s talk link', () => v.talk.get(DEVICE))
    }
    const ownerTalk = ownerView!.talk.get(DEVICE)!
    const kitchenTalk = kitchenView!.talk.get(DEVICE)!

    // The kitchen holds the talk lease: the owner's reply is refused, naming who is talking.
    const taken = await kitchenTalk.request()
    assert.equal(taken.ok, true, JSON.stringify(taken))
    const busy = await ownerTalk.reply(list[0]!)
    assert.deepEqual(busy.ok ? busy : { code: busy.code, holder: busy.holder }, { code: 'busy', holder: 'Kitchen tablet' })
    kitchenTalk.release()

    // A guest has no talk right; a reply the doorbell does not have is refused too.
    const noRight = await guestView!.talk.get(DEVICE)!.reply(list[0]!)
    assert.equal(noRight.ok ? 'played' : noRight.code, 'denied')
    const unknown = await ownerTalk.reply('Go away')
    assert.equal(unknown.ok ? 'played' : unknown.code, 'no-reply')
    const packetsBefore = lan.device.audio.speaker.packets

    // Played: acknowledged with its length; while it plays it holds the floor (the kitchen is refused).
    await eventually('the kitchen\'s lease to be released', async () => {
      const r = await ownerTalk.reply(list[0]!)
      if (!r.ok) { assert.equal(r.code, 'busy'); return null }
      return r
    }, 10_000).then(async (played) => {
      assert.ok(played.durationMs > 500, `the reply lasts ${played.durationMs} ms`)
      const during = await kitchenTalk.request()
      assert.equal(during.ok ? 'granted' : during.code, 'busy', 'the reply holds the floor while it plays')
      await new Promise((resolve) => setTimeout(resolve, played.durationMs + 500))
      const packets = lan.device.audio.speaker.packets - packetsBefore
      assert.ok(packets >= Math.floor(played.durationMs / 20) - 2, `${packets} packets reached the speaker for ${played.durationMs} ms`)
    })

    // The audit log names who played which reply, and the refusals.
    const audit = lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply')
    await eventually('the reply attempts in the audit log', () => lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply').length >= 4, 10_000)
    const records = lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply')
    assert.ok(records.length >= audit.length)
    assert.ok(records.some((r) => r.outcome === 'allowed' && r.actor === 'Owner phone' && r.message === `Owner phone played "${list[0]}"`), JSON.stringify(records))
    assert.ok(records.some((r) => r.outcome === 'denied' && r.reason === 'busy' && r.actor === 'Owner phone'))
    assert.ok(records.some((r) => r.outcome === 'denied' && r.reason === 'no-talk-right' && r.actor === 'Guest phone'))
    assert.ok(records.some((r) => r.outcome === 'denied' && r.reason === 'no-reply'))
  })

  await t.test('the speaker\'s WAV holds the reply: speech, not silence and not a tone', async () => {
    stopped = true
    await lan.stop()
    assert.ok(existsSync(said), 'the speaker wrote its WAV')
    const { samples, rate } = readWav(said)
    const speech = speechOf(samples, rate)
    t.diagnostic(`speaker: ${(samples.length / rate).toFixed(2)} s, RMS ${speech.rms.toFixed(3)}, voiced ${speech.voicedMs} ms, voice band ${(speech.voiceBand * 100).toFixed(1)} %, top 5 % of bins ${(speech.peakShare * 100).toFixed(1)} %`)
    assert.ok(speech.rms > 0.02, `not silence (RMS ${speech.rms.toFixed(4)})`)
    assert.ok(speech.voicedMs >= 600, `${speech.voicedMs} ms of sound`)
    assert.ok(speech.voiceBand > 0.8, `its energy is in the voice band (${(speech.voiceBand * 100).toFixed(1)} %)`)
    // The same measure on a pure tone, so the bound below tells a voice from a tone.
    const tonePath = join(dir, 'tone.wav')
    toneWav(tonePath, 440, 2)
    const tone = readWav(tonePath)
    const toneSpeech = speechOf(tone.samples, tone.rate)
    assert.ok(toneSpeech.peakShare > 0.95, `a tone fills its strongest bins (${(toneSpeech.peakShare * 100).toFixed(1)} %)`)
    assert.ok(speech.peakShare < 0.9, `spread like a voice, not a tone (${(speech.peakShare * 100).toFixed(1)} %)`)
  })
})

test('half duplex: the doorbell\'s microphone (the test tone) stops reaching the call while its speaker plays a reply, and comes back after', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-half-duplex-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const lan = await startLan({ audio: { source: { kind: 'test-tone', frequencyHz: 660 }, speaker: { kind: 'wav', path: join(dir, 'speaker.wav') }, halfDuplex: 'on' } })
  t.after(() => lan.stop())
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-60).join('\n')) })
  assert.ok(lan.device.audio.halfDuplex, 'half duplex is on')
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const put = await fetch(`${lan.hub.url}api/replies`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(await signReplyList({ credential: owner.credential, key: owner.key, home: owner.homeId, replies: ['We will be right there'] }))
  })
  assert.equal(put.status, 200)
  await eventually('the doorbell to render the reply', () => lan.lines.some((l) => /\[device\/replies\] quick replies ready count=1/.test(l)), 30_000)
  const viewer = nodeViewer(lan.hub.mqttUrl, owner)
  t.after(() => viewer.close())
  await eventually('the screen to see the doorbell', () => viewer.home.doorbells.get(DEVICE))
  await ringAndAnswer(lan, viewer, DEVICE)
  const talk = await eventually('the call\'s talk link', () => viewer.talk.get(DEVICE))
  const rate = async (ms: number): Promise<number> => {
    const from = viewer.audioRtp.length
    await new Promise((resolve) => setTimeout(resolve, ms))
    return (viewer.audioRtp.length - from) * 1000 / ms
  }
  await eventually('the doorbell\'s tone at the screen', () => viewer.audioRtp.length > 20, 10_000)
  const before = await rate(600)
  const played = await talk.reply('We will be right there')
  assert.ok(played.ok, JSON.stringify(played))
  // Past the packets in flight, then most of the reply: the microphone is shut.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const during = await rate(Math.max(300, played.durationMs - 500))
  await new Promise((resolve) => setTimeout(resolve, 800))
  const after = await rate(600)
  t.diagnostic(`microphone packets a second at the screen: before ${before.toFixed(0)}, during the reply ${during.toFixed(1)}, after ${after.toFixed(0)}; gated ${lan.device.audio.halfDuplex!.gated}`)
  assert.ok(before > 30, `the tone flows before (${before.toFixed(0)}/s)`)
  assert.ok(during < 3, `nothing while the speaker plays (${during.toFixed(1)}/s)`)
  assert.ok(after > 30, `the tone flows again after (${after.toFixed(0)}/s)`)
  assert.ok(lan.device.audio.halfDuplex!.gated >= Math.floor(played.durationMs / 20) - 10, `${lan.device.audio.halfDuplex!.gated} packets gated`)
})
