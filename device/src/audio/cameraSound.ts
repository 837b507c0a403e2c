import type { Logger } from '@doorbell/core'
import { probeArgs } from '../camera/ffmpegArgs'
import { cameraProblem, redact } from '../camera/problems'
import { AudioDeviceError } from './errors'
import { opusCopy, parseSourceAudio } from './ffmpegArgs'
import { runToEnd } from './ffmpegProcess'

/** How long an RTSP camera may take to describe its streams (as the camera's own probe). */
const PROBE_TIMEOUT_MS = 10_000

/**
 * A camera's password stays out of the log and of errors (ffmpeg repeats the URL in what it
 * prints): the URL is redacted, and the password itself wherever else it shows (as written and
 * decoded), so a line that names it some other way, or a piece of a line, does not give it away.
 */
export const scrubUrl = (url: string) => {
  let secrets: string[] = []
  try {
    const raw = new URL(url).password
    secrets = [...new Set([raw, safeDecode(raw)])].filter((x) => x.length > 0).sort((a, b) => b.length - a.length)
  } catch {}
  return (text: string): string => secrets.reduce((t, secret) => t.replaceAll(secret, '***'), text.replaceAll(url, redact(url)))
}

const safeDecode = (s: string): string => { try { return decodeURIComponent(s) } catch { return s } }

/**
 * audio.source "camera": the RTSP camera is asked what it sends (the same question as the
 * camera's own probe), and its sound is copied when it is Opus at 48 kHz, else encoded to Opus.
 * A camera that answers without a sound track is an AudioDeviceError, like a missing ALSA device.
 * A camera that does not answer (rebooting while the doorbell starts) is not: the encoder is
 * started anyway, as an encode (which takes any codec), and ffmpeg is retried with the shared
 * backoff until the camera is back, as the camera's video is.
 */
export async function askCameraSound (bin: string, url: string, frameMs: 10 | 20 | undefined, log: Logger): Promise<{ copy: boolean }> {
  const scrub = scrubUrl(url)
  const probe = await runToEnd(bin, probeArgs(url), PROBE_TIMEOUT_MS)
  const said = scrub(probe.stderr)
  const audio = parseSourceAudio(said)
  if (audio === null) {
    if (/Stream #\d+:\d+/.test(said)) {
      throw new AudioDeviceError(`the microphone cannot be opened: the RTSP camera at ${redact(url)} sends no sound track; ` +
        'set audio.source to another microphone (ALSA or PulseAudio), or "none"')
    }
    const lines = said.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/At least one output file/.test(l))
    const problem = lines.map((l) => cameraProblem({ kind: 'rtsp', url }, l)).find((p) => p !== null)
    log.warn('microphone: the RTSP camera could not be asked what sound it sends; encoding whatever comes, once it answers', {
      ...(problem ? { problem } : {}), ffmpeg: lines.at(-1) ?? ''
    })
    return { copy: false }
  }
  const decision = opusCopy(audio, frameMs)
  if (decision.copy) log.info('microphone: sending the RTSP camera\'s Opus as it is, not encoding', { why: decision.why, channels: audio.channels ?? '?' })
  else log.info('microphone: encoding the RTSP camera\'s sound to Opus', { why: decision.why })
  return { copy: decision.copy }
}
