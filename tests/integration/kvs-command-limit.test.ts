/**
 * Issues 17 and 19: the per-sender limit on requests over KVS (device/src/paths/senderLimit.ts,
 * shared with the direct path's commands), AWS stood in for as in the other cloud tests (KVS
 * signaling emulator, IoT Core and credentials stand-ins). A burst of signed commands from one KVS
 * viewer past the limit is answered `busy` before any is checked or audited, and so is its
 * dismissal; another viewer's quick reply still plays meanwhile; once the window passes, the first
 * viewer's reply plays too. The window is kept small by the device config's `commandsPerScreen`.
 * Real parts: the hub, the doorbell with ffmpeg's test pattern and a WAV speaker, espeak-ng, the
 * KVS SDK (in the viewer's CloudClient).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NO_CALL_SESSION, newId, signReplyCommand, signReplyList, signViewClaim, type CommandResult } from '@doorbell/core'
import { CloudClient } from '@doorbell/viewer/cloud'
import { eventually, startLan } from '../src/harness'
import { startCloud } from '../src/cloud'
import { pairViewer, type PairedViewer } from '../src/trust'

const REPLY = 'We will be right there'
/** Small, so the test waits for it; wide enough that a burst sent at once falls inside it on a loaded machine. */
const LIMIT = { count: 3, windowMs: 8000 }

test('over KVS, a burst from one viewer past its limit is answered busy and checks nothing; another viewer still plays a reply; the window passed, the first one plays again', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-kvs-limit-'))
  const cleanup: Array<() => Promise<void> | void> = [() => { rmSync(dir, { recursive: true, force: true }) }]
  t.after(async () => { for (const c of cleanup.reverse()) await c() })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  const lan = await startLan({ mesh: { enabled: false }, cloud: provisioned.device, commandsPerScreen: LIMIT, audio: { speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  cleanup.push(() => lan.stop())
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-80).join('\n')) })
  await eventually('the doorbell on IoT Core and its KVS channel', () => lan.device.cloud?.connected.iot === true && lan.device.cloud.connected.kvs, 30_000)
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const saved = await fetch(`${lan.hub.url}api/replies`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(await signReplyList({ credential: owner.credential, key: owner.key, home: owner.homeId, replies: [REPLY] }))
  })
  assert.equal(saved.status, 200)
  await eventually('the doorbell to render the reply', () => lan.lines.some((l) => /\[device\/replies\] quick replies ready count=1/.test(l)), 30_000)

  const away = (who: PairedViewer): CloudClient => {
    const c = new CloudClient({ config: provisioned.viewer, credentials: cloud.resident, viewerId: who.viewerId, log: (level, message) => { lan.lines.push(`${level} [cloud ${who.name}] ${message}`) } })
    cleanup.push(() => c.close())
    return c
  }
  const send = async (screen: CloudClient, who: PairedViewer, reply: string): Promise<CommandResult> =>
    await screen.sendCommand('front-door', await signReplyCommand({ credential: who.credential, key: who.key, home: who.homeId, device: 'front-door', session: NO_CALL_SESSION, command: newId('c'), reply }), 30_000)
  const isBusy = (r: CommandResult): boolean => !r.ok && r.error.code === 'busy'
  const audited = (): number => lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply').length
  const played = (): number => lan.device.audio.speaker.packets
  const limitLines = (): number => lan.lines.filter((l) => l.includes('refused requests over KVS: too many from this sender')).length

  // A burst of signed commands from the resident's screen, each for a reply the doorbell does not
  // have: within the limit each is checked (signature, right) and refused `no-reply` and audited;
  // past it each is answered `busy` unread.
  const kitchen = away(resident)
  const burst = await Promise.all(Array.from({ length: 7 }, async () => await send(kitchen, resident, 'Not one of the replies')))
  const busy = burst.filter(isBusy)
  assert.equal(busy.length, 4, burst.map((r) => r.ok ? 'ok' : `${r.error.code}: ${r.error.message}`).join('; '))
  for (const r of busy) assert.ok(!r.ok && /^too many requests over KVS from this screen: at most 3 in 8 s$/.test(r.error.message), JSON.stringify(r))
  assert.deepEqual(burst.filter((r) => !isBusy(r)).map((r) => r.ok ? 'ok' : r.error.code), ['no-reply', 'no-reply', 'no-reply'])
  // Its dismissal shares the count: refused as busy, before its proof is looked at.
  const proof = await signViewClaim({ key: resident.key, home: resident.homeId, device: 'front-door', session: 'r-unknown' })
  await assert.rejects(kitchen.dismissRing('front-door', { homeId: resident.homeId, viewerId: resident.viewerId, credential: resident.credential, proof, ringId: 'r-unknown' }, 30_000), /the doorbell refused: busy: too many requests over KVS from this screen/)
  assert.equal(limitLines(), 1, 'the refusals of one window are one log line')
  await eventually('the three checked commands in the audit log', () => audited() === 3 ? true : undefined, 15_000)

  // The owner's screen has its own count: its reply plays while the resident's screen is held back.
  const before = played()
  const ownerPhone = away(owner)
  const ownerReply = await send(ownerPhone, owner, REPLY)
  assert.ok(ownerReply.ok, JSON.stringify(ownerReply))
  await eventually('the owner\'s reply at the speaker', () => played() >= before + 25, 15_000)
  await eventually('the owner\'s reply to end', () => lan.lines.some((l) => l.includes('talk lease ended')), 30_000)
  await eventually('the owner\'s reply in the audit log', () => lan.hub.trust.audit.list({ limit: 1000 }).some((r) => r.kind === 'reply' && r.outcome === 'allowed'), 15_000)
  assert.equal(audited(), 4, 'the busy ones were never audited')

  // The window passes: the resident's screen is let in again (asked until it is, each refusal still busy).
  const afterWindow = played()
  const again = await eventually('the resident\'s reply let in after the window', async () => {
    const r = await send(kitchen, resident, REPLY)
    if (isBusy(r)) { await new Promise((resolve) => setTimeout(resolve, 250)); return undefined }
    return r
  }, 60_000)
  assert.ok(again.ok, JSON.stringify(again))
  await eventually('the resident\'s reply at the speaker', () => played() >= afterWindow + 25, 15_000)
  const allowed = lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply' && r.outcome === 'allowed').map((r) => [r.actor, r.path])
  assert.deepEqual(allowed.sort(), [['Kitchen tablet', 'cloud'], ['Owner phone', 'cloud']])
})
