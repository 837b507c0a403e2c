import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ViewerCloudConfig } from '@doorbell/core'
import {
  CLOUD_SETTINGS_KEY, clearCloudSettings, cloudFormFrom, cloudReady, emptyCloudForm, fetchCloudConfig, forgetCloudCredentials,
  loadCloudSettings, saveCloudSettings, validateCloudForm, type SettingsStorage
} from '../src/lib/paths/cloud/settings'

function memoryStorage (): SettingsStorage & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => { data.set(k, v) }, removeItem: (k) => { data.delete(k) } }
}

const config: ViewerCloudConfig = {
  region: 'eu-west-1',
  iotEndpoint: 'a1b2c3-ats.iot.eu-west-1.amazonaws.com',
  devices: [{ deviceId: 'front-door', thingName: 'doorbell-front', channelName: 'doorbell-front-channel' }]
}
const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }

test('settings: save then load gives back both parts; nothing stored is not a problem', () => {
  const s = memoryStorage()
  assert.deepEqual(loadCloudSettings(s), { settings: {}, problem: null })
  assert.deepEqual(saveCloudSettings({ credentials, config }, s), { ok: true })
  assert.deepEqual(loadCloudSettings(s), { settings: { credentials, config }, problem: null })
  assert.equal([...s.data.keys()].join(), CLOUD_SETTINGS_KEY, 'one key')
})

test('settings: malformed stored data is ignored and reported, never used', () => {
  const s = memoryStorage()
  const cases: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[1,2]', /not an object/],
    ['null', /not an object/],
    [JSON.stringify({ credentials, config }), /unknown shape/],
    [JSON.stringify({ v: 2, credentials, config }), /unknown shape/],
    [JSON.stringify({ v: 1, credentials, config, extra: 1 }), /unknown shape \(extra\)/]
  ]
  for (const [raw, problem] of cases) {
    s.data.set(CLOUD_SETTINGS_KEY, raw)
    const r = loadCloudSettings(s)
    assert.deepEqual(r.settings, {}, raw)
    assert.match(r.problem ?? '', problem, raw)
  }
  // One bad part: that part is ignored, the good one kept.
  s.data.set(CLOUD_SETTINGS_KEY, JSON.stringify({ v: 1, credentials: { ...credentials, accessKeyId: 'lower-case' }, config }))
  let r = loadCloudSettings(s)
  assert.deepEqual(r.settings, { config })
  assert.match(r.problem ?? '', /credentials ignored \(accessKeyId/)
  s.data.set(CLOUD_SETTINGS_KEY, JSON.stringify({ v: 1, credentials, config: { ...config, region: 'Europe' } }))
  r = loadCloudSettings(s)
  assert.deepEqual(r.settings, { credentials })
  assert.match(r.problem ?? '', /config ignored \(region/)
  s.data.set(CLOUD_SETTINGS_KEY, JSON.stringify({ v: 1, credentials: { ...credentials, extra: 'x' } }))
  assert.deepEqual(loadCloudSettings(s).settings, {}, 'strict: unknown fields refuse the credentials')
})

test('settings: save refuses invalid parts and stores nothing; storage failures are reported, not thrown', () => {
  const s = memoryStorage()
  const bad = saveCloudSettings({ credentials: { ...credentials, secretAccessKey: 'short' } }, s)
  assert.equal(bad.ok, false)
  assert.equal(s.data.size, 0)
  const throwing: SettingsStorage = { getItem: () => { throw new Error('blocked') }, setItem: () => { throw new Error('QuotaExceededError') }, removeItem: () => { throw new Error('blocked') } }
  assert.match((saveCloudSettings({ credentials }, throwing) as { error: string }).error, /QuotaExceeded/)
  assert.match(loadCloudSettings(throwing).problem ?? '', /blocked/)
  clearCloudSettings(throwing)
  assert.equal(saveCloudSettings({ credentials }, undefined).ok, false, 'no storage at all')
})

test('settings: forget credentials keeps the config; clear forgets all; cloudReady needs credentials and a config', () => {
  const s = memoryStorage()
  saveCloudSettings({ credentials, config }, s)
  assert.deepEqual(forgetCloudCredentials(s), { ok: true })
  assert.deepEqual(loadCloudSettings(s).settings, { config })
  clearCloudSettings(s)
  assert.equal(s.data.size, 0)
  const hub = { ...config, region: 'us-east-1' }
  assert.equal(cloudReady({ config }, hub), null, 'no credentials')
  assert.equal(cloudReady({ credentials }, null), null, 'no config')
  assert.deepEqual(cloudReady({ credentials }, hub), { config: hub, credentials }, 'the hub\'s config')
  assert.deepEqual(cloudReady({ credentials, config }, hub), { config, credentials }, 'this browser\'s edits win')
})

test('fetchCloudConfig: the hub\'s config checked; 404 means no cloud; other failures and bad shapes are errors', async () => {
  let asked = ''
  assert.deepEqual(await fetchCloudConfig(async (path) => { asked = path; return config }), { ok: true, config })
  assert.equal(asked, '/api/cloud')
  const notFound = Object.assign(new Error('not found'), { status: 404 })
  assert.deepEqual(await fetchCloudConfig(async () => { throw notFound }), { ok: true, config: null })
  const down = await fetchCloudConfig(async () => { throw Object.assign(new Error('hub unreachable'), { status: 0 }) })
  assert.equal(down.ok, false)
  assert.match((down as { error: string }).error, /hub unreachable/)
  const odd = await fetchCloudConfig(async () => ({ ...config, secret: 'x' }))
  assert.equal(odd.ok, false)
  assert.match((odd as { error: string }).error, /unexpected shape/)
})

test('the form: valid fields give config and credentials; each error is keyed by its field', () => {
  const good = cloudFormFrom(config, credentials)
  const r = validateCloudForm({ ...good, sessionToken: '  ', region: ' eu-west-1 ' })
  assert.deepEqual(r, { ok: true, value: { config, credentials } }, 'trimmed; an empty token is no token')
  const withToken = validateCloudForm({ ...good, sessionToken: 'tok' })
  assert.equal(withToken.ok && withToken.value.credentials.sessionToken, 'tok')

  const bad = validateCloudForm({
    ...good,
    region: 'Ireland',
    iotEndpoint: 'https://x/',
    accessKeyId: 'akia',
    secretAccessKey: 'short',
    kvsEndpoint: 'http://127.0.0.1:1',
    devices: [{ deviceId: 'front-door', thingName: 'bad thing', channelName: 'ok' }, { deviceId: 'front-door', thingName: 't', channelName: 'c h' }]
  })
  assert.equal(bad.ok, false)
  const errors = (bad as { errors: Record<string, string> }).errors
  assert.deepEqual(Object.keys(errors).sort(), [
    'accessKeyId', 'devices.0.thingName', 'devices.1.channelName', 'devices.1.deviceId', 'iotEndpoint', 'kvsEndpoint', 'region', 'secretAccessKey'
  ])
  assert.match(errors.region!, /region/)
  assert.match(errors['devices.1.deviceId']!, /twice/)

  const empty = validateCloudForm(emptyCloudForm())
  assert.equal(empty.ok, false)
  assert.match((empty as { errors: Record<string, string> }).errors.devices!, /no doorbell/)
})
