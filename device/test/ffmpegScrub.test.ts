import { test } from 'node:test'
import assert from 'node:assert/strict'
import { memoryLogger } from '@doorbell/core'
import { FfmpegProcess } from '../src/audio/ffmpegProcess'
import { scrubUrl } from '../src/audio/cameraSound'

const URL_WITH_PASSWORD = 'rtsp://admin:s%40cret-9@127.0.0.1:8554/camera'

test('scrubUrl: the camera\'s URL is redacted, and its password wherever else it shows (as written and decoded)', () => {
  const scrub = scrubUrl(URL_WITH_PASSWORD)
  const said = scrub(`Opening '${URL_WITH_PASSWORD}'; auth s%40cret-9 failed; user admin password s@cret-9`)
  assert.ok(!said.includes('s%40cret-9') && !said.includes('s@cret-9'), said)
  assert.match(said, /Opening 'rtsp:\/\//)
  assert.equal(scrubUrl('not a url')('nothing to hide'), 'nothing to hide')
})

test('ffmpeg\'s lines are logged whole: a password split across two writes is still scrubbed', async (t) => {
  const lines: string[] = []
  // A stand-in for ffmpeg that prints the URL in two writes, the cut inside the password.
  const cut = URL_WITH_PASSWORD.indexOf('cret')
  const script = `printf '%s' "Opening ${URL_WITH_PASSWORD.slice(0, cut)}" >&2; sleep 0.2; printf '%s\\n' "${URL_WITH_PASSWORD.slice(cut)} for reading" >&2; sleep 5`
  const proc = new FfmpegProcess({ bin: 'sh', args: () => ['-c', script], what: 'microphone', log: memoryLogger(lines, 'mic'), scrub: scrubUrl(URL_WITH_PASSWORD) })
  t.after(() => proc.stop(100))
  proc.start()
  const deadline = Date.now() + 5000
  while (!lines.some((l) => l.includes('for reading')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const logged = lines.filter((l) => l.includes('ffmpeg'))
  assert.equal(logged.filter((l) => l.includes('for reading')).length, 1, logged.join('\n'))
  assert.ok(logged.every((l) => !l.includes('cret-9')), logged.join('\n'))
})
