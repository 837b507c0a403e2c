/**
 * Quick replies on the cloud path (issue 17), AWS stood in for as in the other cloud tests (KVS
 * signaling emulator, IoT Core and credentials stand-ins): the same signed command as over the
 * hub's MQTT goes on the doorbell's KVS signaling channel (core/src/cloudCommand.ts), from the
 * viewer's CloudClient; played and audited with the path `cloud`. A payload that fails its schema
 * (sent with the unmodified KVS SDK), a replay, a command sent under another viewer's client id
 * and a guest's are refused with a clear reason, and nothing plays.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NO_CALL_SESSION, decodeCloudCommandResult, newId, signReplyCommand, signReplyList, type CommandResult, type ReplyCommand } from '@doorbell/core'
import { CloudClient } from '@doorbell/viewer/cloud'
import { eventually, startLan } from '../src/harness'
import { startCloud } from '../src/cloud'
import { pairViewer, type PairedViewer } from '../src/trust'
import { openRawKvsViewer } from '../src/cloud/rawViewer'

const REPLY = 'We will be right there'

test('cloud path: a signed quick reply on the doorbell\'s KVS channel plays and is audited; a malformed payload, a replay, another viewer\'s client id and a guest are refused and nothing plays', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-replies-cloud-'))
  const cleanup: Array<() => Promise<void> | void> = [() => { rmSync(dir, { recursive: true, force: true }) }]
  t.after(async () => { for (const c of cleanup.reverse()) await c() })
  const cloud = await startCloud()
  cleanup.push(() => cloud.stop())
  const provisioned = await cloud.provision('home', 'front-door')
  const lan = await startLan({ mesh: { enabled: false }, cloud: provisioned.device, audio: { speaker: { kind: 'wav', path: join(dir, 'speaker.wav') } } })
  cleanup.push(() => lan.stop())
  t.after(() => { if (process.exitCode) console.log(lan.lines.slice(-60).join('\n')) })
  await eventually('the doorbell on IoT Core and its KVS channel', () => lan.device.cloud?.connected.iot === true && lan.device.cloud.connected.kvs, 30_000)
  const owner = await pairViewer(lan.hub, { name: 'Owner phone', role: 'owner' })
  const resident = await pairViewer(lan.hub, { name: 'Kitchen tablet', role: 'resident' })
  const guest = await pairViewer(lan.hub, { name: 'Guest phone', role: 'guest' })
  const saved = await fetch(`${lan.hub.url}api/replies`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${owner.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(await signReplyList({ credential: owner.credential, key: owner.key, home: owner.homeId, replies: [REPLY] }))
  })
  assert.equal(saved.status, 200)
  await eventually('the doorbell to render the reply', () => lan.lines.some((l) => /\[device\/replies\] quick replies ready count=1/.test(l)), 30_000)

  /** A screen away from home: its CloudClient, with the resident's AWS credentials, as the viewer `who`. */
  const away = (who: PairedViewer): CloudClient => {
    const c = new CloudClient({ config: provisioned.viewer, credentials: cloud.resident, viewerId: who.viewerId, log: (level, message) => { lan.lines.push(`${level} [cloud ${who.name}] ${message}`) } })
    cleanup.push(() => c.close())
    return c
  }
  const reply = async (who: PairedViewer): Promise<ReplyCommand> =>
    await signReplyCommand({ credential: who.credential, key: who.key, home: who.homeId, device: 'front-door', session: NO_CALL_SESSION, command: newId('c'), reply: REPLY })
  const refusal = (r: CommandResult): string => r.ok ? 'played' : `${r.error.code}/${r.reason ?? '?'}: ${r.error.message}`
  const played = (): number => lan.device.audio.speaker.packets
  const replies = (): ReturnType<typeof lan.hub.trust.audit.list> => lan.hub.trust.audit.list({ limit: 1000 }).filter((r) => r.kind === 'reply')

  // Bad input, with the unmodified KVS SDK (given copies of the credentials: the AWS SDK writes into what it is given): a `command` that fails its schema gets a clear refusal and reaches nothing.
  const { raw, answers } = await openRawKvsViewer({ region: provisioned.viewer.region, endpoint: provisioned.viewer.kvsEndpoint, channelName: provisioned.device.channelName, credentials: cloud.resident, clientId: resident.viewerId })
  cleanup.push(() => { raw.close() })
  const before = played()
  raw.sendSdpOffer(JSON.stringify({ type: 'command', command: { type: 'reply', id: 'c-broken' } }) as never)
  const answer = await eventually('the refusal of the malformed command', () => answers[0], 15_000)
  const decoded = decodeCloudCommandResult(answer)
  assert.ok(decoded.ok, decoded.ok ? '' : decoded.error)
  assert.match(refusal(decoded.message.result), /^invalid-command\/malformed: /)
  raw.close()
  assert.equal(replies().length, 0, 'nothing that failed its schema reached a command kind')

  // The resident's reply from its screen away from home: played without a call, audited with its path.
  const screen = away(resident)
  const command = await reply(resident)
  const ok = await screen.sendCommand('front-door', command, 20_000)
  assert.ok(ok.ok, refusal(ok))
  assert.equal(ok.id, command.id)
  await eventually('the reply at the speaker', () => played() >= before + 25, 15_000)
  assert.equal(lan.device.state().participants.length, 0, 'no call was made')
  const record = await eventually('the reply in the hub\'s audit log', () => replies().find((r) => r.outcome === 'allowed'), 15_000)
  assert.equal(record.actor, 'Kitchen tablet')
  assert.equal(record.path, 'cloud')
  await eventually('the reply to end', () => lan.lines.some((l) => l.includes('talk lease ended')), 30_000)

  // Refused by the guard, each audited, nothing more played.
  const after = played()
  assert.match(refusal(await screen.sendCommand('front-door', command, 20_000)), /^denied\/replay: this command was already used/)
  // KVS names the sender by its client id: the owner's screen sending the resident's command is not the resident.
  assert.match(refusal(await away(owner).sendCommand('front-door', await reply(resident), 20_000)), /^denied\/wrong-viewer/)
  assert.match(refusal(await away(guest).sendCommand('front-door', await reply(guest), 20_000)), /^denied\/no-talk-right: Guest phone may not talk on this doorbell/)
  await eventually('the refusals in the audit log', () => replies().length >= 4 ? true : undefined, 15_000)
  assert.deepEqual(replies().filter((r) => r.outcome === 'denied').map((r) => r.path), ['cloud', 'cloud', 'cloud'])
  assert.equal(played(), after, 'nothing refused was played')
})
