import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLIP_PART_BYTES, memoryLogger, type CallRecord, type ClipPart, type KeptRing, type RingEvent } from '@doorbell/core'
import { HISTORY_DB_FILE, HistoryStore } from '../src/history/store'
import { HistoryThread, HistoryThreadError } from '../src/history/threadStore'
import { historyIngest } from '../src/history/ingest'
import { clipIngest } from '../src/history/clipIngest'
import { ClipStore } from '../src/history/clipStore'

/**
 * One hub's history on a thread of its own (threadStore.ts): a real node:sqlite file written by a
 * real worker thread. What the broker's thread needs of it: order kept, nothing lost (a slow disk,
 * a stop), reads that see the writes sent before them, and errors as they were.
 */

const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 7), Buffer.from([0xff, 0xd9])])
const ring = (ringId: string, at: number): RingEvent => ({ type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId, at, count: 1 })
const missed = (ringId: string, at: number): CallRecord => ({ deviceId: 'front', ringId, startedAt: at, endedAt: at + 12_000, outcome: 'missed', answeredBy: [], unlocks: [] })
const all = { memberId: 'owner', devices: null }

async function opened (t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ dir: string, store: HistoryThread }> {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-thread-'))
  const store = await HistoryThread.open(dir)
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }) })
  return { dir, store }
}

/** The ingest as the broker calls it: a device's message, after the gate. */
function ingestInto (store: HistoryThread, lines: string[], shown: Array<{ memberId: string, screen: string }> = []): (kind: string, payload: unknown) => void {
  const ingest = historyIngest({ store, deviceName: () => 'Front door', log: memoryLogger(lines, 'history'), shownTo: () => shown })
  return (kind, payload) => { ingest({ cmd: 'publish', topic: `doorbell/home/front/${kind}`, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: false, dup: false } as never, { id: 'device-front' } as never) }
}

test('calls are made in the order sent, and a read sees every write sent before it, with what those set off (a ring\'s screens, its picture)', async (t) => {
  const { store } = await opened(t)
  const lines: string[] = []
  const publish = ingestInto(store, lines, [{ memberId: 'm-ann', screen: 'viewer-ann-1' }])
  for (let i = 0; i < 50; i++) publish('ring', ring(`r${i}`, 1000 + i))
  publish('snapshot', { type: 'snapshot', deviceId: 'front', ringId: 'r49', at: 1100, seq: 1, jpeg: JPEG.toString('base64') })
  publish('calls', missed('r49', 1049))
  // Nothing awaited above: each is a message to the thread, and the picture and the screens wait
  // for the ring's answer (its id). The read waits for all of it.
  void store.dismiss('front', 'r49', { id: 'm-ann', name: 'Ann', screen: 'viewer-ann-1' }, 1200)
  const page = await store.list({ limit: 100 }, all)
  assert.equal(page.events.length, 50)
  assert.deepEqual(page.events.map((e) => e.ringId), Array.from({ length: 50 }, (_, i) => `r${49 - i}`))
  const last = page.events[0]!
  assert.equal(last.snapshot, true, 'the picture sent after the ring is there')
  assert.equal(last.outcome, 'dismissed')
  assert.equal(last.everyoneDismissed, true, 'the screen shown the ring was noted, and dismissed it')
  assert.deepEqual(await store.snapshot(last.id), JPEG)
  assert.ok(Buffer.isBuffer(await store.snapshot(last.id)), 'a picture comes back as a Buffer (Fastify sends it as bytes)')
  assert.deepEqual(lines.filter((l) => l.startsWith('error') || l.startsWith('warn')), [])
})

test('a ring the doorbell kept, and its clip right behind it: the clip finds the ring (the kept ring\'s calls are all sent at once, its row first)', async (t) => {
  const { dir, store } = await opened(t)
  const lines: string[] = []
  const history = historyIngest({ store, deviceName: () => 'Front door', log: memoryLogger(lines, 'history') })
  const clips = new ClipStore(dir)
  const taker = clipIngest({ clips, eventOf: (deviceId, ringId) => store.ringEventId(deviceId, ringId), log: memoryLogger(lines, 'hub') })
  t.after(taker.stop)
  const publish = (device: string, kind: string, payload: unknown): void => {
    const packet = { cmd: 'publish', topic: `doorbell/home/${device}/${kind}`, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: false, dup: false } as never
    const client = { id: `device-${device}` } as never
    history(packet, client)
    taker.listener(packet, client)
  }
  // As the doorbell hands over what it kept while the hub was away: the ring (its steps wait for
  // the thread's answers: is it known, then its row, its picture, its end), then its clip at once.
  const kept: KeptRing = { type: 'kept', deviceId: 'front', ring: ring('k1', 1000), snapshot: { type: 'snapshot', deviceId: 'front', ringId: 'k1', at: 1001, seq: 1, jpeg: JPEG.toString('base64') }, record: missed('k1', 1000) }
  const video = Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('ftypisom', 'latin1'), Buffer.from([0, 0, 2, 0]), Buffer.alloc(CLIP_PART_BYTES + 100, 5)])
  const sha256 = createHash('sha256').update(video).digest('hex')
  publish('front', 'kept', kept)
  for (let part = 0; part < 2; part++) {
    const p: ClipPart = { type: 'clip', deviceId: 'front', ringId: 'k1', container: 'mp4', seconds: 5, bytes: video.length, sha256, part, parts: 2, data: video.subarray(part * CLIP_PART_BYTES, (part + 1) * CLIP_PART_BYTES).toString('base64') }
    publish('front', 'clip', p)
  }
  // Another doorbell's ring meanwhile.
  publish('side', 'ring', { ...ring('s1', 1002), deviceId: 'side', deviceName: 'Side door' })
  const event = async (): Promise<number | undefined> => (await store.list({ limit: 10 }, all)).events.find((e) => e.ringId === 'k1')?.id
  for (let i = 0; i < 200 && (clips.state((await event()) ?? -1) === undefined); i++) await sleep(10)
  const id = await event()
  assert.ok(id !== undefined, 'the kept ring is recorded')
  assert.deepEqual(clips.state(id), { type: 'video/mp4', bytes: video.length, seconds: 5 }, lines.join('\n'))
  assert.ok(!lines.some((l) => l.includes('a clip for a ring the history does not have')), lines.join('\n'))
  const page = await store.list({ limit: 10 }, all)
  assert.deepEqual(page.events.map((e) => e.ringId).sort(), ['k1', 's1'])
  assert.equal(page.events.find((e) => e.ringId === 'k1')?.snapshot, true)
})

test('a database held by another writer (a slow disk) holds the history\'s thread, not the caller\'s: the event loop goes on, and the ring is written when it can be', async (t) => {
  const { dir, store } = await opened(t)
  await store.addRing(ring('r0', 1000))
  // Another connection holds the write lock: the thread's insert waits (its busy timeout, 5 s),
  // as a write waits on a disk that other work keeps busy.
  const other = new DatabaseSync(join(dir, HISTORY_DB_FILE))
  other.exec('BEGIN IMMEDIATE')
  const written = store.addRing(ring('r1', 2000))
  let ticks = 0
  const timer = setInterval(() => { ticks++ }, 10)
  const started = performance.now()
  await sleep(400)
  clearInterval(timer)
  const waited = performance.now() - started
  assert.ok(waited < 1500, `the event loop was not held (${Math.round(waited)} ms for a 400 ms sleep)`)
  assert.ok(ticks >= 10, `timers kept firing while the write waited (${ticks})`)
  assert.equal(store.backlog, 1, 'the ring waits in the thread\'s queue')
  other.exec('COMMIT')
  other.close()
  assert.equal(await written, 2, 'written once the lock went: nothing lost')
  assert.deepEqual((await store.list({ limit: 10 }, all)).events.map((e) => e.ringId), ['r1', 'r0'])
})

test('a disk that falls behind is reported once, with how many calls wait (none dropped), and again when it has caught up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-thread-backlog-'))
  const reports: Array<[string, number]> = []
  const store = await HistoryThread.open(dir, { backlogWarnAt: 20, onBacklog: (state, waiting) => { reports.push([state, waiting]) } })
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }) })
  await store.addRing(ring('r0', 1000))
  const other = new DatabaseSync(join(dir, HISTORY_DB_FILE))
  other.exec('BEGIN IMMEDIATE')
  const written = Array.from({ length: 30 }, (_, i) => store.addRing(ring(`r${i + 1}`, 2000 + i)))
  assert.deepEqual(reports, [['behind', 20]], 'reported once, as it reached the mark')
  other.exec('COMMIT')
  other.close()
  await Promise.all(written)
  assert.deepEqual(reports, [['behind', 20], ['caught-up', 30]])
  assert.equal(await store.count(), 31, 'every ring written')
  // Quiet again: a few calls are not reported.
  await store.addRing(ring('r99', 9000))
  assert.equal(reports.length, 2)
})

test('closing writes every call sent first, in order (a hub stopped in the middle of rings loses none)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-thread-close-'))
  try {
    const store = await HistoryThread.open(dir)
    const answers: Array<Promise<unknown>> = []
    for (let i = 0; i < 300; i++) {
      answers.push(store.addRing(ring(`r${i}`, 1000 + i)))
      answers.push(store.addShown(i + 1, ['m-ann'], [{ memberId: 'm-ann', screen: `viewer-ann-${i}` }]))
    }
    await store.close()
    assert.equal((await Promise.all(answers)).length, 600, 'every call was answered')
    await assert.rejects(store.count(), (err: Error) => err instanceof HistoryThreadError && /closed/.test(err.message), 'after close: a clear error')
    const after = new HistoryStore(dir)
    try {
      assert.equal(after.count(), 300)
      const events = after.list({ limit: 300 }, all).events
      assert.deepEqual(events.map((e) => e.id), events.map((e) => Number(e.ringId!.slice(1)) + 1), 'ids in the order the rings were sent')
    } finally {
      after.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a full disk (ENOSPC) on the thread: the same clear logged error, the ring kept and marked without its picture', async (t) => {
  const { dir, store } = await opened(t)
  const snapshots = join(dir, 'snapshots')
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', snapshots])
  assert.equal(mounted.status, 0, `mount a tmpfs (this test runs as root, as the suite does): ${mounted.stderr.toString()}`)
  try {
    try { writeFileSync(join(snapshots, 'filler'), Buffer.alloc(128 * 1024)) } catch { /* full now */ }
    const id = await store.addRing(ring('r0', 1000))
    await assert.rejects(store.setSnapshot(id, 1, JPEG), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC' && /ENOSPC/.test(err.message), 'the errno crosses the thread')
    const lines: string[] = []
    const publish = ingestInto(store, lines)
    publish('ring', ring('r1', 2000))
    publish('snapshot', { type: 'snapshot', deviceId: 'front', ringId: 'r1', at: 2001, seq: 1, jpeg: JPEG.toString('base64') })
    const [event] = (await store.list({ limit: 5 }, all)).events
    assert.equal(event?.ringId, 'r1')
    assert.equal(event?.snapshot, false)
    assert.equal(event?.noPicture, 'the hub could not store the picture')
    assert.ok(lines.some((l) => /^error .*the disk is full: the ring is kept in the history without its picture.*ENOSPC/.test(l)), lines.join('\n'))
  } finally {
    spawnSync('umount', [snapshots])
  }
})

test('bad input and a database it cannot open: clear errors, nothing sent, the thread still answers', async (t) => {
  const { store } = await opened(t)
  // A value that cannot cross to the thread is refused before anything is sent.
  await assert.rejects(store.addRing({ ...ring('r0', 1000), at: (() => 1) as unknown as number }), (err: Error) => err.name === 'DataCloneError')
  assert.equal(await store.count(), 0)
  assert.equal(await store.addRing(ring('r1', 1000)), 1)
  // A store error comes back as thrown, and changes nothing.
  assert.deepEqual(await store.dismiss('front', 'nope', { id: 'm', name: 'M' }), { ok: false, status: 404, error: 'no such ring' })

  const newer = mkdtempSync(join(tmpdir(), 'doorbell-history-thread-newer-'))
  try {
    const db = new DatabaseSync(join(newer, HISTORY_DB_FILE))
    db.exec('PRAGMA user_version = 99')
    db.close()
    await assert.rejects(HistoryThread.open(newer), /written by a newer hub \(schema 99/)
  } finally {
    rmSync(newer, { recursive: true, force: true })
  }
})

test('a thread that dies is started again on the same file: the calls it had not answered are made, once each, in order; dying too often, calls fail clearly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-thread-crash-'))
  const failures: Array<[string, boolean]> = []
  const store = await HistoryThread.open(dir, { onFailure: (err, restarted) => { failures.push([err.message, restarted]) } })
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }) })
  // The thread itself (private to the store): killed as a crash would end it.
  const kill = async (): Promise<void> => { await (store as unknown as { worker: { terminate: () => Promise<number> } }).worker.terminate() }
  const answers: Array<Promise<number>> = []
  for (let i = 0; i < 200; i++) answers.push(store.addRing(ring(`r${i}`, 1000 + i)))
  // Killed once it has written the first ring, with the rest still in its queue (or in flight).
  await answers[0]
  assert.ok(store.backlog > 0, 'rings still unanswered when the thread is killed')
  await kill()
  const ids = await Promise.all(answers)
  // Ids grow in the order sent (a call made again after the crash may skip one: SQLite's upsert
  // takes an AUTOINCREMENT value even when it inserts nothing).
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]!), `every ring answered with its id, in order: ${ids.join(',')}`)
  assert.equal(await store.count(), 200, 'each ring once')
  const byId = new Map((await store.list({ limit: 200 }, all)).events.map((e) => [e.id, e.ringId]))
  assert.deepEqual(ids.map((id) => byId.get(id)), ids.map((_, i) => `r${i}`), 'each answer is its own ring\'s id')
  assert.deepEqual(failures.map(([, restarted]) => restarted), [true])
  // Two more deaths within the minute are taken; the next one is one too many.
  await kill()
  assert.ok(await store.addRing(ring('r200', 3000)) > ids.at(-1)!)
  await kill()
  assert.equal(await store.count(), 201)
  await kill()
  await assert.rejects(store.count(), (err: Error) => err instanceof HistoryThreadError && /ended/.test(err.message))
  assert.deepEqual(failures.map(([, restarted]) => restarted), [true, true, true, false])
  const after = new HistoryStore(dir)
  try { assert.equal(after.count(), 201, 'nothing written twice, nothing lost') } finally { after.close() }
})

test('who was shown a ring cannot be read (its lookup throws): the ring is still recorded, and a warning says why', async (t) => {
  const { store } = await opened(t)
  const lines: string[] = []
  const ingest = historyIngest({ store, deviceName: () => 'Front door', log: memoryLogger(lines, 'history'), shownTo: () => { throw new Error('the broker is gone') } })
  ingest({ cmd: 'publish', topic: 'doorbell/home/front/ring', payload: Buffer.from(JSON.stringify(ring('r1', 1000))), qos: 1, retain: false, dup: false } as never, { id: 'device-front' } as never)
  assert.deepEqual((await store.list({ limit: 5 }, all)).events.map((e) => e.ringId), ['r1'])
  assert.ok(lines.some((l) => /^warn .*could not note who was shown a ring.*the broker is gone/.test(l)), lines.join('\n'))
})

test('once the history is closed, a new call (a write or a read) is refused clearly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-history-thread-closed-'))
  const store = await HistoryThread.open(dir)
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const written = store.addRing(ring('r-last', 1000))
  const closed = store.close()
  await written
  await closed
  await assert.rejects(store.addRing(ring('r-after', 2000)), /the history is closed/)
  await assert.rejects(store.count(), /the history is closed/)
})

