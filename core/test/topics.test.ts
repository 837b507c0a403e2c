import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ROOT, decodeWord, HomeAssistantStatus, integrationTopics, LockCommand, parseIntegrationTopic, parseTopic, topics } from '../src/index'

/** MQTT topic filter matching (+ one level, # the rest), to check the subscription filters. */
function matches (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

describe('topics and parseTopic', () => {
  test('device topics have the documented layout', () => {
    assert.equal(topics.ring('home', 'front-door'), 'doorbell/home/front-door/ring')
    assert.equal(topics.state('home', 'front-door'), 'doorbell/home/front-door/state')
    assert.equal(topics.presence('home', 'front-door'), 'doorbell/home/front-door/presence')
    assert.equal(topics.calls('home', 'front-door'), 'doorbell/home/front-door/calls')
    assert.equal(ROOT, 'doorbell')
  })

  test('session topics put the viewer before the session', () => {
    assert.equal(topics.session('home', 'front-door', 'v1', 's1', 'to-device'), 'doorbell/home/front-door/session/v1/s1/to-device')
  })

  test('every device topic parses back to its parts', () => {
    for (const kind of ['ring', 'state', 'presence', 'calls'] as const) {
      assert.deepEqual(parseTopic(topics[kind]('h_1', 'dev-2')), { kind, home: 'h_1', device: 'dev-2' })
    }
  })

  test('both session directions parse back to their parts', () => {
    for (const dir of ['to-device', 'to-viewer'] as const) {
      assert.deepEqual(
        parseTopic(topics.session('home', 'front-door', 'viewer-1', 'sess_9', dir)),
        { kind: dir, home: 'home', device: 'front-door', viewer: 'viewer-1', session: 'sess_9' }
      )
    }
  })

  test('rejects another root, an unknown kind or direction, and wrong depths', () => {
    for (const t of [
      'doorbel/home/d/ring',
      'Doorbell/home/d/ring',
      'doorbell/home/d/bell',
      'doorbell/home/d/session/v/s/to-nowhere',
      'doorbell/home/d/sessions/v/s/to-device',
      'doorbell/home/d',
      'doorbell/home/d/ring/extra',
      'doorbell/home/d/session/v/to-device',
      'doorbell/home/d/session/v/s/to-device/extra',
      '/doorbell/home/d/ring',
      'doorbell/home/d/ring/',
      ''
    ]) {
      assert.equal(parseTopic(t), null, t)
    }
  })

  test('rejects wildcards and empty or bad levels where an id belongs', () => {
    for (const t of [
      'doorbell/+/d/ring',
      'doorbell/home/+/ring',
      'doorbell/home/#',
      'doorbell//d/ring',
      'doorbell/home//ring',
      'doorbell/home/d/session/+/s/to-device',
      'doorbell/home/d/session/v/+/to-viewer',
      'doorbell/home/d/session/v/s p/to-viewer',
      `doorbell/home/${'d'.repeat(65)}/ring`
    ]) {
      assert.equal(parseTopic(t), null, t)
    }
  })

  test('homeEvents subscribes to every device topic of one home only', () => {
    const filters = topics.homeEvents('home')
    assert.equal(filters.length, 5)
    for (const kind of ['ring', 'snapshot', 'state', 'presence', 'calls'] as const) {
      assert.ok(filters.some((f) => matches(f, topics[kind]('home', 'any-device'))), kind)
      assert.ok(!filters.some((f) => matches(f, topics[kind]('other-home', 'any-device'))), kind)
    }
    assert.ok(!filters.some((f) => matches(f, topics.session('home', 'd', 'v', 's', 'to-viewer'))))
  })

  test('viewerInbox receives answers for that viewer from any device and session, nothing else', () => {
    const inbox = topics.viewerInbox('home', 'v1')
    assert.ok(matches(inbox, topics.session('home', 'front-door', 'v1', 's1', 'to-viewer')))
    assert.ok(matches(inbox, topics.session('home', 'back-door', 'v1', 's9', 'to-viewer')))
    assert.ok(!matches(inbox, topics.session('home', 'front-door', 'v2', 's1', 'to-viewer')))
    assert.ok(!matches(inbox, topics.session('home', 'front-door', 'v1', 's1', 'to-device')))
  })

  test('deviceInbox receives offers for that device from any viewer, nothing else', () => {
    const inbox = topics.deviceInbox('home', 'front-door')
    assert.ok(matches(inbox, topics.session('home', 'front-door', 'v1', 's1', 'to-device')))
    assert.ok(matches(inbox, topics.session('home', 'front-door', 'v2', 's2', 'to-device')))
    assert.ok(!matches(inbox, topics.session('home', 'back-door', 'v1', 's1', 'to-device')))
    assert.ok(!matches(inbox, topics.session('home', 'front-door', 'v1', 's1', 'to-viewer')))
  })
})

describe('Home Assistant\'s topics and words', () => {
  test('entity and lock-command topics parse back; anything else under ha/ does not', () => {
    assert.deepEqual(parseIntegrationTopic(integrationTopics.entity('home', 'front-door', 'lock')), { kind: 'ha-entity', home: 'home', device: 'front-door', entity: 'lock' })
    assert.deepEqual(parseIntegrationTopic(integrationTopics.lockCommand('home', 'front-door')), { kind: 'ha-lock-command', home: 'home', device: 'front-door' })
    for (const t of ['doorbell/home/front-door/ha/doorway', 'doorbell/home/front-door/ha/lock/get', 'doorbell/home/+/ha/lock', 'doorbell/home/front-door/ring', 'homeassistant/status', 'doorbell/home/front-door/ha']) {
      assert.equal(parseIntegrationTopic(t), null, t)
    }
    // Not one of the device topics the rest of the system knows.
    assert.equal(parseTopic(integrationTopics.entity('home', 'front-door', 'lock')), null)
    assert.equal(integrationTopics.discovery('homeassistant', 'doorbell_home_front-door'), 'homeassistant/device/doorbell_home_front-door/config')
  })

  test('a word is exact, bounded UTF-8', () => {
    assert.deepEqual(decodeWord(LockCommand, Buffer.from('OPEN')), { ok: true, value: 'OPEN' })
    assert.deepEqual(decodeWord(HomeAssistantStatus, Buffer.from('online')), { ok: true, value: 'online' })
    for (const bad of [Buffer.from('open'), Buffer.from('OPEN '), Buffer.from(''), Buffer.from('x'.repeat(17)), Buffer.from([0xc3, 0x28])]) {
      assert.equal(decodeWord(LockCommand, bad).ok, false, bad.toString('hex'))
    }
  })
})

describe('commands outside a call: topics', () => {
  test('a command and its result are bound to the device and the sending viewer', () => {
    assert.equal(topics.command('home', 'front-door', 'v1'), 'doorbell/home/front-door/command/v1/to-device')
    assert.equal(topics.commandResult('home', 'front-door', 'v1'), 'doorbell/home/front-door/command/v1/to-viewer')
    assert.deepEqual(parseTopic(topics.command('home', 'front-door', 'v1')), { kind: 'command', home: 'home', device: 'front-door', viewer: 'v1' })
    assert.deepEqual(parseTopic(topics.commandResult('home', 'front-door', 'v1')), { kind: 'command-result', home: 'home', device: 'front-door', viewer: 'v1' })
    assert.ok(matches(topics.commandInbox('home', 'front-door'), topics.command('home', 'front-door', 'v1')))
    assert.ok(!matches(topics.commandInbox('home', 'front-door'), topics.command('home', 'back-door', 'v1')))
    assert.ok(matches(topics.commandResults('home', 'v1'), topics.commandResult('home', 'back-door', 'v1')))
    assert.ok(!matches(topics.commandResults('home', 'v1'), topics.commandResult('home', 'back-door', 'v2')))
  })

  test('anything else under command/ is not a topic', () => {
    for (const bad of ['doorbell/home/front-door/command/v1', 'doorbell/home/front-door/command/v1/sideways', 'doorbell/home/front-door/command/v 1/to-device', 'doorbell/home/front-door/command/v1/to-device/x']) {
      assert.equal(parseTopic(bad), null, bad)
    }
  })
})
