import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { RepliesMessage, RepliesStamp, peek, signReplyList, topics, type RepliesResponse, type SignedReplies } from '@doorbell/core'
import { ApiError } from '@doorbell/viewer/lib'
import { connectAs, makeHomeKey, pairDevice, pairOwner, startClusterHub, type ClusterHub, type Owner, type PairedDevice } from '../src/cluster'
import { TestPostgres } from '../src/postgres'
import { TestRedis } from '../src/redis'

/**
 * The quick replies' seq on a cluster (issue 17's review, issue 24): two PUTs at once through two
 * hubs cannot both be stamped N+1. PostgreSQL keeps a list only over a lower seq; the hub that
 * loses reads the winner's list and stamps N+2 (its list is newer), or answers 409 (it is older).
 * Every list saved has a seq of its own, the kept one is the highest, every hub serves it, and it
 * is what the broker retains for doorbells that connect later.
 */

const HOME = 'home'
const ROUNDS = 8

const seqOf = (signed: SignedReplies | null): number => {
  const stamp = signed?.stamp === undefined ? null : peek(RepliesStamp, signed.stamp)
  assert.ok(stamp?.ok, 'a stamped list')
  return stamp.value.seq
}

describe('quick replies saved through two hubs at once', { timeout: 240_000 }, () => {
  let dir: string
  let redis: TestRedis
  let db: TestPostgres
  const hubs: ClusterHub[] = []
  let A: ClusterHub, B: ClusterHub
  let owner: Owner
  let door: PairedDevice

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cluster-replies-'))
    redis = await TestRedis.start()
    db = await TestPostgres.start()
    const postgresUrl = await db.createDatabase('city')
    const homeKey = makeHomeKey(join(dir, 'provisioned'))
    A = await startClusterHub(dir, 'a', { redis, postgresUrl, homeKey })
    hubs.push(A)
    owner = await pairOwner(A)
    B = await startClusterHub(dir, 'b', { redis, postgresUrl, homeKey })
    hubs.push(B)
    door = await pairDevice(owner.on(A), A)
  })

  after(async () => {
    for (const hub of hubs) if (hub.proc.proc.exitCode !== null) console.log(`hub ${hub.name} exited ${hub.proc.proc.exitCode}:\n${hub.proc.lines.slice(-30).join('\n')}`)
    for (const hub of hubs) await hub.stop('SIGKILL')
    await redis?.destroy()
    await db?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const save = async (hub: ClusterHub, replies: string[], now: number): Promise<RepliesResponse | ApiError> =>
    await owner.on(hub).saveReplies(await signReplyList({ credential: owner.credential, key: owner.key.privateKey, home: HOME, replies, now })).catch((err: unknown) => {
      if (err instanceof ApiError) return err
      throw err
    })

  it('each list saved gets a seq of its own; the newest is kept, served and retained', async () => {
    const first = await save(A, ['Coming!'], Date.now() - 60_000)
    assert.ok(!(first instanceof ApiError), String(first))
    const seqs = [seqOf(first.signed)]
    let base = Date.now() - 50_000
    let conflicts = 0
    for (let round = 0; round < ROUNDS; round++) {
      // Through A and B at once; B's list is the newer by the owner's clock in even rounds, A's in odd ones.
      const [a, b] = await Promise.all([save(A, [`A ${round}`], base + (round % 2)), save(B, [`B ${round}`], base + 1 - (round % 2))])
      base += 10
      for (const r of [a, b]) {
        if (r instanceof ApiError) {
          assert.equal(r.status, 409, r.message)
          assert.match(r.message, /newer list|other hubs/)
          conflicts++
        } else {
          seqs.push(seqOf(r.signed))
        }
      }
      assert.ok(!(a instanceof ApiError && b instanceof ApiError), `round ${round}: one of the two is saved`)
    }
    assert.equal(new Set(seqs).size, seqs.length, `no seq given twice: ${seqs.join(', ')}`)
    const top = Math.max(...seqs)
    const served = await Promise.all(hubs.map(async (hub) => await owner.on(hub).replies()))
    for (const [i, r] of served.entries()) assert.equal(seqOf(r.signed), top, `${hubs[i]!.name} serves the highest seq`)
    assert.deepEqual(served[0]!.replies, served[1]!.replies)
    const kept = (await db.query("SELECT seq FROM shared_documents WHERE name = 'replies'", [], 'city')).rows[0] as { seq: string }
    assert.equal(Number(kept.seq), top)

    // What a doorbell connecting now gets, through either hub: the newest.
    for (const hub of hubs) {
      const client = await connectAs(hub.mqttUrl, door)
      try {
        const retained = new Promise<SignedReplies>((resolve) => {
          client.on('message', (topic, payload) => { if (topic === topics.replies(HOME)) resolve(RepliesMessage.parse(JSON.parse(payload.toString())).signed) })
        })
        await client.subscribeAsync(topics.replies(HOME), { qos: 1 })
        assert.equal(seqOf(await retained), top, `retained through ${hub.name}`)
      } finally {
        await client.endAsync(true)
      }
    }
    console.log(`${ROUNDS} rounds: ${seqs.length} lists saved with seqs ${seqs.join(', ')}; ${conflicts} answered 409`)
  })

  it('bad input through either hub changes nothing', async () => {
    const before = await owner.on(A).replies()
    const res = await fetch(`${B.base}/api/replies`, { method: 'PUT', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ credential: owner.credential, list: 'not.a.token' }) })
    assert.equal(res.status, 400)
    const stale = await save(A, ['Old'], 1_000)
    assert.ok(stale instanceof ApiError && stale.status === 409, 'an older list is refused')
    assert.equal(seqOf((await owner.on(B).replies()).signed), seqOf(before.signed))
  })
})
