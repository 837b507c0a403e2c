import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PushSubscriptionInput, RingPush } from '@doorbell/core'
import { eventually, startLan } from '../src/harness'
import { openResident } from '../src/browser'
import { inviteCode } from '../src/trust'
import { startPushService } from '../src/pushService'
import { jpegPixels } from '../src/jpeg'
import { controlled, shownNotification } from '../src/serviceWorker'

/**
 * Issue 19's Web Push in a real Chromium: the setting "Notify this screen when the page is
 * closed", and a ring that reaches a closed page's service worker. Headless Chromium here has no
 * way to its push service (Google's FCM, on the internet), so its own `pushManager.subscribe`
 * fails and the page says so; the test then stands in for that one step: it subscribes a screen
 * of the push-service stand-in for the member, the hub encrypts and sends the real push, the
 * stand-in checks and decrypts it with the screen's key as Chromium would, and the decrypted
 * payload is delivered to the page's service worker over CDP (`ServiceWorker.deliverPushMessage`)
 * with the page closed; the notification it shows is read back.
 */

const DEVICE = 'front-door'
test('Web Push: the setting on a screen, and a ring shown by the service worker of a closed page, with its picture and actions', { timeout: 180_000 }, async (t) => {
  const service = await startPushService()
  t.after(() => service.close())
  const lan = await startLan({ ringTimeoutSeconds: 5 }, { push: { allowLoopbackEndpoints: true } })
  t.after(() => lan.stop())
  const code = await inviteCode(lan.hub, 'owner')
  const owner = await openResident(lan.hub.url, 'Hall tablet', code)
  t.after(() => owner.close())
  t.after(() => { if (process.exitCode) console.log(owner.console.join('\n')) })
  const origin = new URL(lan.hub.url).origin
  await owner.context.grantPermissions(['notifications'], { origin })
  const page = owner.page
  await page.getByTestId(`doorbell-${DEVICE}`).waitFor({ timeout: 10_000 })
  await controlled(page)

  // 1. The setting: off, with the plain words about the internet; turning it on asks Chromium for
  // a subscription, which needs its push service: here it says why it could not, and the hub keeps nothing.
  await page.getByTestId('push-settings-toggle').click()
  await page.waitForSelector('[data-testid=push-settings][data-state=off]', { timeout: 10_000 })
  assert.match(await page.getByTestId('push-settings').innerText(), /With no internet at home no browser can wake a closed page/)
  await page.getByTestId('push-on').check()
  const after = await eventually('the setting settled', async () => {
    const state = await page.getByTestId('push-settings').getAttribute('data-state')
    return state === 'on' || state === 'error' ? state : null
  }, 30_000)
  if (after === 'on') {
    // A Chromium that reached its push service: the hub has this screen.
    assert.equal(lan.hub.push.state!.subscriptions.all().length, 1)
    await page.getByTestId('push-on').uncheck()
    await page.waitForSelector('[data-testid=push-settings][data-state=off]', { timeout: 10_000 })
  } else {
    const why = await page.getByTestId('push-why').innerText()
    console.log(`Chromium's own subscription: ${why}`)
    assert.match(why, /^Could not turn it on/)
  }
  assert.equal(lan.hub.push.state!.subscriptions.all().length, 0, 'nothing kept from a subscription that failed or was turned off')

  // 2. The member's screen at the stand-in, as Chromium's subscription would be.
  const member = lan.hub.trust.members().find((m) => m.kind === 'viewer' && m.name === 'Hall tablet')!
  const screen = service.screen('hall-tablet')
  lan.hub.push.state!.subscriptions.add(member.id, PushSubscriptionInput.parse(screen.subscription), 'Hall tablet')

  // 3. The page closes; a ring; the hub's push reaches the stand-in, which decrypts it.
  const blank = await owner.context.newPage()
  await blank.goto('about:blank')
  await page.close()
  lan.button.press()
  const ringId = await eventually('the ring', () => lan.device.state().call.ringId)
  const received = await eventually('the push at the stand-in', () => service.received[0], 15_000)
  assert.equal(service.refused.length, 0, JSON.stringify(service.refused))
  const push = RingPush.parse(received.json)
  assert.equal(push.ringId, ringId)

  // 4. Delivered to the closed page's service worker: it shows the ring.
  const cdp = await owner.context.newCDPSession(blank)
  const registrations: Array<{ registrationId: string, scopeURL: string }> = []
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: Array<{ registrationId: string, scopeURL: string }> }) => { registrations.push(...e.registrations) })
  await cdp.send('ServiceWorker.enable')
  const registration = await eventually('the page\'s service worker registration', () => registrations.find((r) => r.scopeURL === `${origin}/`), 10_000)
  const reader = await owner.context.newPage()
  await reader.goto(`${origin}/healthz`)
  // Delivered again if nothing shows (a stopped worker that a loaded machine starts slowly may miss
  // CDP's first delivery); the worker shows one ring once, whatever the number of deliveries.
  let note: Awaited<ReturnType<typeof shownNotification>> = null
  for (let attempt = 1; note === null && attempt <= 3; attempt++) {
    await cdp.send('ServiceWorker.deliverPushMessage', { origin, registrationId: registration.registrationId, data: JSON.stringify(received.json) })
    note = await eventually('the notification the service worker showed', async () => await shownNotification(reader, `ring-${DEVICE}`), 8_000).catch(() => null)
  }
  assert.ok(note !== null, 'the service worker showed the ring (three deliveries)')
  assert.equal(note.title, 'Front door is ringing')
  assert.match(note.body, /^at \d/)
  assert.deepEqual(note.actions, ['answer', 'dismiss'])
  assert.deepEqual(note.data, { kind: 'ring', deviceId: DEVICE, ringId })
  assert.ok(note.image?.startsWith('data:image/jpeg;base64,/9j/'), 'the push\'s picture')
  const { width } = jpegPixels(Buffer.from(note.image!.split(',')[1]!, 'base64'))
  assert.equal(width, 96)
})
