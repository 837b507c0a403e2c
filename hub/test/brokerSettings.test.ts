import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brokerSettings, BrokerSettingsError } from '../src/homeAssistant/brokerSettings'

/** The user's broker as Home settings keep it: checked by the hub's own schema before anything is written. */

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'

test('set, changed (the password kept unless given), refused without a change, cleared', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-ha-broker-'))
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  const s = brokerSettings(dataDir)
  const dir = join(dataDir, 'home-assistant')
  assert.equal(await s.stored(), undefined, 'nothing set: the config file decides')

  const set = await s.save({ url: 'mqtts://ha.local:8883', username: 'doorbell-hub', password: 'secret-1', ca: CA })
  assert.deepEqual(set, { url: 'mqtts://ha.local:8883', username: 'doorbell-hub', passwordFile: join(dir, 'broker-password'), ca: join(dir, 'broker-ca.pem') })
  assert.deepEqual(await s.stored(), set)
  assert.equal(await readFile(join(dir, 'broker-password'), 'utf8'), 'secret-1')
  assert.equal((await stat(join(dir, 'broker-password'))).mode & 0o777, 0o600)
  assert.equal((await stat(dir)).mode & 0o777, 0o700)
  assert.ok(!(await readFile(join(dir, 'broker.json'), 'utf8')).includes('secret-1'), 'the password only in its own file')

  // Changed without a password: the one set stays.
  await s.save({ url: 'mqtts://ha.local:8884', username: 'doorbell-hub' })
  assert.equal(await readFile(join(dir, 'broker-password'), 'utf8'), 'secret-1')
  assert.equal((await s.stored())?.url, 'mqtts://ha.local:8884')

  // Refused by the hub's schema: nothing written.
  const before = await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(join(dir, f), 'utf8')]))
  for (const bad of [
    { url: 'mqtt://ha.example:1883', username: 'u', password: 'new' },
    { url: 'mqtts://ha.local:8883', username: null, password: 'new' },
    { url: 'https://ha.local', username: 'u' }
  ]) {
    await assert.rejects(s.save(bad), (err: unknown) => err instanceof BrokerSettingsError && err.message.length > 0, JSON.stringify(bad))
  }
  const after = await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(join(dir, f), 'utf8')]))
  assert.deepEqual(after, before)

  // The password and the CA removed on request; then cleared: "none", whatever the config file says.
  await s.save({ url: 'mqtts://ha.local:8883', username: 'doorbell-hub', password: null, ca: null })
  assert.deepEqual(await s.stored(), { url: 'mqtts://ha.local:8883', username: 'doorbell-hub' })
  await s.clear()
  assert.equal(await s.stored(), null)
  assert.deepEqual((await readdir(dir)).sort(), ['broker.json'])
})
