import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DoorGuard, PairResponse, RepliesResponse, RepliesStamp, exportPublicKey, generateSigningKey, importPublicKey, memoryLogger, newId, open,
  signReplyList, type SigningKeyPair
} from '@doorbell/core'
import { startHub, type Hub } from '../src/hub'

/**
 * The hub stamps the owner's quick replies with its own sequence (hub/src/replies): each list
 * kept gets the next number, signed by the home key over that list, across a restart; a doorbell's
 * guard takes them in that order.
 */

const HOME = 'home'
let dir: string
let hub: Hub

const start = async (): Promise<Hub> => await startHub({ homeId: HOME, host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir: dir, mesh: { enabled: false } }, { log: memoryLogger() })

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'doorbell-replies-hub-'))
  hub = await start()
})
after(async () => {
  await hub.stop()
  await rm(dir, { recursive: true, force: true })
})

test('each list saved is stamped with the next number of the hub\'s sequence, signed by the home key, also after a restart; a doorbell takes them in that order', async () => {
  const keys: SigningKeyPair = await generateSigningKey(false)
  const paired = await fetch(new URL('api/pair', hub.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'viewer', code: hub.trust.setupCode()!.code, id: newId('v'), name: 'Owner', key: await exportPublicKey(keys.publicKey) }) })
  const owner = PairResponse.parse(await paired.json())
  const save = async (replies: string[], now: number): Promise<{ status: number, body: RepliesResponse & { error?: string } }> => {
    const signed = await signReplyList({ credential: owner.credential!, key: keys.privateKey, home: HOME, replies, now })
    const res = await fetch(new URL('api/replies', hub.url), { method: 'PUT', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' }, body: JSON.stringify(signed) })
    return { status: res.status, body: await res.json() as RepliesResponse & { error?: string } }
  }
  const seqOf = async (r: RepliesResponse): Promise<number> => {
    const stamp = await open(RepliesStamp, r.signed!.stamp!, await importPublicKey(hub.trust.homeKey))
    assert.ok(stamp.ok, 'signed by the home key')
    return stamp.value.seq
  }
  const device = new DoorGuard({ homeId: HOME, deviceId: 'front-door', homeKey: hub.trust.homeKey })

  const t0 = Date.now()
  const first = await save(['One'], t0)
  assert.equal(first.status, 200, JSON.stringify(first.body))
  assert.equal(await seqOf(first.body), 1)
  const second = await save(['Two'], t0 + 1)
  assert.equal(await seqOf(second.body), 2)
  // A page saving over a newer list (its date no later) is refused: nothing is stamped.
  assert.equal((await save(['Stale'], t0)).status, 409)

  // The doorbell takes the second; a late copy of the first changes nothing.
  assert.ok((await device.takeReplies(second.body.signed)).ok)
  const late = await device.takeReplies(first.body.signed)
  assert.ok(late.ok && !late.changed && late.list.replies[0] === 'Two')

  // A restart: the sequence goes on from what was kept.
  await hub.stop()
  hub = await start()
  const third = await save(['Three'], t0 + 2)
  assert.equal(third.status, 200, JSON.stringify(third.body))
  assert.equal(await seqOf(third.body), 3)
  const taken = await device.takeReplies(third.body.signed)
  assert.ok(taken.ok && taken.changed)
})
