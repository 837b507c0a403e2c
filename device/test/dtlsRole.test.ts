import { test } from 'node:test'
import assert from 'node:assert/strict'
import { asDtlsServer } from '../src/peer/session'

test('the answer makes the device the DTLS server, on every m-line, and changes nothing else', () => {
  const sdp = ['v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=setup:active', 'a=mid:0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=setup:active', 'a=x-note:setup:active', ''].join('\r\n')
  const out = asDtlsServer({ type: 'answer', sdp })
  assert.equal(out.type, 'answer')
  assert.equal(out.sdp, sdp.replace(/\r\na=setup:active\r\n/g, '\r\na=setup:passive\r\n'))
  assert.equal(out.sdp.match(/a=setup:passive/g)?.length, 2)
  assert.ok(out.sdp.includes('a=x-note:setup:active'), 'only whole setup lines change')
})
