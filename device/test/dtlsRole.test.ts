import { test } from 'node:test'
import assert from 'node:assert/strict'
import { asDtlsServer } from '../src/peer/session'
import { weriftMayServeDtls } from '../src/peer/werift'

test('the answer makes the device the DTLS server, on every m-line, and changes nothing else', () => {
  const sdp = ['v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=setup:active', 'a=mid:0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=setup:active', 'a=x-note:setup:active', ''].join('\r\n')
  const out = asDtlsServer({ type: 'answer', sdp })
  assert.equal(out.type, 'answer')
  assert.equal(out.sdp, sdp.replace(/\r\na=setup:active\r\n/g, '\r\na=setup:passive\r\n'))
  assert.equal(out.sdp.match(/a=setup:passive/g)?.length, 2)
  assert.ok(out.sdp.includes('a=x-note:setup:active'), 'only whole setup lines change')
})

test('werift serves DTLS to browsers and werift, and leaves it to libdatachannel (o=rtc) to serve', () => {
  const offer = (origin: string): string => ['v=0', origin, 's=-', 't=0 0', ''].join('\r\n')
  assert.equal(weriftMayServeDtls(offer('o=- 4611731400430051336 2 IN IP4 127.0.0.1')), true, 'Chromium')
  assert.equal(weriftMayServeDtls(offer('o=mozilla...THIS_IS_SDPARTA-99.0 1 0 IN IP4 0.0.0.0')), true, 'Firefox')
  assert.equal(weriftMayServeDtls(offer('o=- 29661600 0 IN IP4 0.0.0.0')), true, 'werift')
  assert.equal(weriftMayServeDtls(offer('o=rtc 2584508985 0 IN IP4 127.0.0.1')), false, 'libdatachannel')
})
