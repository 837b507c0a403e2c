import { test } from 'node:test'
import assert from 'node:assert/strict'
import { shallowRef } from 'vue'
import { consoleTalk } from '../src/console/consoleTalk'
import type { TileFeed } from '../src/console/tileFeed'
import type { TalkAnswer, TalkLink, TalkerView } from '../src/lib/talkLink'

const mic = { kind: 'audio', stop () {} }
const microphone = async () => ({ getAudioTracks: () => [mic] }) as unknown as MediaStream

/**
 * One tile's call as the console's talk sees it: an audio sender that records what was swapped
 * in, and a lease that answers as told (after `delayMs`), with every call logged in `log`.
 */
function tile (id: string, log: string[], answers: TalkAnswer[], delayMs = 0) {
  const listeners = new Set<(v: TalkerView) => void>()
  const link: TalkLink = {
    request: async () => {
      log.push(`${id}:talk`)
      await new Promise((resolve) => setTimeout(resolve, delayMs))
      const a = answers.shift() ?? { ok: false, code: 'no-answer', message: 'no answer', holder: null }
      if (a.ok) for (const l of listeners) l({ talker: { session: id, viewerId: 'op', name: 'Night desk' }, self: true, ended: null })
      return a
    },
    renew: async () => { log.push(`${id}:renew`); return { ok: true, leaseMs: 60_000 } },
    release: () => { log.push(`${id}:release`) },
    onTalker: (l) => { listeners.add(l); return () => { listeners.delete(l) } }
  }
  const sender = { replaceTrack: async (t: unknown) => { log.push(`${id}:${t === null ? 'silent' : 'mic'}`) } }
  return { deviceId: id, sender: shallowRef(sender), link: shallowRef(link) } as unknown as TileFeed
}

const OK: TalkAnswer = { ok: true, leaseMs: 60_000 }

test('one tile talks at a time: talking to another camera first lets go of the one before (nothing more sent to it, its lease released)', async () => {
  const log: string[] = []
  const tiles = new Map([['gate', tile('gate', log, [OK])], ['pier', tile('pier', log, [OK])]])
  const talk = consoleTalk((id) => tiles.get(id), microphone)
  await talk.start('gate')
  assert.equal(talk.active.value, 'gate')
  assert.equal(talk.stateOf('gate').state, 'talking')
  assert.deepEqual(log, ['gate:talk', 'gate:mic'])
  await talk.start('pier')
  assert.deepEqual(log, ['gate:talk', 'gate:mic', 'gate:silent', 'gate:release', 'pier:talk', 'pier:mic'])
  assert.deepEqual([talk.stateOf('gate').state, talk.stateOf('pier').state], ['off', 'talking'])
  await talk.stop('gate')
  assert.equal(talk.stateOf('pier').state, 'talking', 'stopping another tile changes nothing')
  await talk.stop('pier')
  assert.deepEqual(log.slice(-2), ['pier:silent', 'pier:release'])
  assert.equal(talk.stateOf('pier').state, 'off')
})

test('a refusal shows on the tile that asked, with why; the other tiles show nothing', async () => {
  const log: string[] = []
  const tiles = new Map([
    ['gate', tile('gate', log, [{ ok: false, code: 'denied', message: 'Night desk may not talk on this doorbell (the owner can allow it)', holder: null }])],
    ['pier', tile('pier', log, [{ ok: false, code: 'busy', message: 'Sam is talking', holder: 'Sam' }])]
  ])
  const talk = consoleTalk((id) => tiles.get(id), microphone)
  await talk.start('gate')
  assert.deepEqual(talk.stateOf('gate'), { state: 'off', reason: 'Talk refused: Night desk may not talk on this doorbell (the owner can allow it)' })
  assert.deepEqual(talk.stateOf('pier'), { state: 'off', reason: null })
  await talk.start('pier')
  assert.deepEqual(talk.stateOf('pier'), { state: 'off', reason: 'Sam is talking' })
  assert.deepEqual(talk.stateOf('gate'), { state: 'off', reason: null })
  assert.ok(!log.some((l) => l.endsWith(':mic')), 'nothing was sent to a camera that refused')
})

test('a hold let go while the camera is still answering: the lease is released at once and nothing is sent', async () => {
  const log: string[] = []
  const tiles = new Map([['gate', tile('gate', log, [OK], 50)]])
  const talk = consoleTalk((id) => tiles.get(id), microphone)
  const pressed = talk.start('gate', { hold: true })
  await new Promise((resolve) => setTimeout(resolve, 10))
  await talk.stop('gate')
  await pressed
  assert.equal(talk.stateOf('gate').state, 'off')
  assert.ok(!log.includes('gate:mic'), `nothing sent: ${log.join(', ')}`)
  assert.ok(log.includes('gate:release'), 'the lease taken meanwhile is released')
  assert.ok(!log.includes('gate:renew'))
})

test('switching tiles while the first is still being answered: the first ends up silent and released, only the second talks', async () => {
  const log: string[] = []
  const tiles = new Map([['gate', tile('gate', log, [OK], 40)], ['pier', tile('pier', log, [OK])]])
  const talk = consoleTalk((id) => tiles.get(id), microphone)
  const first = talk.start('gate')
  await new Promise((resolve) => setTimeout(resolve, 5))
  const second = talk.start('pier')
  await Promise.all([first, second])
  assert.equal(talk.active.value, 'pier')
  assert.equal(talk.stateOf('pier').state, 'talking')
  const gateMic = log.lastIndexOf('gate:mic')
  assert.ok(gateMic === -1 || log.lastIndexOf('gate:silent') > gateMic, `gate is silent at the end: ${log.join(', ')}`)
  assert.ok(log.includes('gate:release'))
  assert.equal(log.at(-1), 'pier:mic')
})

test('the talking tile\'s call ends: the console lets go of it (the next call starts silent)', async () => {
  const log: string[] = []
  const tiles = new Map([['gate', tile('gate', log, [OK])]])
  const talk = consoleTalk((id) => tiles.get(id), microphone)
  await talk.start('gate', { hold: true })
  talk.dropped('pier')
  assert.equal(talk.stateOf('gate').state, 'talking', 'another tile\'s call ending changes nothing')
  talk.dropped('gate')
  assert.equal(talk.stateOf('gate').state, 'off')
  assert.ok(log.includes('gate:release'))
  const renews = log.filter((l) => l === 'gate:renew').length
  await new Promise((resolve) => setTimeout(resolve, 1100))
  assert.equal(log.filter((l) => l === 'gate:renew').length, renews, 'no renew after the call ended')
})
