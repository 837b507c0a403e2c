/**
 * The RTSP camera's own sound as the doorbell's microphone (audio.source "camera"), against a real
 * RTSP server (GStreamer's, tests/src/rtspServer.py) sending a sine, and real ffmpeg:
 * - G.711 A-law is encoded to Opus once; what the sessions get, decoded by the doorbell's own
 *   speaker into a WAV, is the camera's tone. The camera drops and comes back: the sound resumes.
 * - Opus is copied as it is (no libopus in the running ffmpeg), and is still the camera's tone.
 * - A camera without a sound track is a clear start-up error, without the URL's password.
 * - A camera that does not answer at start-up is not an error: the sound comes once it is there.
 * The URL carries a user and password throughout (the server asks for none): no log line holds it.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DeviceConfig, parseConfig } from '@doorbell/core'
import { AudioDeviceError, Microphone, Speaker, memoryLogger } from '@doorbell/device'
import { eventually } from '../src/harness'
import { startRtspCamera, type RtspCamera, type RtspSound } from '../src/rtsp'
import { childrenNamed } from '../src/doorbellProcess'
import { speakerPlayedTone } from '../src/audio'

const CAMERA_HZ = 880
const PASSWORD = 'door-secret-42'

/** The camera's URL as an owner writes it, with a user and password. */
const withPassword = (url: string): string => url.replace('rtsp://', `rtsp://admin:${PASSWORD}@`)

async function cameraWithSound (t: TestContext, sound: RtspSound): Promise<RtspCamera> {
  const camera = await startRtspCamera('constrained-baseline', '320x240', sound)
  t.after(() => camera.stop())
  return camera
}

/** The doorbell's microphone on the camera's sound, played by its own speaker into a WAV. */
async function microphoneOn (t: TestContext, url: string): Promise<{ microphone: Microphone, speaker: Speaker, wav: string, lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-rtsp-audio-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const wav = join(dir, 'heard.wav')
  const config = parseConfig(DeviceConfig, { camera: { source: { kind: 'rtsp', url } }, audio: { source: 'camera', speaker: { kind: 'wav', path: wav } } }, 'test')
  const lines: string[] = []
  const microphone = new Microphone(config.audio, memoryLogger(lines, 'mic'), null, url)
  const speaker = new Speaker(config.audio, memoryLogger(lines, 'spk'))
  t.after(async () => { await speaker.stop(); await microphone.stop() })
  return { microphone, speaker, wav, lines }
}

/** The running microphone encoder's command line (the speaker's ffmpeg is the other child). */
function microphoneCommand (): string[] {
  const commands = childrenNamed(process.pid, 'ffmpeg').map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean))
  const mic = commands.filter((c) => c.includes('-allowed_media_types'))
  assert.equal(mic.length, 1, `one microphone encoder runs: ${commands.map((c) => c.join(' ')).join('\n')}`)
  return mic[0]!
}

/** `count` packets handed to a session, each also played by the speaker; their RTP headers checked. */
async function listen (microphone: Microphone, speaker: Speaker, count: number): Promise<Buffer[]> {
  const received: Buffer[] = []
  const stop = microphone.subscribe((packet) => { received.push(Buffer.from(packet)); speaker.play('session-1', packet) })
  await eventually(`${count} packets`, () => received.length >= count, 30_000)
  stop()
  assert.ok(received.every((p) => (p[1]! & 0x7f) === 111), 'payload type 111, as the browsers offer Opus')
  return received
}

const noPassword = (lines: string[]): void => {
  const leaked = lines.filter((l) => l.includes(PASSWORD))
  assert.deepEqual(leaked, [], 'the camera\'s password is in no log line')
}

test('RTSP camera sound, G.711 A-law: encoded to Opus once; the sessions hear the camera\'s tone; it drops and comes back', { timeout: 120_000 }, async (t) => {
  const camera = await cameraWithSound(t, { audio: 'pcma', toneHz: CAMERA_HZ })
  const url = withPassword(camera.url)
  const { microphone, speaker, wav, lines } = await microphoneOn(t, url)
  let passed = false
  t.after(() => { if (!passed) console.log([...lines, ...camera.lines.slice(-10)].join('\n')) })
  const startedAt = performance.now()
  await microphone.start()
  const asked = performance.now() - startedAt
  await speaker.start()
  await eventually('the first packet', () => microphone.packets > 0, 15_000)
  const firstPacket = performance.now() - startedAt

  assert.ok(lines.some((l) => l.includes('encoding the RTSP camera\'s sound to Opus') && l.includes('why=the camera sends pcm_alaw at 8000 Hz, not Opus')), lines.join('\n'))
  await eventually('the encoder', () => childrenNamed(process.pid, 'ffmpeg').length === 2)
  const command = microphoneCommand()
  assert.equal(command[command.indexOf('-i') + 1], url)
  assert.equal(command[command.indexOf('-c:a') + 1], 'libopus')

  const received = await listen(microphone, speaker, 150)
  const ticks = (received.at(-1)!.readUInt32BE(4) - received[0]!.readUInt32BE(4)) / (received.length - 1)
  assert.ok(Math.abs(ticks - 960) < 1, `20 ms Opus frames of our own encode (${ticks} ticks a packet)`)

  // The camera drops (its server stopped): the encoder ends and is retried with the shared backoff.
  const restartsBefore = lines.filter((l) => l.includes('microphone stopped, restarting')).length
  await camera.stop()
  await eventually('the microphone to notice', () => lines.filter((l) => l.includes('microphone stopped, restarting')).length > restartsBefore, 15_000)
  // A try while it is away: ffmpeg names the URL in its error, which reaches the log without the password.
  await eventually('a refused try', () => lines.find((l) => l.includes('Connection refused')), 15_000)
  assert.ok(lines.some((l) => l.includes('Connection refused') && l.includes('rtsp://admin:***@127.0.0.1')), lines.join('\n'))
  const before = microphone.packets
  await camera.restart()
  await eventually('the sound to resume', () => microphone.packets > before + 50, 30_000)

  await speaker.stop()
  const heard = speakerPlayedTone(wav, CAMERA_HZ)
  noPassword(lines)
  passed = true
  t.diagnostic(`heard ${heard.hz.toFixed(1)} Hz (the camera sends ${CAMERA_HZ} Hz as PCMA), RMS ${heard.rms.toFixed(3)}, ${heard.seconds.toFixed(1)} s; ` +
    `start() (the camera asked) ${asked.toFixed(0)} ms, first packet ${firstPacket.toFixed(0)} ms after start()`)
})

test('RTSP camera sound, Opus: copied as it is (no encode), and still the camera\'s tone', { timeout: 60_000 }, async (t) => {
  const camera = await cameraWithSound(t, { audio: 'opus', toneHz: CAMERA_HZ })
  const url = withPassword(camera.url)
  const { microphone, speaker, wav, lines } = await microphoneOn(t, url)
  let passed = false
  t.after(() => { if (!passed) console.log([...lines, ...camera.lines.slice(-10)].join('\n')) })
  await microphone.start()
  await speaker.start()

  assert.ok(lines.some((l) => l.includes('sending the RTSP camera\'s Opus as it is, not encoding') && l.includes('why=the camera sends opus at 48000 Hz')), lines.join('\n'))
  await eventually('the encoder', () => childrenNamed(process.pid, 'ffmpeg').length === 2)
  const command = microphoneCommand()
  assert.equal(command[command.indexOf('-c:a') + 1], 'copy')
  for (const encoding of ['libopus', '-b:a', '-frame_duration']) assert.ok(!command.includes(encoding), `no ${encoding}: ${command.join(' ')}`)

  const received = await listen(microphone, speaker, 150)
  // GStreamer's opusenc (frame-size=20) made these frames: 960 ticks each, as the camera stamped them.
  const ticks = (received.at(-1)!.readUInt32BE(4) - received[0]!.readUInt32BE(4)) / (received.length - 1)
  assert.ok(Math.abs(ticks - 960) < 1, `the camera's 20 ms frames (${ticks} ticks a packet)`)
  await speaker.stop()
  const heard = speakerPlayedTone(wav, CAMERA_HZ)
  noPassword(lines)
  passed = true
  t.diagnostic(`heard ${heard.hz.toFixed(1)} Hz from the camera's own Opus, RMS ${heard.rms.toFixed(3)}`)
})

test('RTSP camera without a sound track: a start-up error naming the camera without its password, saying what to pick instead', { timeout: 60_000 }, async (t) => {
  const camera = await cameraWithSound(t, { audio: 'none' })
  const url = withPassword(camera.url)
  const { microphone, lines } = await microphoneOn(t, url)
  await assert.rejects(microphone.start(), (err: Error) => {
    assert.ok(err instanceof AudioDeviceError)
    assert.equal(err.name, 'AudioDeviceError')
    assert.match(err.message, /the RTSP camera at rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/camera sends no sound track/)
    assert.match(err.message, /set audio\.source to another microphone \(ALSA or PulseAudio\), or "none"/)
    assert.ok(!err.message.includes(PASSWORD))
    return true
  })
  assert.equal(childrenNamed(process.pid, 'ffmpeg').length, 0, 'no encoder was started')
  assert.equal(microphone.packets, 0)
  noPassword(lines)
})

test('RTSP camera not answering at start-up: the microphone starts anyway, says so, and the sound comes once the camera is there', { timeout: 60_000 }, async (t) => {
  const camera = await cameraWithSound(t, { audio: 'opus', toneHz: CAMERA_HZ })
  await camera.stop()
  const url = withPassword(camera.url)
  const { microphone, lines } = await microphoneOn(t, url)
  await microphone.start()
  const said = lines.find((l) => l.includes('the RTSP camera could not be asked what sound it sends'))
  assert.ok(said, lines.join('\n'))
  assert.match(said, /problem=the RTSP camera at rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/camera does not answer/)
  await eventually('a retry', () => lines.some((l) => l.includes('microphone stopped, restarting')), 15_000)
  assert.equal(microphone.packets, 0)
  await camera.restart()
  await eventually('the camera\'s sound', () => microphone.packets >= 50, 30_000)
  // Asked nothing (the camera was away): encoded, which takes any codec.
  assert.equal(microphoneCommand()[microphoneCommand().indexOf('-c:a') + 1], 'libopus')
  noPassword(lines)
})
