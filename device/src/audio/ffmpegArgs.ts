import type { AudioSource, SpeakerSink } from '@doorbell/core'

/** Opus's payload type in every browser's offer (FIELD-NOTES); without it ffmpeg writes 97. werift rewrites it to the negotiated one anyway. */
export const OPUS_PAYLOAD_TYPE = 111

/** Without these, ffmpeg probes live input for about a second and then sends a burst that fills the browser's jitter buffer (FIELD-NOTES). */
const LOW_LATENCY_INPUT = ['-probesize', '32', '-analyzeduration', '0']
const HEAD = ['-hide_banner', '-loglevel', 'error']

/** The microphone's input as ffmpeg opens it: "camera" carries the RTSP camera's URL (`camera.source.url`). */
export type MicrophoneSource = Exclude<AudioSource, { kind: 'none' | 'camera' }> | { kind: 'camera', url: string }

export interface MicrophoneEncode {
  source: MicrophoneSource
  bitrateKbps: number
  /** Where ffmpeg sends RTP (the device's own loopback socket). */
  rtpPort: number
  /** Opus frame length (`audio.frameMs`); absent: 20. */
  frameMs?: 10 | 20
  /** The camera's own Opus, sent as it comes (`-c:a copy`, decided by `opusCopy` from its probe): no encode. */
  copy?: boolean
}

function microphoneInput (source: MicrophoneSource, frameMs: number): string[] {
  switch (source.kind) {
    case 'camera':
      // Only the sound track is set up (the camera's video has its own connection, camera/); over
      // TCP like the camera's, so a lossy Wi-Fi does not drop audio packets before they are ours.
      return ['-rtsp_transport', 'tcp', '-allowed_media_types', 'audio', ...LOW_LATENCY_INPUT, '-i', source.url]
    case 'test-tone':
      // -re: a generated sine is paced like a real microphone; in frames of one Opus packet each
      // (its default, 1024 samples, hands over two packets at once now and then).
      return ['-re', '-f', 'lavfi', '-i', `sine=frequency=${source.frequencyHz}:sample_rate=48000:samples_per_frame=${48 * frameMs}`]
    case 'alsa':
      return ['-f', 'alsa', ...LOW_LATENCY_INPUT, '-ac', '1', '-ar', '48000', '-i', source.device]
    case 'pulse':
      return ['-f', 'pulse', ...LOW_LATENCY_INPUT, '-i', source.device ?? 'default']
  }
}

/**
 * One Opus encode (48 kHz, 20 ms frames unless `frameMs` says 10) shared by every session, as RTP
 * to a loopback socket; or, with `copy`, the camera's Opus packets as they are.
 */
export function microphoneArgs (o: MicrophoneEncode): string[] {
  const codec = o.copy === true
    ? ['-c:a', 'copy']
    : ['-ac', '1', '-ar', '48000', '-c:a', 'libopus', '-application', 'voip', '-frame_duration', String(o.frameMs ?? 20), '-b:a', `${o.bitrateKbps}k`]
  return [
    ...HEAD, '-nostdin', ...microphoneInput(o.source, o.frameMs ?? 20), '-vn', ...codec,
    '-payload_type', String(OPUS_PAYLOAD_TYPE), '-ssrc', '2', '-f', 'rtp', `rtp://127.0.0.1:${o.rtpPort}?pkt_size=1200`
  ]
}

/** A camera's sound track as ffmpeg describes it (`Stream #0:1: Audio: pcm_alaw, 8000 Hz, mono, s16, 64 kb/s`). */
export interface SourceAudio { codec: string, rateHz: number, channels: string | null }

/** The first sound track in ffmpeg's description of an input; null if it has none. */
export function parseSourceAudio (ffmpegOutput: string): SourceAudio | null {
  const m = /Stream #\d+:\d+[^:]*: Audio: ([\w-]+)(?: \([^)]*\))*, (\d+) Hz(?:, ([\w.() ]+?))?(?:,|$)/m.exec(ffmpegOutput)
  if (!m) return null
  return { codec: m[1]!, rateHz: Number(m[2]), channels: m[3] ?? null }
}

/**
 * Whether the camera's sound goes to browsers as it is (`-c:a copy`) or is encoded to Opus, and
 * why (the microphone's log says it). Only Opus at 48 kHz is copied, as the browser's Opus is;
 * AAC, G.711 (PCMA, PCMU) and the rest are encoded once. `audio.frameMs` 10 asks for frames of
 * our own: copied Opus keeps the camera's (20 ms from most).
 */
export function opusCopy (audio: SourceAudio, frameMs: 10 | 20 | undefined): { copy: boolean, why: string } {
  const sends = `the camera sends ${audio.codec} at ${audio.rateHz} Hz`
  if (audio.codec !== 'opus') return { copy: false, why: `${sends}, not Opus` }
  if (audio.rateHz !== 48_000) return { copy: false, why: `${sends}, not 48 kHz` }
  if (frameMs === 10) return { copy: false, why: 'audio.frameMs is 10: the camera\'s Opus is encoded again in 10 ms frames' }
  return { copy: true, why: sends }
}

export type PlayingSink = Exclude<SpeakerSink, { kind: 'none' }>

function sinkOutput (sink: PlayingSink): string[] {
  switch (sink.kind) {
    case 'wav':
      // Written as it comes (ffmpeg otherwise keeps it buffered): what was said is on disk even if the doorbell dies.
      return ['-c:a', 'pcm_s16le', '-flush_packets', '1', '-f', 'wav', '-y', sink.path]
    case 'alsa':
      return ['-f', 'alsa', sink.device]
    case 'pulse':
      // Without a short buffer PulseAudio drops most of a live stream (FIELD-NOTES); the last word is the stream's name in pactl.
      return ['-f', 'pulse', '-buffer_duration', '100', ...(sink.device ? ['-device', sink.device] : []), 'doorbell speaker']
  }
}

/** What ffmpeg is told on stdin about the RTP it receives: one Opus stream on `rtpPort` (and RTCP on the next port). */
export function speakerSdp (rtpPort: number): string {
  return [
    'v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=doorbell speaker', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${rtpPort} RTP/AVP ${OPUS_PAYLOAD_TYPE}`, `a=rtpmap:${OPUS_PAYLOAD_TYPE} opus/48000/2`, 'a=recvonly', ''
  ].join('\r\n')
}

/** The speaker: viewers' Opus, forwarded as RTP over loopback, decoded and played to the sink. The SDP comes on stdin. */
export function speakerArgs (sink: PlayingSink): string[] {
  return [
    // No timeout: with talk a lease, the speaker hears nothing for long stretches, and ffmpeg's
    // default (10 s without a packet) ended the decoder, whose restart rewrote the WAV sink empty.
    ...HEAD, '-listen_timeout', '-1', '-protocol_whitelist', 'pipe,udp,rtp', ...LOW_LATENCY_INPUT, '-f', 'sdp', '-i', 'pipe:0',
    '-vn', '-ac', '1', '-ar', '48000', ...sinkOutput(sink)
  ]
}

/** A twentieth of a second of silence to the sound device: fails at once, naming the problem, when the device is not there. */
export function sinkProbeArgs (sink: Exclude<PlayingSink, { kind: 'wav' }>): string[] {
  return [...HEAD, '-nostdin', '-f', 'lavfi', '-i', 'anullsrc=r=48000:cl=mono', '-t', '0.05', ...sinkOutput(sink)]
}

/** A short capture from the microphone's device: fails at once when it is not there. (The camera's is asked with camera/ffmpegArgs.ts `probeArgs`.) */
export function sourceProbeArgs (source: Extract<MicrophoneSource, { kind: 'alsa' | 'pulse' }>): string[] {
  return [...HEAD, '-nostdin', ...microphoneInput(source, 20), '-t', '0.05', '-f', 'null', '-']
}

/** How a person finds the right name, for the start-up error. */
export function howToList (kind: 'alsa' | 'pulse', direction: 'capture' | 'playback'): string {
  if (kind === 'alsa') return direction === 'capture' ? 'list capture devices with: arecord -l' : 'list playback devices with: aplay -l'
  return direction === 'capture' ? 'list sources with: pactl list sources short' : 'list sinks with: pactl list sinks short'
}
