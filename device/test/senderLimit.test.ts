import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeCloudCommandResult, decodeCloudDismissResult, memoryLogger, type CommandResult } from '@doorbell/core'
import { ALL_SENDERS_FACTOR, senderLimiter } from '../src/paths/senderLimit'
import { kvsCommands } from '../src/paths/cloud/kvsCommands'

/** The doorbell's one per-sender limit (senderLimit.ts), and the KVS channel's use of it (kvsCommands.ts). */

test('a sender past the limit is refused until the window passes; another sender is not; the refusals are logged once a window', () => {
  let now = 1_000
  const lines: string[] = []
  const limiter = senderLimiter({ limit: { count: 3, windowMs: 1000 }, log: memoryLogger(lines, 'x'), what: 'commands', now: () => now })
  assert.deepEqual([1, 2, 3, 4, 5].map(() => limiter.admit('v-a')), [true, true, true, false, false])
  assert.equal(limiter.admit('v-b'), true, 'another sender has its own count')
  assert.equal(lines.filter((l) => l.includes('refused commands: too many from this sender')).length, 1, 'one line for the window')
  assert.match(limiter.busyMessage, /^too many commands from this screen: at most 3 in 1 s$/)
  now += 999
  assert.equal(limiter.admit('v-a'), false, 'still inside the window')
  now += 1
  assert.equal(limiter.admit('v-a'), true, 'the window passed')
  assert.equal(limiter.admit('v-a'), true)
  assert.equal(limiter.admit('v-a'), true)
  assert.equal(limiter.admit('v-a'), false)
  assert.equal(lines.filter((l) => l.includes('refused commands')).length, 2, 'a new window, a new line')
  assert.match(lines.at(-1) ?? '', /refused=3 /, 'the line counts the refusals since the last one')
})

test('refused requests do not count: a sender that keeps trying is let in when its accepted ones age out', () => {
  let now = 0
  const limiter = senderLimiter({ limit: { count: 2, windowMs: 1000 }, log: memoryLogger([], 'x'), what: 'commands', now: () => now })
  assert.ok(limiter.admit('v-a'))
  now = 500
  assert.ok(limiter.admit('v-a'))
  for (now = 600; now < 1000; now += 100) assert.equal(limiter.admit('v-a'), false)
  now = 1000
  assert.ok(limiter.admit('v-a'), 'the first one aged out')
})

test('a flood under new sender names meets the limit on all senders together; the map stays bounded; the default is 20 in 10 s', () => {
  let t = 0
  const lines: string[] = []
  const limiter = senderLimiter({ log: memoryLogger(lines, 'x'), what: 'commands', now: () => t })
  assert.deepEqual(limiter.limit, { count: 20, windowMs: 10_000 })
  for (let i = 0; i < 20; i++) assert.ok(limiter.admit('v-a'))
  assert.equal(limiter.admit('v-a'), false)
  // New names cost nothing: all senders together get 4 × 20 in the window, then every one is refused.
  let admitted = 0
  for (let i = 0; i < 300; i++) if (limiter.admit(`v-${i}`)) admitted++
  assert.equal(admitted, 20 * ALL_SENDERS_FACTOR - 20)
  assert.equal(limiter.admit('v-new'), false, 'a fresh name is refused too')
  assert.equal(lines.filter((l) => l.includes('too many from all senders together')).length, 1, 'logged once a window')
  // The window passed: v-a was forgotten among 300 names (the map is bounded), and starts a new count.
  t = 10_000
  assert.equal(limiter.admit('v-a'), true)
})

test('over KVS: past the limit a command is answered busy and a dismissal refused "busy:", before either is parsed or reaches the doorbell', async () => {
  const lines: string[] = []
  const sent: Array<{ viewerId: string, payload: string }> = []
  const taken: string[] = []
  let dismissed = 0
  const handler = kvsCommands({
    take: async (viewerId) => { taken.push(viewerId); return { ok: false, id: null, error: { code: 'denied', message: 'checked' }, reason: 'bad-signature' } satisfies CommandResult },
    dismiss: async () => { dismissed++; return { kind: 'refused', message: 'checked' } },
    send: (viewerId, payload) => { sent.push({ viewerId, payload }); return true },
    log: memoryLogger(lines, 'kvs'),
    limit: { count: 2, windowMs: 60_000 },
    now: () => 0
  })
  const command = (id: string): string => JSON.stringify({ type: 'command', command: { type: 'reply', id } })
  handler.command('v-a', command('c-1'))
  handler.command('v-a', command('c-2'))
  handler.command('v-a', command('c-3'))
  handler.dismiss('v-a', JSON.stringify({ type: 'dismiss', id: 'd-1', request: {} }))
  handler.command('v-b', command('c-4'))
  for (let i = 0; i < 50 && sent.length < 5; i++) await new Promise((resolve) => setImmediate(resolve))
  // c-1 and c-2 fail their schema (they were read); c-3 and the dismissal were not.
  const results = sent.map((s) => [s.viewerId, s.payload.includes('dismiss-result') ? decodeCloudDismissResult(s.payload) : decodeCloudCommandResult(s.payload)] as const)
  const busy = results.filter(([, r]) => r.ok && r.message.type === 'command-result' && !r.message.result.ok && r.message.result.error.code === 'busy')
  assert.deepEqual(busy.map(([v, r]) => [v, r.ok && r.message.type === 'command-result' ? r.message.result.id : null]), [['v-a', 'c-3']])
  const refusedDismissal = results.find(([, r]) => r.ok && r.message.type === 'dismiss-result')
  assert.ok(refusedDismissal?.[1].ok && refusedDismissal[1].message.type === 'dismiss-result')
  assert.deepEqual(refusedDismissal[1].message, { type: 'dismiss-result', id: 'd-1', answer: { kind: 'refused', message: 'busy: too many requests over KVS from this screen: at most 2 in 60 s' } })
  assert.equal(dismissed, 0, 'the refused dismissal reached no handler')
  assert.deepEqual(taken, [], 'nothing malformed or refused reached a command kind')
  assert.equal(results.filter(([v]) => v === 'v-b').length, 1, 'v-b was answered (its own count)')
  assert.equal(lines.filter((l) => l.includes('too many from this sender')).length, 1)
})
