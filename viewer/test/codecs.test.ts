import { test } from 'node:test'
import assert from 'node:assert/strict'
import { doorbellCodecs, type CodecCapability } from '../src/lib/callSession'

/** What Chromium 156 lists (`RTCRtpReceiver.getCapabilities(kind).codecs`), read from the browser these tests run. */
const CHROMIUM_156: { video: CodecCapability[], audio: CodecCapability[] } = {"video": [{"clockRate": 90000,"mimeType": "video/VP8"},{"clockRate": 90000,"mimeType": "video/rtx"},{"clockRate": 90000,"mimeType": "video/VP9","sdpFmtpLine": "profile-id=0"},{"clockRate": 90000,"mimeType": "video/VP9","sdpFmtpLine": "profile-id=2"},{"clockRate": 90000,"mimeType": "video/VP9","sdpFmtpLine": "profile-id=1"},{"clockRate": 90000,"mimeType": "video/VP9","sdpFmtpLine": "profile-id=3"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f"},{"clockRate": 90000,"mimeType": "video/H264","sdpFmtpLine": "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=f4001f"},{"clockRate": 90000,"mimeType": "video/AV1","sdpFmtpLine": "level-idx=5;profile=0;tier=0"},{"clockRate": 90000,"mimeType": "video/AV1","sdpFmtpLine": "level-idx=5;profile=1;tier=0"},{"clockRate": 90000,"mimeType": "video/red"},{"clockRate": 90000,"mimeType": "video/ulpfec"},{"clockRate": 90000,"mimeType": "video/flexfec-03","sdpFmtpLine": "repair-window=10000000"}],"audio": [{"channels": 2,"clockRate": 48000,"mimeType": "audio/opus","sdpFmtpLine": "minptime=10;useinbandfec=1"},{"channels": 2,"clockRate": 48000,"mimeType": "audio/red"},{"channels": 1,"clockRate": 8000,"mimeType": "audio/G722"},{"channels": 1,"clockRate": 8000,"mimeType": "audio/PCMU"},{"channels": 1,"clockRate": 8000,"mimeType": "audio/PCMA"},{"channels": 1,"clockRate": 8000,"mimeType": "audio/CN"},{"channels": 1,"clockRate": 48000,"mimeType": "audio/telephone-event"},{"channels": 1,"clockRate": 8000,"mimeType": "audio/telephone-event"}]}

test('an offer with sound stays under KVS\'s 10 KiB: only the doorbell\'s codecs are offered, in the browser\'s order', () => {
  const video = doorbellCodecs('video', CHROMIUM_156.video)
  assert.deepEqual([...new Set(video.map((c) => c.mimeType))], ['video/VP8', 'video/rtx', 'video/H264'])
  for (const h264 of video.filter((c) => c.mimeType === 'video/H264')) {
    assert.match(h264.sdpFmtpLine ?? '', /packetization-mode=1/)
    assert.match(h264.sdpFmtpLine ?? '', /profile-level-id=42/)
  }
  assert.ok(video.some((c) => /profile-level-id=42e01f/.test(c.sdpFmtpLine ?? '')), 'the doorbell\'s own constrained baseline is kept')
  assert.ok(video.length < CHROMIUM_156.video.length / 2)
  assert.deepEqual(doorbellCodecs('audio', CHROMIUM_156.audio).map((c) => c.mimeType), ['audio/opus'])
})
