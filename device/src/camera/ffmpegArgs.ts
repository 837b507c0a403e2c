import type { CameraSource } from '@doorbell/core'

export interface EncodeOptions {
  source: CameraSource
  codec: 'h264' | 'vp8'
  keyframeInterval: number
  bitrateKbps: number
  /** Where ffmpeg sends RTP (the device's own loopback socket). */
  rtpPort: number
}

/** The RTP payload type ffmpeg writes; werift rewrites it to the negotiated one. */
export const FFMPEG_PAYLOAD_TYPE = 96

function input (source: CameraSource): { args: string[], fps: number, copyH264: boolean } {
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
      return { args: ['-rtsp_transport', 'tcp', '-i', source.url], fps: 30, copyH264: false }
  }
}

/**
 * ffmpeg arguments for one encode that every viewer shares. H.264 is Baseline with the
 * parameter sets repeated in-band: RTP carries no out-of-band SPS/PPS here, and a viewer
 * that joins later must find them before the next IDR.
 */
export function ffmpegArgs (o: EncodeOptions): string[] {
  const src = input(o.source)
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

/** The codec line the device offers in SDP, matching what ffmpegArgs produces. */
export const H264_FMTP = 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f'
