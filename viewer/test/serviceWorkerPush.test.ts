import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { runInNewContext } from 'node:vm'
import { RingPush, type RingEvent } from '@doorbell/core'
import { ringNotification, ringPicture } from '../src/composables/useRingAlert'

/**
 * The service worker's `push` handler (public/sw.js, plain JS) read in a bare context: the
 * notification it shows for the hub's RingPush is the one the open page shows for the same ring
 * (ringNotification), a malformed push shows nothing, and a ring the page already showed is left
 * as it is. In Chromium: tests/e2e/push.test.ts.
 */

type Listener = (event: unknown) => void

function loadWorker (alreadyShown: Array<{ data: unknown }> = []) {
  const listeners = new Map<string, Listener>()
  const shown: Array<{ title: string, options: Record<string, unknown> }> = []
  const self = {
    addEventListener: (type: string, l: Listener) => { listeners.set(type, l) },
    registration: {
      getNotifications: async () => alreadyShown,
      showNotification: async (title: string, options: Record<string, unknown>) => { shown.push({ title, options }) }
    }
  }
  const warned: string[] = []
  runInNewContext(readFileSync(new URL('../public/sw.js', import.meta.url), 'utf8'), { self, console: { warn: (m: string) => warned.push(m) }, URL, Date, Number })
  const push = async (payload: string | null): Promise<void> => {
    const waits: Array<Promise<unknown>> = []
    listeners.get('push')!({ data: payload === null ? null : { json: () => JSON.parse(payload) }, waitUntil: (p: Promise<unknown>) => waits.push(p) })
    await Promise.all(waits)
  }
  return { push, shown, warned }
}

const at = Date.UTC(2026, 0, 1, 12)
const message: RingPush = { v: 1, kind: 'ring', deviceId: 'front', deviceName: 'Front door', ringId: 'r1', at, jpeg: '/9j/4AAQSkZJRgABAQ==' }
const ring: RingEvent = { type: 'ring', deviceId: 'front', deviceName: 'Front door', ringId: 'r1', at, count: 1 }

test('a ring pushed to a closed page shows the same notification as the open page\'s, with the push\'s picture', async () => {
  const w = loadWorker()
  await w.push(JSON.stringify(RingPush.parse(message)))
  const page = ringNotification(ring, ringPicture({ type: 'snapshot', deviceId: 'front', ringId: 'r1', at, seq: 1, jpeg: message.jpeg }))
  assert.equal(w.shown.length, 1)
  assert.equal(w.shown[0]!.title, page.title)
  assert.deepEqual(JSON.parse(JSON.stringify(w.shown[0]!.options)), JSON.parse(JSON.stringify(page.options)))
  // No picture in the push: none shown (the page would say "no picture" only when the doorbell said so).
  const bare = loadWorker()
  await bare.push(JSON.stringify({ ...message, jpeg: null }))
  assert.equal(bare.shown[0]!.options.image, undefined)
})

test('a malformed push shows nothing; a ring the open page already showed is left as it is', async () => {
  const bad = [null, 'not json', JSON.stringify({ ...message, v: 2 }), JSON.stringify({ ...message, deviceId: 'a/b' }), JSON.stringify({ ...message, jpeg: 'PHN2Zz4=' }), JSON.stringify({ ...message, deviceName: '' }), JSON.stringify({ ...message, at: -1 })]
  for (const payload of bad) {
    const w = loadWorker()
    await w.push(payload)
    assert.equal(w.shown.length, 0, String(payload))
    assert.equal(w.warned.length, 1)
  }
  const open = loadWorker([{ data: { kind: 'ring', deviceId: 'front', ringId: 'r1' } }])
  await open.push(JSON.stringify(message))
  assert.equal(open.shown.length, 0)
  const older = loadWorker([{ data: { kind: 'ring', deviceId: 'front', ringId: 'r0' } }])
  await older.push(JSON.stringify(message))
  assert.equal(older.shown.length, 1, 'an earlier ring\'s notification is replaced')
})
