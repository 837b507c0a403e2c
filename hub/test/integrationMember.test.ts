import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DoorGuard, NO_CALL_SESSION, exportPublicKey, generateSigningKey, memoryLogger, newId, signOutOfCallDoorCommand } from '@doorbell/core'
import { startTrust, TrustError } from '../src/trust/trust'

/**
 * Home Assistant's member (issue 22): made with its own key, which only the hub holds; the door
 * right off until an owner grants it; a grant signed for each command, which the doorbell's own
 * guard takes like any member's, with the right as it stands; the key deleted with the member.
 */

const HOME = 'home-1'
const DEVICE = 'front-door'

test('an integration member signs door commands with its own key, with the door right the owner gave it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-integration-'))
  const lines: string[] = []
  const trust = await startTrust({ dir, homeId: HOME, hubName: 'Hub', log: memoryLogger(lines, 'trust') })
  try {
    const keys = await generateSigningKey(false)
    const owner = await trust.pair({ kind: 'viewer', code: trust.setupCode()!.code, id: 'v-owner', name: 'Owner', key: await exportPublicKey(keys.publicKey) })
    const { member } = await trust.createIntegration(owner.member, 'Home Assistant')
    assert.equal(member.door, false)
    const keyFile = join(dir, 'integrations', `${member.id}.key`)
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600)
    assert.equal((await stat(join(dir, 'integrations'))).mode & 0o777, 0o700)
    const pem = await readFile(keyFile, 'utf8')
    assert.ok(!lines.some((l) => l.includes(pem.split('\n')[1]!)), 'the key is in no log line')

    const guard = new DoorGuard({ homeId: HOME, deviceId: DEVICE, homeKey: trust.homeKey })
    const command = async () => {
      const s = await trust.integrationSigner(member.id)
      return await signOutOfCallDoorCommand({ credential: s.credential, key: s.key, home: HOME, device: DEVICE, command: newId('c') })
    }
    const ctx = { sessionId: NO_CALL_SESSION, viewerId: member.subject }
    const before = await guard.check(await command(), ctx)
    assert.deepEqual(before.ok ? 'ok' : [before.reason, before.grant?.name, before.grant?.role], ['no-door-right', 'Home Assistant (integration)', 'guest'])

    // Only an owner, only an integration, only a boolean change: refused otherwise, and nothing changes.
    await assert.rejects(trust.setIntegrationDoor(member, member.id, true), (err: TrustError) => err.code === 'forbidden')
    await assert.rejects(trust.setIntegrationDoor(owner.member, owner.member.id, true), (err: TrustError) => err.code === 'not-found')
    assert.equal(trust.members().find((m) => m.id === member.id)?.door, false)

    assert.equal((await trust.setIntegrationDoor(owner.member, member.id, true)).door, true)
    const allowed = await guard.check(await command(), ctx)
    assert.ok(allowed.ok, allowed.ok ? '' : allowed.message)
    assert.ok(trust.audit.all().some((r) => r.kind === 'pairing' && r.message === 'granted the door right of Home Assistant (integration)'))
    // The grant is short-lived and for this member only.
    const signer = await trust.integrationSigner(member.id)
    assert.equal(signer.member.id, member.id)
    assert.equal(signer.key.extractable, false, 'nothing can read the key back out')

    await trust.revoke(owner.member, member.id)
    assert.ok(!existsSync(keyFile), 'deleted with the member')
    await assert.rejects(trust.integrationSigner(member.id), (err: TrustError) => err.code === 'not-found')
    await assert.rejects(trust.setIntegrationDoor(owner.member, member.id, false), (err: TrustError) => err.code === 'not-found')
  } finally {
    trust.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
