/**
 * The owner changes a resident's talk and door rights from Home settings, in headless Chromium
 * (issue 17), without inviting again: the hub signs the resident a new grant, the resident's own
 * page (another browser) fetches and keeps it by itself, and the members list stays clean under
 * axe. A refused change says why and changes nothing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Grant, peek } from '@doorbell/core'
import { openResident, waitForText, type Resident } from '../src/browser'
import { axeViolations, describeViolations } from '../src/axe'
import { eventually, startLan } from '../src/harness'
import { inviteCode } from '../src/trust'

/** The grant a page keeps in its pairing (IndexedDB `doorbell`/`pairing`, record `current`). */
async function keptGrant (r: Resident): Promise<Grant | null> {
  const credential = await r.page.evaluate(async () => await new Promise<string | null>((resolve) => {
    const open = indexedDB.open('doorbell')
    open.onerror = () => { resolve(null) }
    open.onsuccess = () => {
      const get = open.result.transaction('pairing', 'readonly').objectStore('pairing').get('current')
      get.onsuccess = () => { resolve((get.result as { credential?: string } | undefined)?.credential ?? null); open.result.close() }
      get.onerror = () => { resolve(null); open.result.close() }
    }
  }))
  if (credential === null) return null
  const g = peek(Grant, credential)
  return g.ok ? g.value : null
}

test('the owner withdraws and gives back a resident\'s talk right and withdraws its door right from the members list; the resident\'s page takes its new credential by itself', { timeout: 150_000 }, async (t) => {
  const lan = await startLan()
  t.after(() => lan.stop())
  const owner = await openResident(lan.hub.url, 'Owner laptop', await inviteCode(lan.hub, 'owner'))
  t.after(() => owner.close())
  const resident = await openResident(lan.hub.url, 'Kitchen tablet', await inviteCode(lan.hub, { kind: 'viewer', role: 'resident' }))
  t.after(() => resident.close())
  const member = await eventually('the resident paired', () => lan.hub.trust.members().find((m) => m.name === 'Kitchen tablet'))
  const first = await eventually('the resident page\'s pairing', async () => await keptGrant(resident))
  assert.equal(first.talk, true)

  const page = owner.page
  await page.getByTestId('owner-panel-toggle').click()
  const talk = page.getByTestId(`talk-right-${member.id}`)
  const door = page.getByTestId(`door-right-${member.id}`)
  await talk.waitFor()
  assert.equal(await talk.isChecked(), true)
  assert.equal(await door.isChecked(), true)
  assert.equal(await talk.getAttribute('aria-label'), 'Kitchen tablet may talk on the doorbell')
  // The owner's own row has no controls: an owner's rights are all, always.
  const self = lan.hub.trust.members().find((m) => m.name === 'Owner laptop')!
  assert.equal(await page.getByTestId(`talk-right-${self.id}`).count(), 0)

  // ------------------------------------------------------------ withdraw talk
  await talk.uncheck()
  await eventually('the hub to withdraw the talk right', () => lan.hub.trust.members().find((m) => m.id === member.id)?.talk === false)
  // The hub has it before the page has its answer: wait for the page to say so.
  await waitForText(page, 'members-saved', /Kitchen tablet may no longer talk; its screen picks up the change by itself/)
  const audit = lan.hub.trust.audit.all().filter((r) => r.kind === 'pairing' && r.message.startsWith('changed the rights of Kitchen tablet'))
  assert.equal(audit.length, 1)
  assert.equal(audit[0]!.actor, 'Owner laptop')
  const second = await eventually('the resident\'s page to keep its new credential', async () => {
    const g = await keptGrant(resident)
    return g !== null && g.iat > first.iat ? g : null
  }, 15_000)
  assert.equal(second.talk, false)
  assert.equal(second.door, true)
  assert.equal(second.key, first.key, 'the same key: the page was not paired again')

  const violations = await axeViolations(page, '[data-testid="member-list"]')
  assert.deepEqual(violations, [], describeViolations(violations))

  // ------------------------------------------------------------ give it back, and withdraw the door
  await talk.check()
  await eventually('the hub to give the talk right back', () => lan.hub.trust.members().find((m) => m.id === member.id)?.talk === true)
  await door.uncheck()
  await eventually('the hub to withdraw the door right', () => lan.hub.trust.members().find((m) => m.id === member.id)?.door === false)
  const third = await eventually('the resident\'s page to keep its newest credential', async () => {
    const g = await keptGrant(resident)
    return g !== null && g.talk === true && g.door === false ? g : null
  }, 15_000)
  assert.ok(third.iat > second.iat)
  // The page was never sent back to pairing.
  assert.equal(await resident.page.getByTestId('pair-screen').count(), 0)

  // ------------------------------------------------------------ refused by the hub (a request it will not take): said, and nothing changes
  await page.route('**/api/members/*/rights', async (route) => { await route.continue({ postData: JSON.stringify({ talkZones: ['gate'] }) }) })
  const before = lan.hub.trust.members().find((m) => m.id === member.id)!
  // A click, not uncheck(): the page may put the box back before Playwright looks at it (uncheck() would then fail).
  await talk.click()
  assert.match(await page.getByTestId('members-error').textContent({ timeout: 10_000 }) ?? '', /change Kitchen tablet's rights.*talkZones are an operator's/)
  await eventually('the list to show the right as it stands', async () => await talk.isChecked())
  assert.deepEqual(lan.hub.trust.members().find((m) => m.id === member.id), before, 'nothing changed')
})
