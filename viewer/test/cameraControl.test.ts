import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Reply, encode } from '@doorbell/core'
import { controlReply } from '../src/camera/control'

test('an open-door command gets the no-door nack, naming the command', () => {
  // What a resident's screen sends: signed, with its grant. The node has no door, so it checks nothing.
  const command = JSON.stringify({ type: 'unlock', id: 'cmd-1', credential: 'x.y', proof: 'x.y' })
  const r = controlReply(command)
  assert.deepEqual(r, { type: 'nack', id: 'cmd-1', error: { code: 'no-door', message: 'this camera node has no door' } })
  // It is a reply the viewer's schema accepts (the no-door code is in the protocol).
  assert.equal(encode(Reply, r), JSON.stringify(r))
})

test('the command arrives as text or bytes: the same answer', () => {
  const bytes = new TextEncoder().encode(JSON.stringify({ type: 'unlock', id: 'cmd-2' }))
  const fromView = controlReply(bytes)
  assert.ok(fromView.type === 'nack' && fromView.error.code === 'no-door' && fromView.id === 'cmd-2')
  const r = controlReply(bytes.buffer)
  assert.ok(r.type === 'nack' && r.error.code === 'no-door' && r.id === 'cmd-2')
})

test('an unreadable id is not echoed; the door is still refused as no-door', () => {
  for (const id of [undefined, null, 42, 'a/b', 'x'.repeat(65)]) {
    const r = controlReply(JSON.stringify({ type: 'unlock', id }))
    assert.ok(r.type === 'nack' && r.error.code === 'no-door' && r.id === null, String(id))
  }
})

test('anything else on the channel is an invalid command, with a message that says why', () => {
  const cases: Array<[unknown, RegExp]> = [
    ['{', /not JSON/],
    ['[1,2]', /JSON object/],
    ['"unlock"', /JSON object/],
    [JSON.stringify({ type: 'ring', id: 'c3' }), /unknown command type "ring"/],
    [JSON.stringify({ id: 'c4' }), /unknown command type null/],
    [{ not: 'bytes' }, /JSON text message/],
    ['x'.repeat(70_000), /too large/]
  ]
  for (const [data, message] of cases) {
    const r = controlReply(data)
    assert.ok(r.type === 'nack' && r.error.code === 'invalid-command', String(data).slice(0, 20))
    assert.match(r.type === 'nack' ? r.error.message : '', message)
    assert.doesNotThrow(() => encode(Reply, r))
  }
  const named = controlReply(JSON.stringify({ type: 'ring', id: 'c3' }))
  assert.equal(named.type === 'nack' && named.id, 'c3')
})
