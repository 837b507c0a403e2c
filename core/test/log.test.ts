import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryLogger } from '../src/index'

describe('memoryLogger', () => {
  test('records one line per event with its level, scope and key=value fields', () => {
    const log = memoryLogger()
    log.info('ring', { ringId: 'r1', count: 2 })
    log.warn('hub away')
    log.error('relay', { error: { code: 'EIO' } })
    assert.deepEqual(log.lines, [
      'info [device] ring ringId=r1 count=2',
      'warn [device] hub away',
      'error [device] relay error={"code":"EIO"}'
    ])
  })

  test('a child writes into the same lines under a nested scope', () => {
    const log = memoryLogger([], 'hub')
    log.child('gate').warn('refused', { topic: 'doorbell/x' })
    assert.deepEqual(log.lines, ['warn [hub/gate] refused topic=doorbell/x'])
  })
})
