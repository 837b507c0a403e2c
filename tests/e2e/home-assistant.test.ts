/**
 * Home Assistant's credential from Home settings, in headless Chromium: the owner creates it, the
 * page shows what Home Assistant's MQTT integration needs, a client signed in with exactly that
 * gets the doorbell's discovery config from the hub's broker, and removing the credential from
 * the member list cuts that client off at once and keeps it out.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import { openResident } from '../src/browser'
import { eventually, startLan } from '../src/harness'
import { inviteCode } from '../src/trust'

test('the owner creates Home Assistant\'s credential in Home settings; it reads discovery from the broker; removing it cuts it off', { timeout: 90_000 }, async (t) => {
  const lan = await startLan({}, { homeAssistant: { enabled: true } })
  t.after(() => lan.stop())
  const owner = await openResident(lan.hub.url, 'Owner laptop', await inviteCode(lan.hub, 'owner'))
  t.after(() => owner.close())
  const page = owner.page

  await page.getByTestId('owner-panel-toggle').click()
  await page.getByTestId('integration-create').click()
  await page.getByTestId('integration-credential').waitFor()
  const text = async (id: string): Promise<string> => (await page.getByTestId(id).textContent() ?? '').trim()
  const username = await text('integration-username')
  const password = await text('integration-password')
  const clientId = await text('integration-client-id')
  assert.equal(await text('integration-port'), new URL(lan.hub.mqttUrl).port)
  assert.equal(await page.getByTestId('integration-off').count(), 0, 'discovery is on in this hub')
  const member = lan.hub.trust.members().find((m) => m.id === username)
  assert.deepEqual([member?.kind, member?.door, clientId], ['integration', false, `integration-${member?.subject}`])
  // The member list shows it at once, as a member that cannot open the door.
  const row = page.getByTestId(`member-${username}`)
  await row.waitFor()
  assert.match(await row.textContent() ?? '', /Home Assistant[\s\S]*integration[\s\S]*no/)

  // Home Assistant signs in with what the page showed and finds the doorbell.
  const ha = mqtt.connect(lan.hub.mqttUrl, { clientId, username, password, clean: true, reconnectPeriod: 0 })
  ha.on('error', () => {})
  let closed = false
  ha.on('close', () => { closed = true })
  t.after(() => { ha.end(true) })
  await new Promise<void>((resolve) => { ha.once('connect', () => { resolve() }) })
  const configs = new Map<string, string>()
  ha.on('message', (topic, payload) => { configs.set(topic, payload.toString()) })
  await ha.subscribeAsync('homeassistant/+/+/config', { qos: 1 })
  await eventually('the front door\'s discovery config', () => configs.get('homeassistant/device/doorbell_home_front-door/config'))
  assert.equal((JSON.parse(configs.get('homeassistant/device/doorbell_home_front-door/config')!) as { device: { name: string } }).device.name, 'Front door')

  // Removed from the member list (confirmed): the connection ends and the credential is dead.
  page.once('dialog', (d) => { void d.accept() })
  await page.getByTestId(`revoke-${username}`).click()
  await eventually('Home Assistant cut off', () => closed)
  await eventually('the row marked removed', async () => await row.getAttribute('data-revoked') === 'true')
  const again = mqtt.connect(lan.hub.mqttUrl, { clientId, username, password, reconnectPeriod: 0 })
  const code = await new Promise<number | undefined>((resolve) => { again.once('error', (err) => { resolve((err as { code?: number }).code) }); again.once('connect', () => { resolve(0) }) })
  again.end(true)
  assert.equal(code, 4, 'a removed credential cannot sign in')
})
