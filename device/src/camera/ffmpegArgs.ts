import type { CameraSource } from '@doorbell/core'

export interface EncodeOptions {
  source: CameraSource
  codec: 'h264' | 'vp8'
  keyframeInterval: number
  bitrateKbps: number
  /** Where ffmpeg sends RTP (the device's own loopback socket). */
  rtpPort: number
  /** RTSP: pass the camera's own H.264 through (`passthrough`, decided from its probe) instead of re-encoding. */
  copyRtsp?: boolean
}

/** What a camera sends, as ffmpeg names it in its stream line (`Video: h264 (Constrained Baseline), …`). */
export interface SourceVideo { codec: string, profile: string | null }

/** The first video stream ffmpeg describes in its output (`Stream #0:0: Video: h264 (High), yuv420p…`); null if none. */
export function parseSourceVideo (ffmpegOutput: string): SourceVideo | null {
  const m = /Stream #\d+:\d+[^:]*: Video: ([\w-]+)(?: \(([^)]*)\))?/.exec(ffmpegOutput)
  if (!m) return null
  // The parenthesis after the codec is its profile for H.264 (`(High)`), a codec tag for others (`(hvc1 / 0x31637668)`).
  const profile = m[2] !== undefined && !m[2].includes('/') ? m[2] : null
  return { codec: m[1]!, profile }
}

/** H.264 profiles a browser decodes as our SDP offers it (profile-level-id 42e01f: Constrained Baseline): no B-frames. */
const PASSTHROUGH_PROFILES = new Set(['Constrained Baseline', 'Baseline'])

/**
 * Whether an RTSP camera's video goes to browsers as it is (`-c:v copy`, SPS/PPS dumped before each
 * keyframe) or is re-encoded, and why (the camera log says it). Re-encoding only where it is needed:
 * a codec other than H.264, a profile browsers may not decode as negotiated (Main and High may carry
 * B-frames, which WebRTC does not reorder), or VP8 configured.
 */
export function passthrough (codec: 'h264' | 'vp8', video: SourceVideo | null): { copy: boolean, why: string } {
  if (codec !== 'h264') return { copy: false, why: 'the camera codec is set to vp8' }
  if (video === null) return { copy: false, why: 'the camera\'s stream could not be probed' }
  if (video.codec !== 'h264') return { copy: false, why: `the camera sends ${video.codec}, not H.264` }
  if (video.profile === null || !PASSTHROUGH_PROFILES.has(video.profile)) {
    return { copy: false, why: `the camera sends H.264 ${video.profile ?? '(profile unknown)'}, not (Constrained) Baseline` }
  }
  return { copy: true, why: `the camera sends H.264 ${video.profile}` }
}

/** Arguments that make ffmpeg describe an RTSP camera's streams and exit (it says "At least one output file must be specified"). */
export function probeArgs (url: string): string[] {
  return ['-hide_banner', '-nostdin', '-rtsp_transport', 'tcp', '-i', url]
}

/** The RTP payload type ffmpeg writes; werift rewrites it to the negotiated one. */
export const FFMPEG_PAYLOAD_TYPE = 96

function input (source: CameraSource, copyRtsp: boolean): { args: string[], fps: number, copyH264: boolean } {
  switch (source.kind) {
    case 'test-pattern':
      return {
        args: ['-re', '-f', 'lavfi', '-i', `testsrc=size=${source.width}x${source.height}:rate=${source.fps}`],
        fps: source.fps,
        copyH264: false
      }
    case 'v4l2':
      return {
        args: ['-f', 'v4l2', '-framerate', String(source.fps), '-video_size', `${source.width}x${source.height}`, '-i', source.device],
        fps: source.fps,
        copyH264: false
      }
    case 'picam':
      // rpicam-vid writes H.264 to stdout (see camera.ts); ffmpeg only packetizes it.
      return { args: ['-f', 'h264', '-framerate', String(source.fps), '-i', 'pipe:0'], fps: source.fps, copyH264: true }
    case 'rtsp':
      return { args: ['-rtsp_transport', 'tcp', '-i', source.url], fps: 30, copyH264: copyRtsp }
  }
}

/**
 * ffmpeg arguments for one encode that every viewer shares. H.264 is Baseline with the
 * parameter sets repeated in-band: RTP carries no out-of-band SPS/PPS here, and a viewer
 * that joins later must find them before the next IDR.
 */
export function ffmpegArgs (o: EncodeOptions): string[] {
  const src = input(o.source, o.copyRtsp === true)
  const gop = String(o.keyframeInterval)
  const out = ['-an', '-payload_type', String(FFMPEG_PAYLOAD_TYPE), '-ssrc', '1', '-f', 'rtp', '-pkt_size', '1200', `rtp://127.0.0.1:${o.rtpPort}`]
  const head = ['-hide_banner', '-loglevel', 'error', '-nostdin']
  if (o.codec === 'h264' && src.copyH264) {
    return [...head, ...src.args, '-c:v', 'copy', '-bsf:v', 'dump_extra=freq=keyframe', ...out]
  }
  if (o.codec === 'h264') {
    return [
      ...head, ...src.args,
      '-c:v', 'libx264', '-profile:v', 'baseline', '-level:v', '3.1', '-pix_fmt', 'yuv420p',
      '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0',
      '-g', gop, '-keyint_min', gop, '-sc_threshold', '0',
      '-b:v', `${o.bitrateKbps}k`, '-maxrate', `${o.bitrateKbps}k`, '-bufsize', `${o.bitrateKbps}k`,
      '-x264-params', 'repeat-headers=1',
      ...out
    ]
  }
  return [
    ...head, ...src.args,
    '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-pix_fmt', 'yuv420p',
    '-g', gop, '-keyint_min', gop, '-auto-alt-ref', '0', '-error-resilient', '1',
    '-b:v', `${o.bitrateKbps}k`,
    ...out
  ]
}

/**
 * The Pi camera: rpicam-vid encodes H.264 in the Pi's hardware (Baseline, parameter sets before
 * every keyframe with --inline) and writes it to stdout, which ffmpeg only packetizes.
 */
export function rpicamArgs (source: { width: number, height: number, fps: number }): string[] {
  return ['-t', '0', '--inline', '--codec', 'h264', '--profile', 'baseline',
    '--width', String(source.width), '--height', String(source.height), '--framerate', String(source.fps), '-n', '-o', '-']
}

/** The codec line the device offers in SDP, matching what ffmpegArgs produces. */
export const H264_FMTP = 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f'
