import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger, parseConfig, DeviceConfig, type DeviceConfigInput } from '@doorbell/core'
import { Microphone } from '../src/audio/microphone'
import { Speaker, mendWav } from '../src/audio/speaker'
import { AudioDeviceError } from '../src/audio/errors'
import { RtpSplice, SPEAKER_SSRC } from '../src/audio/rtpSplice'
import { OPUS_PAYLOAD_TYPE, microphoneArgs, opusCopy, parseSourceAudio, sinkProbeArgs, speakerArgs, speakerSdp } from '../src/audio/ffmpegArgs'
import { offersAudio } from '../src/answering'

const audioConfig = (audio: DeviceConfigInput['audio']) => parseConfig(DeviceConfig, { audio }, 'test').audio

/** Polls `check` every 50 ms until it holds (or fails, saying what was awaited). */
async function until (check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The value that follows `flag` (once). */
function valueOf (args: string[], flag: string): string {
  const at = args.flatMap((a, i) => a === flag ? [i] : [])
  assert.equal(at.length, 1, `${flag} appears once in: ${args.join(' ')}`)
  return args[at[0]! + 1]!
}
const beforeInput = (args: string[]): string[] => args.slice(0, args.indexOf('-i'))

/** 16-bit mono PCM samples of a WAV file, checking its header gives the data's true size. */
function wavSamples (file: Buffer): Int16Array {
  const at = file.indexOf('data', 12)
  assert.ok(at > 0, 'the WAV has a data chunk')
  assert.equal(file.readUInt32LE(4), file.length - 8, 'the RIFF size')
  assert.equal(file.readUInt32LE(at + 4), file.length - at - 8, 'the data size')
  const data = file.subarray(at + 8)
  return new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + (data.length & ~1)))
}

/** A pure tone's frequency from its zero crossings (only the loud part: Opus fades in). */
function toneFrequency (samples: Int16Array, rate = 48000): number {
  const loud = samples.filter((s) => Math.abs(s) > 200).length
  assert.ok(loud > rate * 0.2, `there is sound (${loud} loud samples)`)
  const start = Math.floor(rate * 0.1)
  let crossings = 0
  for (let i = start + 1; i < samples.length; i++) if ((samples[i - 1]! < 0) !== (samples[i]! < 0)) crossings++
  return crossings / 2 / ((samples.length - start) / rate)
}

describe('ffmpeg command lines for sound', () => {
  test('the microphone: Opus 48 kHz, payload type 111, to the loopback port; live input without probing', () => {
    const tone = microphoneArgs({ source: { kind: 'test-tone', frequencyHz: 660 }, bitrateKbps: 32, rtpPort: 5006 })
    assert.equal(valueOf(tone, '-i'), 'sine=frequency=660:sample_rate=48000:samples_per_frame=960', 'one 20 ms Opus packet per input frame')
    assert.ok(beforeInput(tone).includes('-re'), 'a generated tone is paced in real time')
    assert.equal(valueOf(tone, '-c:a'), 'libopus')
    assert.equal(valueOf(tone, '-ar'), '48000')
    assert.equal(valueOf(tone, '-b:a'), '32k')
    assert.equal(valueOf(tone, '-payload_type'), String(OPUS_PAYLOAD_TYPE))
    assert.equal(OPUS_PAYLOAD_TYPE, 111)
    assert.equal(tone.at(-1), 'rtp://127.0.0.1:5006?pkt_size=1200')
    assert.equal(valueOf(tone, '-frame_duration'), '20')
    // audio.frameMs 10: 10 ms Opus frames, and the tone made in frames of one packet each.
    const short = microphoneArgs({ source: { kind: 'test-tone', frequencyHz: 660 }, bitrateKbps: 32, rtpPort: 5006, frameMs: 10 })
    assert.equal(valueOf(short, '-frame_duration'), '10')
    assert.equal(valueOf(short, '-i'), 'sine=frequency=660:sample_rate=48000:samples_per_frame=480')
    const alsa = microphoneArgs({ source: { kind: 'alsa', device: 'plughw:1,0' }, bitrateKbps: 32, rtpPort: 5006 })
    assert.deepEqual(beforeInput(alsa).slice(4, 6), ['-f', 'alsa'])
    assert.equal(valueOf(alsa, '-i'), 'plughw:1,0')
    assert.equal(valueOf(alsa, '-probesize'), '32')
    assert.equal(valueOf(alsa, '-analyzeduration'), '0')
    assert.ok(!beforeInput(alsa).includes('-re'), 'a real microphone paces itself')
    const pulse = microphoneArgs({ source: { kind: 'pulse' }, bitrateKbps: 32, rtpPort: 5006 })
    assert.deepEqual(beforeInput(pulse).slice(-6), ['-f', 'pulse', '-probesize', '32', '-analyzeduration', '0'])
    assert.equal(valueOf(pulse, '-i'), 'default')
  })

  test('the speaker: an SDP on stdin for Opus on one port, decoded to the sink', () => {
    const sdp = speakerSdp(40000)
    assert.match(sdp, /^m=audio 40000 RTP\/AVP 111\r$/m)
    assert.match(sdp, /^a=rtpmap:111 opus\/48000\/2\r$/m)
    assert.match(sdp, /^c=IN IP4 127\.0\.0\.1\r$/m)
    const wav = speakerArgs({ kind: 'wav', path: '/tmp/said.wav' })
    assert.equal(valueOf(wav, '-protocol_whitelist'), 'pipe,udp,rtp')
    assert.equal(valueOf(wav, '-listen_timeout'), '-1', 'a quiet speaker is not a dead one: no restart, no WAV rewritten')
    assert.deepEqual(wav.slice(wav.indexOf('-probesize'), wav.indexOf('-i') + 2), ['-probesize', '32', '-analyzeduration', '0', '-f', 'sdp', '-i', 'pipe:0'])
    assert.deepEqual(wav.slice(-7), ['pcm_s16le', '-flush_packets', '1', '-f', 'wav', '-y', '/tmp/said.wav'])
    assert.deepEqual(speakerArgs({ kind: 'alsa', device: 'plughw:1,0', optional: false }).slice(-3), ['-f', 'alsa', 'plughw:1,0'])
    const pulse = speakerArgs({ kind: 'pulse', device: 'spk', optional: false })
    assert.equal(valueOf(pulse, '-buffer_duration'), '100')
    assert.equal(valueOf(pulse, '-device'), 'spk')
    assert.deepEqual(sinkProbeArgs({ kind: 'alsa', device: 'null', optional: false }).slice(-3), ['-f', 'alsa', 'null'])
  })

  test('the RTSP camera\'s sound: only its audio track over TCP, live; encoded to Opus, or copied as it is', () => {
    const url = 'rtsp://admin:secret@192.168.1.20:554/stream1'
    const encoded = microphoneArgs({ source: { kind: 'camera', url }, bitrateKbps: 32, rtpPort: 5006 })
    assert.equal(valueOf(encoded, '-i'), url)
    assert.equal(valueOf(encoded, '-rtsp_transport'), 'tcp')
    assert.equal(valueOf(encoded, '-allowed_media_types'), 'audio', 'the video is not fetched twice')
    assert.equal(valueOf(encoded, '-analyzeduration'), '0')
    assert.equal(valueOf(encoded, '-c:a'), 'libopus')
    assert.equal(valueOf(encoded, '-ac'), '1')
    assert.equal(valueOf(encoded, '-ar'), '48000')
    assert.ok(!beforeInput(encoded).includes('-re'), 'a camera paces itself')
    const copied = microphoneArgs({ source: { kind: 'camera', url }, bitrateKbps: 32, rtpPort: 5006, copy: true })
    assert.equal(valueOf(copied, '-c:a'), 'copy')
    for (const encoding of ['libopus', '-b:a', '-frame_duration', '-application', '-ar', '-ac']) assert.ok(!copied.includes(encoding), `no ${encoding} when copying`)
    assert.equal(valueOf(copied, '-payload_type'), '111')
    assert.equal(copied.at(-1), 'rtp://127.0.0.1:5006?pkt_size=1200')
  })

  test('a camera\'s sound track as ffmpeg describes it (its own words), and whether it is copied', () => {
    // What Debian's ffmpeg 5.1 printed for GStreamer's RTSP server (tests/src/rtspServer.py) and for an AAC camera's stream.
    const probe = (audio: string) => 'Input #0, rtsp, from \'rtsp://127.0.0.1:8554/camera\':\n' +
      '  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(tv, smpte170m, progressive), 320x240 [SAR 1:1 DAR 4:3], 30 fps, 30 tbr, 90k tbn\n' +
      (audio ? `  Stream #0:1: Audio: ${audio}\n` : '') + 'At least one output file must be specified\n'
    const pcma = parseSourceAudio(probe('pcm_alaw, 8000 Hz, mono, s16, 64 kb/s'))
    assert.deepEqual(pcma, { codec: 'pcm_alaw', rateHz: 8000, channels: 'mono' })
    const opus = parseSourceAudio(probe('opus, 48000 Hz, stereo, fltp'))
    assert.deepEqual(opus, { codec: 'opus', rateHz: 48000, channels: 'stereo' })
    const aac = parseSourceAudio(probe('aac (LC), 16000 Hz, mono, fltp'))
    assert.deepEqual(aac, { codec: 'aac', rateHz: 16000, channels: 'mono' })
    assert.equal(parseSourceAudio(probe('')), null)
    assert.deepEqual(opusCopy(opus!, undefined), { copy: true, why: 'the camera sends opus at 48000 Hz' })
    assert.deepEqual(opusCopy(opus!, 20), { copy: true, why: 'the camera sends opus at 48000 Hz' })
    assert.deepEqual(opusCopy(pcma!, undefined), { copy: false, why: 'the camera sends pcm_alaw at 8000 Hz, not Opus' })
    assert.deepEqual(opusCopy(aac!, undefined), { copy: false, why: 'the camera sends aac at 16000 Hz, not Opus' })
    assert.deepEqual(opusCopy({ codec: 'opus', rateHz: 16000, channels: 'mono' }, undefined), { copy: false, why: 'the camera sends opus at 16000 Hz, not 48 kHz' })
    assert.equal(opusCopy(opus!, 10).copy, false, 'audio.frameMs 10 asks for our own 10 ms frames')
  })

  test('the speaker waits through silence: no 10 s input timeout that would restart it (and start a WAV over) between talks', () => {
    for (const sink of [{ kind: 'wav', path: '/tmp/said.wav' }, { kind: 'alsa', device: 'plughw:1,0', optional: false }] as const) {
      const args = speakerArgs(sink)
      assert.equal(valueOf(args, '-listen_timeout'), '-1')
      assert.ok(args.indexOf('-listen_timeout') < args.indexOf('-i'), 'an input option')
    }
  })
})

describe('RtpSplice: talkers one after another, as one stream for the decoder', () => {
  const packet = (seq: number, ts: number, ssrc: number, pt = 111, marker = false): Buffer => {
    const b = Buffer.alloc(20)
    b[0] = 0x80
    b[1] = (marker ? 0x80 : 0) | pt
    b.writeUInt16BE(seq, 2)
    b.writeUInt32BE(ts, 4)
    b.writeUInt32BE(ssrc, 8)
    return b
  }
  const fields = (b: Buffer | null) => b && { seq: b.readUInt16BE(2), ts: b.readUInt32BE(4), ssrc: b.readUInt32BE(8), pt: b[1]! & 0x7f, marker: (b[1]! & 0x80) !== 0 }

  test('a new talker goes on from the last sequence number, with the pause in its timestamps; one SSRC; PT 111; the input untouched', () => {
    let now = 1000
    const splice = new RtpSplice(() => now)
    assert.deepEqual(fields(splice.next('s1', packet(65535, 4_294_966_336, 7))), { seq: 65535, ts: 4_294_966_336, ssrc: SPEAKER_SSRC, pt: 111, marker: false })
    now += 20
    assert.deepEqual(fields(splice.next('s1', packet(0, 0, 7))), { seq: 0, ts: 0, ssrc: SPEAKER_SSRC, pt: 111, marker: false })
    now += 500
    const input = packet(300, 123_456, 9, 109, true)
    const copy = Buffer.from(input)
    assert.deepEqual(fields(splice.next('s2', input)), { seq: 1, ts: 500 * 48, ssrc: SPEAKER_SSRC, pt: 111, marker: true })
    assert.deepEqual(input, copy)
    now += 20
    assert.deepEqual(fields(splice.next('s2', packet(301, 123_456 + 960, 9))), { seq: 2, ts: 500 * 48 + 960, ssrc: SPEAKER_SSRC, pt: 111, marker: false })
    // A late packet of the same talker keeps its place and does not move the splice point back.
    assert.equal(fields(splice.next('s2', packet(299, 123_456 - 960, 9)))?.seq, 0)
    assert.equal(splice.next('s2', Buffer.from([1, 2, 3])), null)
  })
})

describe('the talk floor and the offer', () => {
  test('offersAudio: an audio line that is not rejected', () => {
    assert.equal(offersAudio('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n'), true)
    assert.equal(offersAudio('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'), false)
    assert.equal(offersAudio('v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\n'), false)
  })
})

describe('the microphone and the speaker, with real ffmpeg', () => {
  test('the test tone, sent as Opus RTP through the speaker into a WAV file, is the configured frequency', { timeout: 30_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'doorbell-audio-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const lines: string[] = []
    const config = audioConfig({ source: { kind: 'test-tone', frequencyHz: 660 }, speaker: { kind: 'wav', path: join(dir, 'said.wav') } })
    const microphone = new Microphone(config, memoryLogger(lines, 'mic'))
    const speaker = new Speaker(config, memoryLogger(lines, 'spk'))
    await microphone.start()
    await speaker.start()
    assert.equal(speaker.enabled, true)
    const received: Buffer[] = []
    const stop = microphone.subscribe((packet) => { received.push(packet); speaker.play('session-1', packet) })
    // Two seconds of sound, counted in packets as they come (however loaded the machine).
    const deadline = Date.now() + 20_000
    while (received.length < 100 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    stop()
    await speaker.stop()
    await microphone.stop()
    assert.ok(received.length >= 100, `the microphone sent ${received.length} packets`)
    // The rate from the packets' own RTP clock (48 kHz for Opus), not from a wall-clock window a
    // loaded machine stretches: about 50 a second is about 960 ticks (20 ms) each.
    const ticks = (received.at(-1)!.readUInt32BE(4) - received[0]!.readUInt32BE(4)) / (received.length - 1)
    assert.ok(ticks >= 800 && ticks <= 1600, `about 50 packets a second (${(48_000 / ticks).toFixed(1)} a second by their timestamps)`)
    assert.ok(received.every((p) => (p[1]! & 0x7f) === 111), 'payload type 111')
    const frequency = toneFrequency(wavSamples(await readFile(join(dir, 'said.wav'))))
    assert.ok(Math.abs(frequency - 660) < 10, `the speaker played ${frequency.toFixed(1)} Hz`)
  })

  // A browser's jitter buffer reads each packet's lateness from its RTP timestamp: a step that is
  // not the frame's length (a 1,024-sample frame, a skipped count) looks like jitter and grows it.
  for (const frameMs of [20, 10] as const) {
    test(`the real encoder's RTP at ${frameMs} ms frames: each packet one sequence number and exactly ${48 * frameMs} ticks (${frameMs} ms at 48 kHz) after the one before`, { timeout: 30_000 }, async (t) => {
      const microphone = new Microphone(audioConfig({ source: { kind: 'test-tone', frequencyHz: 660 }, frameMs }), memoryLogger([], 'mic'))
      t.after(() => microphone.stop())
      await microphone.start()
      const received: Buffer[] = []
      const stop = microphone.subscribe((packet) => { received.push(Buffer.from(packet)) })
      t.after(stop)
      await until(() => received.length >= 100, 20_000, '100 packets from ffmpeg')
      const steps = new Map<string, number>()
      for (let i = 1; i < received.length; i++) {
        const seq = (received[i]!.readUInt16BE(2) - received[i - 1]!.readUInt16BE(2) + 0x10000) % 0x10000
        const ticks = (received[i]!.readUInt32BE(4) - received[i - 1]!.readUInt32BE(4) + 0x100000000) % 0x100000000
        const key = `seq +${seq}, ts +${ticks}`
        steps.set(key, (steps.get(key) ?? 0) + 1)
      }
      assert.deepEqual([...steps], [[`seq +1, ts +${48 * frameMs}`, received.length - 1]])
      assert.equal(new Set(received.map((p) => p.readUInt32BE(8))).size, 1, 'one SSRC')
    })
  }

  test('a session that opens its audio gets the microphone\'s current frame at once (fromLast), not with the next one; nothing once stopped', { timeout: 30_000 }, async (t) => {
    const microphone = new Microphone(audioConfig({ source: { kind: 'test-tone', frequencyHz: 660 } }), memoryLogger([], 'mic'))
    t.after(() => microphone.stop())
    await microphone.start()
    // Nobody listens yet: the encoder runs, nothing leaves.
    await until(() => microphone.packets >= 10, 20_000, 'ffmpeg to send packets')
    const seen: Buffer[] = []
    const opened = await new Promise<{ now: Buffer[], plain: Buffer[] }>((resolve) => {
      const watch = microphone.subscribe((packet) => {
        seen.push(Buffer.from(packet))
        if (seen.length < 3) return
        watch()
        // Right after a packet: one subscriber asks for the current frame, one does not.
        const now: Buffer[] = []
        const plain: Buffer[] = []
        const a = microphone.subscribe((p) => { now.push(Buffer.from(p)) }, { fromLast: true })
        const b = microphone.subscribe((p) => { plain.push(Buffer.from(p)) })
        const atOnce = { now: [...now], plain: [...plain] }
        a(); b()
        resolve(atOnce)
      })
    })
    assert.equal(opened.now.length, 1, 'the current frame, in the subscribe call itself')
    assert.ok(opened.now[0]!.equals(seen.at(-1)!), 'the frame just handed on (same sequence number and payload)')
    assert.equal(opened.plain.length, 0, 'without fromLast: nothing until the next frame')
    // Stopped: nothing current is left to give.
    await microphone.stop()
    const after: Buffer[] = []
    microphone.subscribe((p) => { after.push(p) }, { fromLast: true })()
    assert.equal(after.length, 0)
  })

  test('audio.timingLogSeconds: the real encoder\'s packets are timed and logged while a session listens, and only then', { timeout: 30_000 }, async (t) => {
    const lines: string[] = []
    const microphone = new Microphone(audioConfig({ source: { kind: 'test-tone', frequencyHz: 660 }, timingLogSeconds: 1 }), memoryLogger(lines, 'mic'))
    t.after(() => microphone.stop())
    await microphone.start()
    const timed = (): string[] => lines.filter((l) => l.includes('microphone timing'))
    // Nobody listens: nothing leaves the device, and nothing is timed.
    await until(() => microphone.packets >= 100, 20_000, 'ffmpeg to send 2 s of packets')
    assert.equal(timed().length, 0)
    const stop = microphone.subscribe(() => {})
    t.after(stop)
    await until(() => timed().length > 0, 20_000, 'a timing line')
    const line = timed()[0]!
    const packets = Number(/ packets=(\d+)/.exec(line)?.[1])
    assert.ok(packets >= 10 && packets <= 120, line)
    for (const field of ['arrival', 'sent', 'handOver', 'loop']) assert.match(line, new RegExp(` ${field}=\\{"p`), line)
  })

  test('mendWav writes the sizes ffmpeg left at 0, and leaves what is not a WAV file alone', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'doorbell-wav-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'said.wav')
    const header = Buffer.alloc(44)
    header.write('RIFF', 0, 'latin1'); header.write('WAVE', 8, 'latin1'); header.write('fmt ', 12, 'latin1')
    header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22); header.writeUInt32LE(48000, 24)
    header.write('data', 36, 'latin1')
    await writeFile(file, Buffer.concat([header, Buffer.alloc(960)]))
    mendWav(file, memoryLogger([], 'spk'))
    const mended = await readFile(file)
    assert.equal(mended.readUInt32LE(4), 44 + 960 - 8)
    assert.equal(mended.readUInt32LE(40), 960)
    await writeFile(join(dir, 'text.wav'), 'not a wav')
    mendWav(join(dir, 'text.wav'), memoryLogger([], 'spk'))
    assert.equal(await readFile(join(dir, 'text.wav'), 'utf8'), 'not a wav')
    mendWav('/dev/null', memoryLogger([], 'spk'))
    mendWav(join(dir, 'missing.wav'), memoryLogger([], 'spk'))
  })

  test('source "none" and speaker "none" run nothing', async () => {
    const config = audioConfig({ source: 'none', speaker: 'none' })
    const microphone = new Microphone(config, memoryLogger([], 'mic'))
    const speaker = new Speaker(config, memoryLogger([], 'spk'))
    await microphone.start()
    await speaker.start()
    assert.equal(microphone.enabled, false)
    assert.equal(speaker.enabled, false)
    speaker.play('s', Buffer.alloc(20))
    assert.equal(speaker.packets, 0)
    await speaker.stop()
    await microphone.stop()
  })

  test('a missing sound device is a start-up error naming it and how to list devices; an optional speaker is a warning', { timeout: 30_000 }, async () => {
    // This machine has no sound card: card 9 is missing on any machine that might run this.
    const mic = new Microphone(audioConfig({ source: { kind: 'alsa', device: 'plughw:9,0' } }), memoryLogger([], 'mic'))
    await assert.rejects(mic.start(), (err: Error) => {
      assert.ok(err instanceof AudioDeviceError)
      assert.equal(err.name, 'AudioDeviceError')
      assert.match(err.message, /ALSA capture device "plughw:9,0"/)
      assert.match(err.message, /arecord -l/)
      return true
    })
    const spk = new Speaker(audioConfig({ speaker: { kind: 'alsa', device: 'plughw:9,0' } }), memoryLogger([], 'spk'))
    await assert.rejects(spk.start(), /speaker cannot be opened: ALSA playback device "plughw:9,0".*aplay -l/)
    const lines: string[] = []
    const optional = new Speaker(audioConfig({ speaker: { kind: 'alsa', device: 'plughw:9,0', optional: true } }), memoryLogger(lines, 'spk'))
    await optional.start()
    assert.equal(optional.enabled, false)
    assert.ok(lines.some((l) => /no speaker: ALSA playback device "plughw:9,0"/.test(l)), lines.join('\n'))
    const noFolder = new Speaker(audioConfig({ speaker: { kind: 'wav', path: '/nonexistent-folder/said.wav' } }), memoryLogger([], 'spk'))
    await assert.rejects(noFolder.start(), /cannot write the WAV file \/nonexistent-folder\/said\.wav/)
  })
})
