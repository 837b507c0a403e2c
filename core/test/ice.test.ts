import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { ConfigError, DeviceConfig, HubConfig, IceSettings, iceSettingsFor, parseConfig, turnRestCredential } from '../src/index'

const SECRET = 'a-secret-shared-with-coturn-0123456789'

describe('TURN REST credentials', () => {
  test('username is expiry:user and the credential is base64 HMAC-SHA1 of it, as coturn checks', async () => {
    const now = 1_800_000_000_123
    const c = await turnRestCredential(SECRET, 'member-1', 3600, now)
    assert.equal(c.username, `${1_800_000_000 + 3600}:member-1`)
    assert.equal(c.credential, createHmac('sha1', SECRET).update(c.username).digest('base64'))
    assert.equal(c.expiresAt, (1_800_000_000 + 3600) * 1000)
  })

  test('a user that is not an id (a colon would change what coturn reads) is refused', async () => {
    await assert.rejects(turnRestCredential(SECRET, 'a:b', 60, 0))
  })

  test('the settings add TURN with a fresh credential to the static servers, and parse', async () => {
    const config = parseConfig(HubConfig, { iceServers: [{ urls: 'stun:stun.example.org:3478' }], turn: { urls: ['turn:turn.example.org:3478?transport=udp'], secret: SECRET }, iceTransportPolicy: 'relay' }, 'x')
    const s = await iceSettingsFor(config, 'op-1', 0)
    assert.ok(IceSettings.safeParse(s).success)
    assert.equal(s.iceTransportPolicy, 'relay')
    assert.equal(s.iceServers.length, 2)
    assert.match(s.iceServers[1]!.username!, /^3600:op-1$/)
    assert.equal(s.expiresAt, 3_600_000)
  })

  test('without TURN the settings are the static servers and never expire', async () => {
    const s = await iceSettingsFor(parseConfig(DeviceConfig, {}, 'x'), 'front-door', 0)
    assert.deepEqual(s, { iceServers: [], iceTransportPolicy: 'all', expiresAt: null })
  })
})

describe('ICE config', () => {
  const refused = (f: () => unknown): string => {
    try { f() } catch (err) { assert.ok(err instanceof ConfigError); return err.message }
    assert.fail('the config was accepted')
  }

  test('relay-only without a TURN server is refused by both configs, saying what to add', () => {
    assert.match(refused(() => parseConfig(HubConfig, { iceTransportPolicy: 'relay' }, 'hub.json')), /iceTransportPolicy: .*needs a TURN server/)
    assert.match(refused(() => parseConfig(DeviceConfig, { iceTransportPolicy: 'relay', iceServers: [{ urls: 'stun:s.example' }] }, 'device.json')), /needs a TURN server/)
    assert.equal(parseConfig(DeviceConfig, { iceTransportPolicy: 'relay', iceServers: [{ urls: 'turn:t.example', username: 'u', credential: 'p' }] }, 'x').iceTransportPolicy, 'relay')
  })

  test('a short secret, a non-TURN URL in turn.urls and an unknown scheme are refused', () => {
    assert.match(refused(() => parseConfig(HubConfig, { turn: { urls: ['turn:t'], secret: 'short' } }, 'x')), /turn.secret: the TURN secret is at least 16/)
    assert.match(refused(() => parseConfig(HubConfig, { turn: { urls: ['stun:t'], secret: SECRET } }, 'x')), /turn.urls.0: a TURN URL starts with turn:/)
    assert.match(refused(() => parseConfig(HubConfig, { iceServers: [{ urls: 'http://t' }] }, 'x')), /iceServers.0.urls/)
  })

  test('trustProxy only with the hub on loopback', () => {
    assert.match(refused(() => parseConfig(HubConfig, { trustProxy: true }, 'x')), /trustProxy: .*only with host 127.0.0.1/)
    assert.equal(parseConfig(HubConfig, { trustProxy: true, host: '127.0.0.1', tls: 'off' }, 'x').trustProxy, true)
  })
})
