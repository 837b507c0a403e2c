import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { memoryLogger } from '@doorbell/core'
import { clientAddress, clientAddressOf, isLoopbackAddress } from '../src/http'

/**
 * `clientAddress`, the one rule for who sent a request (pairing, API sign-in and MQTT-over-WebSocket
 * limits): a request is only what these read, its socket's address and its headers.
 */
const req = (remoteAddress: string | undefined, headers: Record<string, string | string[]> = {}): IncomingMessage =>
  ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage

const PROXY = { trustProxy: true }
const NO_PROXY = { trustProxy: false }

test('loopback is 127.0.0.0/8 and ::1, also IPv4-mapped; nothing else', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a)
  for (const a of ['10.0.0.1', '192.168.1.2', '::', '::2', '::ffff:10.0.0.1', '1127.0.0.1', '127.0.0.1.example', 'unknown', '']) assert.equal(isLoopbackAddress(a), false, a)
})

test('trustProxy and a loopback socket: the proxy\'s X-Real-IP, IPv4 or IPv6', () => {
  assert.deepEqual(clientAddress(req('127.0.0.1', { 'x-real-ip': '203.0.113.7' }), PROXY), { address: '203.0.113.7' })
  assert.deepEqual(clientAddress(req('::1', { 'x-real-ip': ' 2001:DB8::42 ' }), PROXY), { address: '2001:db8::42' })
  assert.deepEqual(clientAddress(req('::ffff:127.0.0.1', { 'x-real-ip': '::ffff:198.51.100.9' }), PROXY), { address: '::ffff:198.51.100.9' })
})

test('a socket that is not loopback did not come through the proxy: its X-Real-IP is ignored, silently', () => {
  for (const socket of ['192.168.1.20', '::ffff:10.0.0.5', 'fd00::1']) {
    assert.deepEqual(clientAddress(req(socket, { 'x-real-ip': '203.0.113.7' }), PROXY), { address: socket })
  }
})

test('without trustProxy, X-Real-IP is ignored even from loopback', () => {
  assert.deepEqual(clientAddress(req('127.0.0.1', { 'x-real-ip': '203.0.113.7' }), NO_PROXY), { address: '127.0.0.1' })
  assert.deepEqual(clientAddress(req('192.168.1.20', { 'x-real-ip': '203.0.113.7' }), NO_PROXY), { address: '192.168.1.20' })
})

test('a missing or unusable X-Real-IP falls back to the socket\'s address and says why', () => {
  assert.deepEqual(clientAddress(req('127.0.0.1'), PROXY), { address: '127.0.0.1', fallback: 'missing' })
  for (const bad of ['', '   ', 'not-an-ip', '203.0.113.7, 198.51.100.1', '203.0.113.256', '203.0.113', 'localhost', '[2001:db8::1]', '203.0.113.7:443', '2001:db8::zz']) {
    assert.deepEqual(clientAddress(req('127.0.0.1', { 'x-real-ip': bad }), PROXY), { address: '127.0.0.1', fallback: 'invalid' }, JSON.stringify(bad))
  }
  assert.deepEqual(clientAddress(req('127.0.0.1', { 'x-real-ip': ['203.0.113.7', '198.51.100.1'] }), PROXY), { address: '127.0.0.1', fallback: 'invalid' })
  assert.deepEqual(clientAddress(req(undefined, { 'x-real-ip': '203.0.113.7' }), PROXY), { address: 'unknown' }, 'a closed socket has no address: not loopback')
})

test('clientAddressOf logs each kind of fallback once, not per request', () => {
  const log = memoryLogger()
  const addressOf = clientAddressOf({ ...PROXY, log })
  for (let i = 0; i < 5; i++) {
    assert.equal(addressOf(req('127.0.0.1', { 'x-real-ip': 'nonsense' })), '127.0.0.1')
    assert.equal(addressOf(req('127.0.0.1')), '127.0.0.1')
    assert.equal(addressOf(req('127.0.0.1', { 'x-real-ip': '203.0.113.7' })), '203.0.113.7')
  }
  assert.equal(log.lines.length, 2, log.lines.join('\n'))
  assert.match(log.lines[0]!, /^warn .*not one IP address.*X-Real-IP \$remote_addr/)
  assert.match(log.lines[1]!, /^warn .*has no X-Real-IP/)
  const quiet = memoryLogger()
  const direct = clientAddressOf({ ...NO_PROXY, log: quiet })
  assert.equal(direct(req('127.0.0.1', { 'x-real-ip': 'nonsense' })), '127.0.0.1')
  assert.deepEqual(quiet.lines, [], 'without trustProxy nothing is expected of the header, so nothing is logged')
})
