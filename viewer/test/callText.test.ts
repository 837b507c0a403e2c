import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PATH_TEXT, doorText, endText, linkText, whoIsIn } from '../src/composables/callText'
import { loadIdentity } from '../src/composables/identity'

const lock = (status: 'locked' | 'unlocking' | 'unlocked' | 'relocking' | 'fault', extra = {}) =>
  ({ status, relockAt: null, version: 1, boot: 'b1', error: null, ...extra })

test('the door line says only what the device reported', () => {
  assert.equal(doorText(null, 0, false), 'Door state unknown')
  assert.equal(doorText(lock('locked'), 0, false), 'Locked')
  assert.equal(doorText(lock('locked'), 0, true), 'Opening…', 'a command in flight shows as opening, not open')
  assert.equal(doorText(lock('unlocking'), 0, false), 'Opening…')
  assert.equal(doorText(lock('unlocked', { relockAt: 10_000 }), 5_100, false), 'Door open · locks in 5 s')
  assert.equal(doorText(lock('unlocked', { relockAt: 10_000 }), 20_000, false), 'Door open · locks in 0 s')
  assert.equal(doorText(lock('relocking'), 0, false), 'Locking…')
  assert.equal(doorText(lock('fault', { error: 'relay failed' }), 0, false), 'Lock fault: relay failed')
})

test('an offline doorbell\'s lock is unknown, never "Door open · locks in 0 s"', () => {
  const offline = { name: 'Front door' }
  assert.equal(doorText(null, 20_000, false, offline), 'Front door is offline · lock state unknown')
  assert.equal(doorText(null, 20_000, true, offline), 'Front door is offline · lock state unknown', 'not "Opening…" either')
  // A report the doorbell made since (over the call's data channel) is its own word: shown.
  assert.equal(doorText(lock('relocking'), 0, false, offline), 'Locking…')
})

test('every way a call ends has words a resident understands', () => {
  assert.equal(endText('missed', null), 'Missed ring')
  assert.equal(endText('answered-elsewhere', null), 'Answered on another screen')
  assert.match(endText('failed', 'no answer from the doorbell'), /no answer from the doorbell.*home network/)
  assert.match(endText('busy', 'the doorbell already has 12 viewers'), /busy: the doorbell already has 12 viewers/)
  assert.equal(endText(null, null), '')
})

test('who is in the call, with "you" for this screen', () => {
  const p = (viewerId: string, viewerName: string) => ({ viewerId, viewerName, sessionId: `s${viewerId}`, since: 0 })
  assert.equal(whoIsIn([], 'me'), '')
  assert.equal(whoIsIn([p('me', 'Kitchen')], 'me'), 'In the call: you')
  assert.equal(whoIsIn([p('me', 'Kitchen'), p('x', 'Hall phone')], 'me'), 'In the call: you and Hall phone')
  assert.equal(whoIsIn([p('a', 'A'), p('b', 'B'), p('c', 'C')], 'me'), 'In the call: A, B and C')
})

test('a browser keeps its viewer id; ?name= names it', () => {
  const store = new Map<string, string>()
  const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => { store.set(k, v) } }
  const first = loadIdentity(storage, '?name=Kitchen%20tablet')
  assert.match(first.viewerId, /^v[a-z0-9]+$/)
  assert.equal(first.viewerName, 'Kitchen tablet')
  const again = loadIdentity(storage, '')
  assert.deepEqual(again, first, 'the same browser is the same viewer')
  store.set('doorbell.viewerId', 'bad/id#')
  assert.notEqual(loadIdentity(storage, '').viewerId, 'bad/id#', 'a corrupt stored id is replaced')
})

test('path names: one table for the link line and the call badge', () => {
  assert.equal(linkText('lan', false), 'Home network')
  assert.equal(linkText('direct', false), 'Direct to the doorbell')
  assert.equal(linkText('cloud', true), 'Cloud', 'a path that is up is named whatever else is true')
  assert.equal(linkText(null, false), 'Connecting…')
  assert.equal(linkText(null, true), 'No connection, retrying…')
  assert.deepEqual(Object.values(PATH_TEXT).map((p) => p.short), ['Home network', 'Direct', 'Cloud'])
  for (const p of Object.values(PATH_TEXT)) assert.ok(p.title.length > 0)
})
