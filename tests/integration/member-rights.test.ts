import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from 'xstate'
import { CredentialResponse, Grant, peek } from '@doorbell/core'
import { eventually, startLan } from '../src/harness'
import { pairViewer, type PairedViewer } from '../src/trust'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'

const DEVICE = 'front-door'

/**
 * Issue 17: the owner changes a resident's talk right after pairing, without inviting again. Real
 * hub, real doorbell (werift, a WAV speaker), the viewer app's own Home on a werift peer: the old
 * credential's talk is refused on the doorbell (superseded), the screen fetches its new credential
 * by itself (on connect, and at once when the hub's retained list names it) and is refused for want
 * of the right, then talks again once the right is given back. The change is audited.
 */
test('a resident\'s talk right withdrawn and given back without inviting again: the old grant is refused on the doorbell, the new one is fetched and used', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-rights-it-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const lan = await startLan({ audio: { speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  t.after(() => lan.stop())
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-80).join('\n')) })
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const firstCredential = resident.credential
  const viewers: NodeViewer[] = []
  t.after(async () => { for (const v of viewers) await v.close() })

  const setTalk = async (talk: boolean): Promise<void> => {
    const res = await fetch(`${lan.hub.url}api/members/${resident.memberId}/rights`, { method: 'PUT', headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ talk }) })
    assert.equal(res.status, 200, await res.text())
  }
  const inCall = async (v: NodeViewer): Promise<void> => {
    await eventually('the screen to see the doorbell', () => v.home.doorbells.get(DEVICE))
    lan.button.press()
    await waitFor(v.home.doorbell(DEVICE), (s) => s.matches('incoming'), { timeout: 10_000 })
    v.home.answer(DEVICE)
    await waitFor(v.home.doorbell(DEVICE), (s) => s.matches({ active: 'connected' }), { timeout: 30_000 })
    await eventually('the call\'s talk link', () => v.talk.get(DEVICE))
  }
  const hangUp = async (v: NodeViewer): Promise<void> => {
    v.home.hangUp(DEVICE)
    await eventually('the doorbell back to idle', () => lan.device.call.getSnapshot().matches('idle'), 15_000)
  }
  const grantOf = (p: PairedViewer): Grant => { const g = peek(Grant, p.credential); assert.ok(g.ok); return g.value }

  await t.test('with its first credential, in a call: talk is granted; the owner withdraws it; the same credential\'s next talk is refused as superseded', async () => {
    // A screen that does not fetch (as an older viewer would): it keeps its first grant.
    const v = nodeViewer(lan.hub.mqttUrl, { ...resident })
    viewers.push(v)
    await inCall(v)
    const link = v.talk.get(DEVICE)!
    const granted = await link.request()
    assert.equal(granted.ok, true, JSON.stringify(granted))
    link.release()
    const auditFrom = lan.hub.trust.audit.all().length
    await setTalk(false)
    const audited = lan.hub.trust.audit.all().slice(auditFrom).find((r) => r.kind === 'pairing')
    assert.equal(audited?.actor, 'Owner phone')
    assert.match(audited?.message ?? '', /changed the rights of Kitchen tablet \(resident\): .*talk: no \(was yes\)/)
    // The doorbell hears the hub's retained list a moment later.
    const refused = await eventually('the doorbell to refuse the replaced grant', async () => {
      const r = await link.request()
      if (r.ok) { link.release(); return null }
      return r
    }, 10_000)
    assert.equal(refused.code, 'denied')
    assert.match(refused.message, /rights were changed by the owner/)
    const denied = await eventually('the refusal in the audit log', () => lan.hub.trust.audit.all().find((r) => r.kind === 'talk' && r.outcome === 'denied' && r.reason === 'superseded'))
    assert.equal(denied.actor, 'Kitchen tablet')
    await hangUp(v)
    await v.close()
  })

  const live = { ...resident }
  let screen: NodeViewer
  await t.test('the screen fetches its new credential on connect: used in its offer, and talk is refused for want of the right', async () => {
    let kept: string | null = null
    screen = nodeViewer(lan.hub.mqttUrl, live, 'h264', {
      fetchCredential: async () => {
        const res = await fetch(`${lan.hub.url}api/credential`, { headers: { Authorization: `Bearer ${live.token}` } })
        return CredentialResponse.parse(await res.json())
      },
      onCredential: (c) => { kept = c }
    })
    viewers.push(screen)
    await eventually('the screen to fetch its new credential', () => live.credential !== firstCredential)
    assert.equal(kept, live.credential, 'the page is told to keep it')
    assert.equal(grantOf(live).talk, false)
    assert.ok(grantOf(live).iat > grantOf({ ...live, credential: firstCredential }).iat, 'signed after the first')
    await inCall(screen) // admitted: its offer carries the new grant
    const r = await screen.talk.get(DEVICE)!.request()
    assert.ok(!r.ok && r.code === 'denied', JSON.stringify(r))
    assert.match(r.ok ? '' : r.message, /Kitchen tablet may not talk/)
  })

  await t.test('given back: the hub\'s retained list names the screen, it fetches at once, and talks in the same call', async () => {
    const before = live.credential
    const allowedBefore = lan.hub.trust.audit.all().filter((r) => r.kind === 'talk' && r.actor === 'Kitchen tablet' && r.outcome === 'allowed').length
    await setTalk(true)
    await eventually('the screen to take its newest credential', () => live.credential !== before && grantOf(live).talk === true, 10_000)
    const link = screen.talk.get(DEVICE)!
    const granted = await eventually('talk to be granted', async () => {
      const r = await link.request()
      return r.ok ? r : null
    }, 10_000)
    assert.equal(granted.ok, true)
    link.release()
    await eventually('the granted talk in the audit log', () => lan.hub.trust.audit.all().filter((r) => r.kind === 'talk' && r.actor === 'Kitchen tablet' && r.outcome === 'allowed').length > allowedBefore)
    await hangUp(screen)
  })
})
