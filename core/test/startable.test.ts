import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startInOrder, StartError, type Startable } from '../src/index'

function module (name: string, events: string[], fails = false): Startable {
  return {
    name,
    async start () { if (fails) throw new Error(`${name} port taken`); events.push(`start ${name}`) },
    async stop () { events.push(`stop ${name}`) }
  }
}

describe('startInOrder', () => {
  test('starts in list order and stops in reverse, once', async () => {
    const events: string[] = []
    const started = await startInOrder([module('lock', events), module('camera', events), module('mesh', events)])
    assert.deepEqual(started.names, ['lock', 'camera', 'mesh'])
    await Promise.all([started.stop(), started.stop()])
    assert.deepEqual(events, ['start lock', 'start camera', 'start mesh', 'stop mesh', 'stop camera', 'stop lock'])
  })

  test('a module that fails to start stops the ones already started and is named in the error', async () => {
    const events: string[] = []
    const err = await startInOrder([module('lock', events), module('camera', events), module('mesh', events, true), module('hub', events)])
      .then(() => null, (e: unknown) => e)
    assert.ok(err instanceof StartError)
    assert.equal(err.module, 'mesh')
    assert.match(err.message, /^mesh could not start: mesh port taken$/)
    assert.deepEqual(events, ['start lock', 'start camera', 'stop camera', 'stop lock'])
  })

  test('a stop that throws is reported and the others still stop', async () => {
    const events: string[] = []
    const errors: string[] = []
    const broken: Startable = { name: 'camera', async start () {}, async stop () { throw new Error('EIO') } }
    const started = await startInOrder([module('lock', events), broken], { log: { info () {}, error (_m, d) { errors.push(String(d?.module)) } } })
    await started.stop()
    assert.deepEqual(events, ['start lock', 'stop lock'])
    assert.deepEqual(errors, ['camera'])
  })

  test('an aborted signal starts nothing more and stops what started', async () => {
    const events: string[] = []
    const ac = new AbortController()
    const aborting: Startable = { name: 'pairing', async start () { ac.abort(new Error('SIGTERM')) }, async stop () { events.push('stop pairing') } }
    await assert.rejects(startInOrder([module('lock', events), aborting, module('camera', events)], { signal: ac.signal }), StartError)
    assert.deepEqual(events, ['start lock', 'stop pairing', 'stop lock'])
  })
})
