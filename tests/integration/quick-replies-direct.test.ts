/**
 * Quick replies on the direct path (issue 17), with real parts: a doorbell with its libp2p mesh
 * and a WAV speaker, a Node libp2p peer in place of the browser. The same signed command as over
 * the hub's MQTT goes to `/doorbell/command/1.0.0` (core/src/directCommand.ts): played and audited
 * with the path `direct`; bad frames, another home, a replayed command, someone else's command and
 * a guest's are refused with a clear reason, and nothing plays.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FsDatastore } from 'datastore-fs'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import {
  CommandResult, DIRECT_COMMAND_PROTOCOL, MAX_DIRECT_RESULT_BYTES, NO_CALL_SESSION, newId, readFrame, signReplyCommand, signReplyList,
  type DirectCommandRequest, type ReplyCommand
} from '@doorbell/core'
import { createMeshPeer } from '@doorbell/mesh'
import { eventually, startLan } from '../src/harness'
import { pairViewer, type PairedViewer } from '../src/trust'

const REPLY = 'We will be right there'

test('direct path: a signed quick reply sent straight to the doorbell plays and is audited; bad frames, another home, a replay, a borrowed command, a guest and a flood are refused and nothing plays', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-replies-direct-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const lan = await startLan({ audio: { speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  t.after(() => lan.stop())
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-60).join('\n')) })
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(lan.hub, { name: 'Guest phone', role: 'guest' })
  const device = lan.device.config.deviceId
  const saved = await fetch(`${lan.hub.url}api/replies`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(await signReplyList({ credential: owner.credential, key: owner.key, home: owner.homeId, replies: [REPLY] }))
  })
  assert.equal(saved.status, 200)
  await eventually('the doorbell to render the reply', () => lan.lines.some((l) => /\[device\/replies\] quick replies ready count=1/.test(l)), 30_000)

  const datastore = new FsDatastore(join(dir, 'peer'))
  await datastore.open()
  const probe = await createMeshPeer({ datastore, host: '127.0.0.1', tcpPort: 0, directPort: 0, tcp: tcp(), discovery: [] })
  await probe.start()
  t.after(async () => { await probe.stop(); await datastore.close() })
  const addrs = lan.device.mesh!.node.getMultiaddrs()

  /** One request on its own stream, as the viewer sends it; the raw bytes are sent as given. */
  const send = async (frame: DirectCommandRequest | string): Promise<CommandResult> => {
    const stream = await probe.dialProtocol(addrs, DIRECT_COMMAND_PROTOCOL)
    const io = lpStream(stream, { maxDataLength: MAX_DIRECT_RESULT_BYTES })
    await io.write(new TextEncoder().encode(typeof frame === 'string' ? frame : JSON.stringify(frame)))
    const got = await readFrame(io, CommandResult, 'the doorbell\'s answer', 15_000, MAX_DIRECT_RESULT_BYTES)
    await stream.close().catch(() => {})
    assert.ok(got.ok, got.ok ? '' : got.error.message)
    return got.value
  }
  const reply = async (who: PairedViewer): Promise<ReplyCommand> =>
    await signReplyCommand({ credential: who.credential, key: who.key, home: who.homeId, device, session: NO_CALL_SESSION, command: newId('c'), reply: REPLY })
  const refusal = (r: CommandResult): string => r.ok ? 'played' : `${r.error.code}/${r.reason ?? '?'}: ${r.error.message}`
  const played = (): number => lan.device.audio.speaker.packets
  const audited = (): number => lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply').length

  // Bad input: an answer that says why, nothing audited, nothing played.
  const before = played()
  assert.match(refusal(await send('not json')), /^invalid-command\/malformed: .*JSON/)
  assert.match(refusal(await send({ homeId: resident.homeId, viewerId: resident.viewerId, command: { type: 'reply', id: 'c1' } as unknown as ReplyCommand })), /^invalid-command\/malformed/)
  assert.match(refusal(await send({ homeId: 'other-home', viewerId: resident.viewerId, command: await reply(resident) })), /^invalid-command\/malformed: this doorbell belongs to another home than other-home/)
  assert.equal(audited(), 0, 'nothing that failed its schema reached a command kind')

  // The resident's reply: played without a call, audited with its path.
  const command = await reply(resident)
  const ok = await send({ homeId: resident.homeId, viewerId: resident.viewerId, command })
  assert.ok(ok.ok, refusal(ok))
  assert.equal(ok.id, command.id)
  assert.ok((ok.durationMs ?? 0) > 500, `the reply's length: ${ok.durationMs}`)
  await eventually('the reply at the speaker', () => played() >= before + 25, 15_000)
  assert.equal(lan.device.state().participants.length, 0, 'no call was made')
  const record = await eventually('the reply in the hub\'s audit log', () => lan.hub.trust.audit.list({ limit: 1000 }).find((r) => r.kind === 'reply' && r.outcome === 'allowed'), 15_000)
  assert.equal(record.actor, 'Kitchen tablet')
  assert.equal(record.path, 'direct')
  await eventually('the reply to end', () => lan.lines.some((l) => l.includes('talk lease ended')), 30_000)

  // Refused by the guard, each audited, nothing more played.
  const after = played()
  assert.match(refusal(await send({ homeId: resident.homeId, viewerId: resident.viewerId, command })), /^denied\/replay: this command was already used/)
  assert.match(refusal(await send({ homeId: owner.homeId, viewerId: owner.viewerId, command: await reply(resident) })), /^denied\/wrong-viewer/)
  assert.match(refusal(await send({ homeId: guest.homeId, viewerId: guest.viewerId, command: await reply(guest) })), /^denied\/no-talk-right: Guest phone may not talk on this doorbell/)
  await eventually('the refusals in the audit log', () => audited() >= 4 ? true : undefined, 15_000)
  const denied = lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply' && r.outcome === 'denied')
  assert.deepEqual(denied.map((r) => r.path), ['direct', 'direct', 'direct'])
  assert.equal(played(), after, 'nothing refused was played')

  // A flood from one peer: past 20 commands in 10 s it is refused unread, and not audited (a
  // forged flood must not push real records out of the doorbell's outbox while the hub is down).
  let busy: CommandResult | null = null
  for (let i = 0; i < 30 && busy === null; i++) {
    const r = await send({ homeId: resident.homeId, viewerId: resident.viewerId, command })
    if (!r.ok && r.error.code === 'busy') busy = r
  }
  assert.ok(busy !== null && !busy.ok)
  assert.match(busy.error.message, /too many requests on the direct path from this screen: at most 20 in 10 s/)
  const auditedAtLimit = lan.hub.trust.audit.list({ limit: 1000 }).length
  assert.match(refusal(await send({ homeId: resident.homeId, viewerId: resident.viewerId, command })), /^busy/)
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(lan.hub.trust.audit.list({ limit: 1000 }).length, auditedAtLimit, 'a refused flood is not audited')
})
