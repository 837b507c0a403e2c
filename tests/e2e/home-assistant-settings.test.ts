/**
 * Home Assistant from Home settings, in headless Chromium (issue 22): the owner gives the
 * integration the door right, and sets, changes and turns off the user's own broker (a real
 * Mosquitto with TLS, passwords and an ACL). The hub reconnects without a restart, the password
 * is never shown back, bad input is refused with a message and changes nothing, and Home
 * Assistant on that broker opens the door once the right is given.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { HomeAssistantBrokerSettings, integrationTopics } from '@doorbell/core'
import { openResident } from '../src/browser'
import { eventually, startLan } from '../src/harness'
import { HUB_BROKER_PASSWORD, homeAssistant, latest, PREFIX, startHaBroker } from '../src/homeAssistant'
import { inviteCode } from '../src/trust'

const FRONT = 'front-door'

test('the owner sets, changes and turns off the user\'s broker and gives Home Assistant the door right, from Home settings', { timeout: 120_000 }, async (t) => {
  const { broker, asHa } = await startHaBroker(t)
  const lan = await startLan({}, { homeAssistant: { enabled: true } })
  t.after(() => lan.stop())
  const owner = await openResident(lan.hub.url, 'Owner laptop', await inviteCode(lan.hub, 'owner'))
  t.after(() => owner.close())
  const page = owner.page
  const text = async (id: string): Promise<string> => (await page.getByTestId(id).textContent() ?? '').trim()
  const connects = (): number => lan.lines.filter((l) => l.includes('connected to the user\'s broker')).length

  // Every answer of the broker settings API the page gets: none may carry the password.
  const answers: string[] = []
  page.on('response', (r) => { if (r.url().includes('/api/home-assistant/broker')) void r.text().then((b) => { answers.push(b) }, () => {}) })
  await page.getByTestId('owner-panel-toggle').click()
  await eventually('no broker yet', async () => /Not connected to a broker/.test(await text('ha-broker-status')))

  // ------------------------------------------------------------ Home Assistant's credential, and its door right
  await page.getByTestId('integration-create').click()
  await page.getByTestId('integration-credential').waitFor()
  const memberId = await text('integration-username')
  const door = page.getByTestId(`integration-door-${memberId}`)
  await door.waitFor()
  assert.equal(await door.isChecked(), false, 'off when it is made')
  page.once('dialog', (d) => { void d.accept() })
  await door.check()
  await eventually('the door right given', () => lan.hub.trust.members().find((m) => m.id === memberId)?.door === true)

  // ------------------------------------------------------------ bad input: refused with a message, nothing changes
  await page.getByTestId('ha-broker-url').fill('mqtt://broker.example:1883')
  await page.getByTestId('ha-broker-save').click()
  assert.match(await page.getByTestId('ha-broker-error').textContent({ timeout: 10_000 }) ?? '', /mqtts:\/\//)
  assert.ok(!lan.lines.some((l) => l.includes('the owner set the user\'s broker')), 'nothing was set')
  assert.ok(!existsSync(join(lan.hub.config.dataDir, 'home-assistant')), 'nothing was written')

  // ------------------------------------------------------------ set: the hub connects at once, no restart
  await page.getByTestId('ha-broker-url').fill(broker.url)
  await page.getByTestId('ha-broker-username').fill('doorbell-hub')
  await page.getByTestId('ha-broker-password').fill(HUB_BROKER_PASSWORD)
  await page.getByTestId('ha-broker-ca').fill(readFileSync(broker.caFile, 'utf8'))
  await page.getByTestId('ha-broker-save').click()
  await eventually('the page says connected', async () => await page.getByTestId('ha-broker-status').getAttribute('data-state') === 'connected', 20_000)
  assert.equal(await page.getByTestId('ha-broker-password').inputValue(), '', 'the password field is emptied')
  assert.ok(!(await page.content()).includes(HUB_BROKER_PASSWORD), 'the password is not on the page')
  assert.ok(!lan.lines.some((l) => l.includes(HUB_BROKER_PASSWORD)), 'nor in the hub\'s log')

  const ha = await homeAssistant(broker.url, asHa)
  t.after(() => ha.end())
  const configTopic = integrationTopics.discovery(PREFIX, `doorbell_home_${FRONT}`)
  await eventually('the front door\'s config on the user\'s broker', () => latest(ha.got, configTopic)?.payload.includes('"lock"'))
  const lockTopic = integrationTopics.entity('home', FRONT, 'lock')
  await ha.client.subscribeAsync([lockTopic, integrationTopics.bridge('home')], { qos: 1 })
  await eventually('the door locked there', () => latest(ha.got, lockTopic)?.payload === 'LOCKED')

  // Home Assistant there opens the door, signed by the hub as its integration.
  const printed = lan.printed.length
  await ha.client.publishAsync(integrationTopics.lockCommand('home', FRONT), 'OPEN', { qos: 1 })
  await eventually('the relay opened and closed again', () => lan.printed.slice(printed).join(',') === 'DOOR UNLOCKED,DOOR LOCKED')
  assert.ok(lan.hub.trust.audit.all().some((r) => r.kind === 'open-door' && r.outcome === 'allowed' && r.actor === 'Home Assistant (integration)'))

  // ------------------------------------------------------------ changed: a wrong password is said on the page, the right one reconnects
  const before = connects()
  await page.getByTestId('ha-broker-password').fill('not-the-password')
  await page.getByTestId('ha-broker-save').click()
  await eventually('the page says why it cannot connect', async () => /bad username or password|not authorized/.test(await text('ha-broker-status')), 20_000)
  await page.getByTestId('ha-broker-password').fill(HUB_BROKER_PASSWORD)
  await page.getByTestId('ha-broker-save').click()
  await eventually('connected again, without a restart', async () => connects() > before && await page.getByTestId('ha-broker-status').getAttribute('data-state') === 'connected', 20_000)
  const shown = HomeAssistantBrokerSettings.parse(JSON.parse(answers.at(-1)!))
  assert.deepEqual(shown.broker && [shown.broker.url, shown.broker.username, shown.broker.password, shown.broker.ca, shown.broker.source], [broker.url, 'doorbell-hub', true, true, 'settings'])
  assert.ok(answers.length > 3 && answers.every((a) => !a.includes(HUB_BROKER_PASSWORD) && !a.includes('not-the-password')), 'the API never echoes the password')

  // ------------------------------------------------------------ turned off: the hub leaves, Home Assistant marks it offline
  page.once('dialog', (d) => { void d.accept() })
  await page.getByTestId('ha-broker-clear').click()
  await eventually('the page says off', async () => await page.getByTestId('ha-broker-status').getAttribute('data-state') === 'off')
  await eventually('the hub said offline on the user\'s broker', () => latest(ha.got, integrationTopics.bridge('home'))?.payload === 'offline')
})
