import { test } from 'node:test'
import assert from 'node:assert/strict'
import { NONE, alarmsOf, candidatesFromSdp, figureTexts, figuresOf, type StatsEntry } from '../src/console/stats'

/**
 * A receiving peer connection's getStats() as Chromium 156 (headless, Debian) reported it here, one
 * VP8 video track over loopback and a test network (192.0.2.2, fd00::2): certificates and the
 * peer-connection entry left out, everything else as it came. Two candidate pairs are nominated and
 * succeeded at once; only the transport's selectedCandidatePairId says which one carries the media.
 */
const CHROMIUM_156: StatsEntry[] = [
  { id: 'CIT01_96', timestamp: 1795317180033.647, type: 'codec', clockRate: 90000, mimeType: 'video/VP8', payloadType: 96, transportId: 'T01' },
  { id: 'CP+w5qpVfA_aXRwOx8s', timestamp: 1795317180033.647, type: 'candidate-pair', bytesDiscardedOnSend: 0, bytesReceived: 0, bytesSent: 0, consentRequestsSent: 0, localCandidateId: 'I+w5qpVfA', nominated: false, packetsDiscardedOnSend: 0, packetsReceived: 0, packetsSent: 0, priority: 9115071240980036000, remoteCandidateId: 'IaXRwOx8s', requestsReceived: 0, requestsSent: 0, responsesReceived: 0, responsesSent: 0, state: 'waiting', totalRoundTripTime: 0, transportId: 'T01', writable: false },
  { id: 'CP6aZTkL5o_czUrehxT', timestamp: 1795317180033.647, type: 'candidate-pair', bytesDiscardedOnSend: 0, bytesReceived: 8321, bytesSent: 2048, consentRequestsSent: 2, currentRoundTripTime: 0.001, lastPacketReceivedTimestamp: 1795317177193, lastPacketSentTimestamp: 1795317177215, localCandidateId: 'I6aZTkL5o', nominated: true, packetsDiscardedOnSend: 0, packetsReceived: 19, packetsSent: 6, priority: 9114193830700924000, remoteCandidateId: 'IczUrehxT', requestsReceived: 3, requestsSent: 3, responsesReceived: 3, responsesSent: 3, state: 'succeeded', totalRoundTripTime: 0.003, transportId: 'T01', writable: true },
  { id: 'CPVUr6JYCD_Bw6/oKl2', timestamp: 1795317180033.647, type: 'candidate-pair', availableOutgoingBitrate: 300000, bytesDiscardedOnSend: 0, bytesReceived: 7855, bytesSent: 1960, consentRequestsSent: 4, currentRoundTripTime: 0.001, lastPacketReceivedTimestamp: 1795317179981, lastPacketSentTimestamp: 1795317180012, localCandidateId: 'IVUr6JYCD', nominated: true, packetsDiscardedOnSend: 0, packetsReceived: 81, packetsSent: 46, priority: 9114497295910069000, remoteCandidateId: 'IBw6/oKl2', requestsReceived: 5, requestsSent: 5, responsesReceived: 5, responsesSent: 5, state: 'succeeded', totalRoundTripTime: 0.005, transportId: 'T01', writable: true },
  { id: 'I+w5qpVfA', timestamp: 1795317180033.647, type: 'local-candidate', address: '::1', candidateType: 'host', foundation: '282768305', ip: '::1', isRemote: false, networkType: 'unknown', port: 36227, priority: 2122267903, protocol: 'udp', transportId: 'T01', usernameFragment: 'yM8j' },
  { id: 'I6aZTkL5o', timestamp: 1795317180033.647, type: 'local-candidate', address: '127.0.0.1', candidateType: 'host', foundation: '32940345', ip: '127.0.0.1', isRemote: false, networkType: 'unknown', port: 51070, priority: 2122194687, protocol: 'udp', transportId: 'T01', usernameFragment: 'yM8j' },
  { id: 'IBw6/oKl2', timestamp: 1795317180033.647, type: 'remote-candidate', address: 'fd00::2', candidateType: 'host', foundation: '1412875445', ip: 'fd00::2', isRemote: true, port: 56660, priority: 2122134271, protocol: 'udp', transportId: 'T01', usernameFragment: 'JDxn' },
  { id: 'IT01V1562687098', timestamp: 1795317180033.647, type: 'inbound-rtp', codecId: 'CIT01_96', kind: 'video', mediaType: 'video', ssrc: 1562687098, transportId: 'T01', jitter: 0.002, packetsLost: 0, packetsReceived: 94, packetsReceivedWithCe: 0, packetsReceivedWithEct1: 0, bytesReceived: 9469, firCount: 0, frameHeight: 480, frameWidth: 640, framesAssembledFromMultiplePackets: 0, framesDecoded: 83, framesDropped: 0, framesPerSecond: 29, framesReceived: 83, freezeCount: 0, headerBytesReceived: 3728, jitterBufferDelay: 0.5730109999999999, jitterBufferEmittedCount: 83, jitterBufferMinimumDelay: 0.914445, jitterBufferTargetDelay: 0.914445, keyFramesDecoded: 1, lastPacketReceivedTimestamp: 1795317179981.547, mid: '0', nackCount: 0, pauseCount: 0, pliCount: 0, qpSum: 1158, remoteId: 'ROV1562687098', retransmittedBytesReceived: 3983, retransmittedPacketsReceived: 11, rtxSsrc: 1384916899, totalAssemblyTime: 0, totalDecodeTime: 0.061783, totalFreezesDuration: 0, totalInterFrameDelay: 2.939, totalPausesDuration: 0, totalProcessingDelay: 0.6513399999999999, totalSquaredInterFrameDelay: 0.14457500000000006, trackIdentifier: '1efe550e-9115-4225-962f-8b08a2379dcf' },
  { id: 'IVUr6JYCD', timestamp: 1795317180033.647, type: 'local-candidate', address: 'fd00::2', candidateType: 'host', foundation: '774935117', ip: 'fd00::2', isRemote: false, networkType: 'ethernet', port: 34942, priority: 2122134271, protocol: 'udp', transportId: 'T01', usernameFragment: 'yM8j' },
  { id: 'IaXRwOx8s', timestamp: 1795317180033.647, type: 'remote-candidate', address: '::1', candidateType: 'host', foundation: '1792861513', ip: '::1', isRemote: true, port: 60097, priority: 2122267903, protocol: 'udp', transportId: 'T01', usernameFragment: 'JDxn' },
  { id: 'IczUrehxT', timestamp: 1795317180033.647, type: 'remote-candidate', address: '192.0.2.2', candidateType: 'host', foundation: '2672821589', ip: '192.0.2.2', isRemote: true, port: 44596, priority: 2122063615, protocol: 'udp', transportId: 'T01', usernameFragment: 'JDxn' },
  { id: 'T01', timestamp: 1795317180033.647, type: 'transport', bytesReceived: 16176, bytesSent: 4008, dtlsCipher: 'TLS_AES_128_GCM_SHA256', dtlsRole: 'client', dtlsState: 'connected', iceLocalUsernameFragment: 'yM8j', iceRole: 'controlled', iceState: 'connected', packetsReceived: 100, packetsSent: 52, selectedCandidatePairChanges: 2, selectedCandidatePairId: 'CPVUr6JYCD_Bw6/oKl2', srtpCipher: 'SRTP_AES128_CM_HMAC_SHA1_80', tlsVersion: 'FEFC' }
]

/** The fixture with some entries' fields changed (by id), or removed when given null. */
function edited (changes: Record<string, Record<string, unknown> | null>, base: StatsEntry[] = CHROMIUM_156): StatsEntry[] {
  return base.flatMap((e) => {
    if (!(e.id in changes)) return [e]
    const c = changes[e.id]
    return c === null ? [] : [{ ...e, ...c }]
  })
}

const T0 = 1795317180033.647
const INBOUND = 'IT01V1562687098'
const next = (dt: number, c: Record<string, unknown>): StatsEntry[] => edited({ [INBOUND]: { timestamp: T0 + dt, ...c } })

test('the selected pair is the transport\'s, not the first nominated one: path, candidates, RTT, cipher', () => {
  const f = figuresOf(CHROMIUM_156, null, 5000, { startedAt: 1000, firstFrameAt: 1412.5 })
  assert.deepEqual(f.path, { local: 'host', remote: 'host' })
  assert.deepEqual(f.local, { type: 'host', address: 'fd00::2', port: 34942, protocol: 'udp', relayProtocol: null })
  assert.deepEqual(f.remote, { type: 'host', address: 'fd00::2', port: 56660, protocol: 'udp', relayProtocol: null })
  assert.equal(f.rttMs, 1)
  assert.equal(f.fps, 29, 'framesPerSecond as the browser gives it')
  assert.equal(f.bitrateKbps, null, 'a rate needs a previous reading')
  assert.equal(f.lossPct, null)
  assert.equal(f.lossTotalPct, 0)
  assert.equal(f.ttffMs, 412.5)
  const t = figureTexts(f)
  assert.equal(t.path, 'host → host')
  assert.equal(t.local, '[fd00::2]:34942 udp', 'IPv6 in brackets')
  assert.equal(t.remote, '[fd00::2]:56660 udp')
  assert.equal(t.rtt, '1.0 ms')
  assert.equal(t.fps, '29 fps')
  assert.equal(t.bitrate, NONE)
  assert.equal(t.loss, `${NONE} (total 0.0 %)`)
  assert.equal(t.cipher, 'TLS_AES_128_GCM_SHA256 · SRTP_AES128_CM_HMAC_SHA1_80 · DTLS 1.3')
  assert.equal(t.ttff, '413 ms')
  assert.deepEqual([...alarmsOf(f)], [], 'nothing wrong on a clean loopback call')
  assert.equal(f.sample.inboundId, INBOUND)
  assert.equal(f.sample.at, T0, 'the entry\'s own timestamp, not the page clock')
})

test('rates from the previous reading: bitrate, fps from framesDecoded when the browser gives none, loss over the interval and in total', () => {
  const first = figuresOf(CHROMIUM_156, null, 5000)
  // One second later: 125,000 bytes, 30 frames, 97 packets received and 3 lost.
  const second = figuresOf(next(1000, { bytesReceived: 9469 + 125_000, framesDecoded: 83 + 30, framesPerSecond: undefined, packetsReceived: 94 + 97, packetsLost: 3 }), first.sample, 6000)
  assert.equal(second.bitrateKbps, 1000)
  assert.equal(second.fps, 30)
  assert.equal(second.lossPct, 3)
  assert.ok(Math.abs(second.lossTotalPct! - 100 * 3 / 194) < 1e-9)
  assert.equal(figureTexts(second).loss, '3.0 % (total 1.5 %)')
  assert.equal(figureTexts(second).bitrate, '1000 kbit/s')
  assert.deepEqual([...alarmsOf(second)], ['loss'], 'more than 2 % lost')
  assert.equal(second.frozen, false)
})

test('missing fields give "—", never a guess', () => {
  const none = figuresOf([], null, 1000)
  assert.deepEqual(Object.values(figureTexts(none)), Array(9).fill(NONE))
  assert.equal(none.frozen, true, 'no video at all: no frame')
  assert.deepEqual(Object.values(figureTexts(null)), Array(9).fill(NONE))

  // Connected, but no video yet and no RTT measured: the candidates and the cipher are known, the rest is not.
  const early = figuresOf(edited({ [INBOUND]: null, 'CPVUr6JYCD_Bw6/oKl2': { currentRoundTripTime: undefined }, T01: { tlsVersion: undefined, srtpCipher: undefined } }), null, 1000)
  const t = figureTexts(early)
  assert.equal(t.path, 'host → host')
  assert.equal(t.rtt, NONE)
  assert.equal(t.fps, NONE)
  assert.equal(t.bitrate, NONE)
  assert.equal(t.loss, NONE)
  assert.equal(t.cipher, `TLS_AES_128_GCM_SHA256 · ${NONE}`)
  assert.equal(t.ttff, NONE)
  assert.ok(alarmsOf(early).has('fps'), 'no frame is wrong')

  // Not connected yet: no selected pair.
  const gathering = figuresOf(edited({ T01: { selectedCandidatePairId: undefined }, 'CP6aZTkL5o_czUrehxT': { nominated: false }, 'CPVUr6JYCD_Bw6/oKl2': { nominated: false } }), null, 1000)
  assert.equal(gathering.path, null)
  assert.equal(figureTexts(gathering).local, NONE)
  assert.equal(figureTexts(gathering).rtt, NONE)
})

test('without selectedCandidatePairId (Firefox) the pair marked selected is used', () => {
  const f = figuresOf(edited({ T01: { selectedCandidatePairId: undefined }, 'CP6aZTkL5o_czUrehxT': { selected: true } }), null, 1000)
  assert.equal(figureTexts(f).local, '127.0.0.1:51070 udp')
  assert.equal(figureTexts(f).remote, '192.0.2.2:44596 udp')
})

test('counters going backwards after a reconnect give no rate for that reading, then rates again', () => {
  const before = figuresOf(next(0, { bytesReceived: 5_000_000, framesDecoded: 9000, packetsReceived: 40_000, packetsLost: 12 }), null, 1000)
  // A new call: a new inbound-rtp (new SSRC), small counters.
  const newStream = edited({ [INBOUND]: null }).concat([{ ...CHROMIUM_156.find((e) => e.id === INBOUND)!, id: 'IT01V42', timestamp: T0 + 1000, framesPerSecond: undefined }])
  const a = figuresOf(newStream, before.sample, 2000)
  assert.equal(a.bitrateKbps, null)
  assert.equal(a.fps, null)
  assert.equal(a.lossPct, null)
  assert.equal(a.lossTotalPct, 0, 'the total is the new call\'s own')
  // The same id whose counters went back (the browser reused it): no rate either, and no negative one.
  const back = figuresOf(next(2000, { bytesReceived: 100, framesDecoded: 2, packetsReceived: 3, packetsLost: 0, framesPerSecond: undefined }), before.sample, 3000)
  assert.equal(back.bitrateKbps, null)
  assert.equal(back.fps, null)
  assert.equal(back.lossPct, null)
  // The next reading compares with the new counters.
  const after = figuresOf(next(3000, { bytesReceived: 100 + 62_500, framesDecoded: 32, packetsReceived: 53, packetsLost: 0, framesPerSecond: undefined }), back.sample, 4000)
  assert.equal(after.bitrateKbps, 500)
  assert.equal(after.fps, 30)
  assert.equal(after.lossPct, 0)
  // A reading with the same timestamp (no time passed) gives no rate rather than a division by zero.
  assert.equal(figuresOf(next(3000, { bytesReceived: 999_999 }), after.sample, 4000).bitrateKbps, null)
})

test('a relay path: relay candidate with its relay protocol; relay alone is not wrong', () => {
  const relayed = edited({
    IVUr6JYCD: { candidateType: 'relay', address: '198.51.100.7', port: 50012, protocol: 'udp', relayProtocol: 'tcp', url: 'turn:turn.example.net:3478?transport=tcp' },
    'IBw6/oKl2': { candidateType: 'srflx', address: '203.0.113.9', port: 61000 }
  })
  const f = figuresOf(relayed, null, 1000)
  assert.deepEqual(f.path, { local: 'relay', remote: 'srflx' })
  const t = figureTexts(f)
  assert.equal(t.path, 'relay → srflx')
  assert.equal(t.local, '198.51.100.7:50012 udp (relay via tcp)')
  assert.equal(t.remote, '203.0.113.9:61000 udp')
  assert.deepEqual([...alarmsOf(f)], [])
})

test('hidden addresses (Chromium blanks them without media permission) come from the SDP when it names exactly one', () => {
  const hidden = edited({ IVUr6JYCD: { address: '', ip: '' }, 'IBw6/oKl2': { address: '', ip: '' } })
  const remoteSdp = 'v=0\r\na=candidate:1412875445 1 udp 2122134271 fd00::2 56660 typ host generation 0\r\na=candidate:1 1 UDP 2122063615 192.0.2.2 44596 typ host\r\n'
  const f = figuresOf(hidden, null, 1000, { startedAt: null }, { remote: remoteSdp, local: null })
  assert.equal(figureTexts(f).remote, '[fd00::2]:56660 udp')
  assert.equal(figureTexts(f).local, '(hidden):34942 udp', 'not in any SDP: said so, port still shown')
  assert.deepEqual(candidatesFromSdp(remoteSdp), [
    { protocol: 'udp', address: 'fd00::2', port: 56660, type: 'host' },
    { protocol: 'udp', address: '192.0.2.2', port: 44596, type: 'host' }
  ])
  // Chromium's own mDNS name for its host address: shortened, it says nothing to read.
  const mdns = figuresOf(edited({ IVUr6JYCD: { address: '597955bc-c3c5-4e3f-95c8-1eda0f5fe0bc.local', ip: '597955bc-c3c5-4e3f-95c8-1eda0f5fe0bc.local' } }), null, 1000)
  assert.equal(figureTexts(mdns).local, '5979….local:34942 udp')
  assert.equal(mdns.local?.address, '597955bc-c3c5-4e3f-95c8-1eda0f5fe0bc.local', 'the figure itself keeps the whole name')
  assert.deepEqual(candidatesFromSdp(null), [])
  assert.deepEqual(candidatesFromSdp('a=candidate:garbage\r\nm=video 9 UDP/TLS/RTP/SAVPF 96'), [])
})

test('bounds: RTT above 250 ms, fewer than 10 fps, a frozen picture are wrong', () => {
  const slow = figuresOf(edited({ 'CPVUr6JYCD_Bw6/oKl2': { currentRoundTripTime: 0.3 }, [INBOUND]: { framesPerSecond: 7 } }), null, 1000)
  assert.deepEqual([...alarmsOf(slow)].sort(), ['fps', 'rtt'])
  assert.equal(figureTexts(slow).rtt, '300 ms')
  // Frames stopped: framesDecoded did not move in a second.
  const a = figuresOf(next(0, { framesPerSecond: undefined }), null, 1000)
  const b = figuresOf(next(1000, { framesPerSecond: undefined }), a.sample, 2000)
  assert.equal(b.frozen, true)
  assert.equal(b.fps, 0)
  assert.ok(alarmsOf(b).has('fps'))
  // Exactly at the bounds is fine.
  const edge = figuresOf(edited({ 'CPVUr6JYCD_Bw6/oKl2': { currentRoundTripTime: 0.25 }, [INBOUND]: { framesPerSecond: 10 } }), null, 1000)
  assert.deepEqual([...alarmsOf(edge)], [])
})

test('time to first frame: from the page (requestVideoFrameCallback), else the first reading with a decoded frame, kept from then on', () => {
  const noFrameYet = figuresOf(next(0, { framesDecoded: 0, framesPerSecond: undefined }), null, 1500, { startedAt: 1000 })
  assert.equal(noFrameYet.ttffMs, null)
  assert.equal(noFrameYet.sample.firstFrameAt, null)
  const firstFrame = figuresOf(next(1000, { framesDecoded: 4 }), noFrameYet.sample, 2500, { startedAt: 1000 })
  assert.equal(firstFrame.ttffMs, 1500)
  const later = figuresOf(next(2000, { framesDecoded: 34 }), firstFrame.sample, 3500, { startedAt: 1000 })
  assert.equal(later.ttffMs, 1500, 'the first frame stays the first')
  const fromPage = figuresOf(next(1000, { framesDecoded: 4 }), noFrameYet.sample, 2500, { startedAt: 1000, firstFrameAt: 1420 })
  assert.equal(fromPage.ttffMs, 420)
  // A first frame before the start (an old call's) is not this call's.
  assert.equal(figuresOf(CHROMIUM_156, null, 2500, { startedAt: 2000, firstFrameAt: 1000 }).ttffMs, null)
})
