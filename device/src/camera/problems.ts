import type { CameraSource } from '@doorbell/core'

/**
 * What a person can do about a camera that will not start, read from what ffmpeg or rpicam-vid
 * said (their own words, as they print them). Null: a line that names no known problem.
 */
export function cameraProblem (source: CameraSource, line: string): string | null {
  if (source.kind === 'v4l2') {
    const device = source.device
    // libavdevice/v4l2.c: "Cannot open video device %s: %s"
    if (/Cannot open video device .*No such file or directory/.test(line)) {
      return `${device} does not exist: is the webcam plugged in? List the cameras with: v4l2-ctl --list-devices (or ls /dev/video*)`
    }
    if (/Device or resource busy/.test(line)) return `${device} is busy: another program is using the webcam (find it with: fuser ${device})`
    if (/Cannot open video device .*Permission denied/.test(line)) {
      return `cannot open ${device}: the doorbell's user is not in the video group (sudo usermod -aG video <user>, then start it again)`
    }
    return null
  }
  if (source.kind === 'picam') {
    if (/spawn rpicam-vid ENOENT/.test(line)) return 'rpicam-vid is not installed: sudo apt install rpicam-apps (Raspberry Pi OS Bookworm or later)'
    if (/no cameras available/i.test(line)) return 'rpicam-vid finds no camera: check the ribbon cable (contacts the right way round) and run: rpicam-hello --list-cameras'
    if (/failed to acquire camera|Device or resource busy/i.test(line)) return 'the Pi camera is busy: another program is using it (another rpicam-vid, or a second doorbell)'
    return null
  }
  if (source.kind === 'rtsp') {
    if (/Connection refused|Connection timed out|No route to host/.test(line)) return `the RTSP camera at ${redact(source.url)} does not answer: is it on, and is the address right?`
    if (/401 Unauthorized/.test(line)) return `the RTSP camera at ${redact(source.url)} refused the user name or password in its URL`
    if (/404 Not Found/.test(line)) return `the RTSP camera at ${redact(source.url)} has no stream at that path (see its manual for the stream URL)`
    return null
  }
  return null
}

/** An RTSP URL without its password, for the log. */
export function redact (url: string): string {
  return url.replace(/^(rtsps?:\/\/[^:/@]+):[^@/]*@/, '$1:***@')
}
