import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { getPriority, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { memoryLogger, type DeviceConfig } from '@doorbell/core'
import { Camera } from '../src/camera/camera'
import { spawnChild } from '../src/children'

/**
 * The camera's encoder runs nicer than the doorbell (camera.niceness, 10 by default), so video never
 * keeps a door command waiting for a CPU: read from /proc of the real ffmpeg, every thread of it
 * (x264 encodes on threads of its own, which must not stay at the doorbell's priority).
 */

/** The niceness of each thread of `pid` (field 19 of /proc/PID/task/TID/stat). */
function threadNiceness (pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
  })
}

const CAMERA: DeviceConfig['camera'] = { source: { kind: 'test-pattern', width: 640, height: 480, fps: 30 }, codec: 'h264', keyframeInterval: 15, bitrateKbps: 800 }

async function encoderOf (camera: Camera, lines: string[]): Promise<{ pid: number, niceness: number[] }> {
  await camera.start()
  // The encoder is up once its packets flow; by then x264 has made its threads.
  const deadline = Date.now() + 20_000
  while (camera.packets < 30 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.ok(camera.packets >= 30, `no video from the encoder:\n${lines.join('\n')}`)
  const pid = Number(/pid=(\d+)/.exec(lines.find((l) => l.includes('camera starting')) ?? '')?.[1])
  assert.ok(pid > 0, lines.join('\n'))
  assert.match(readFileSync(`/proc/${pid}/comm`, 'utf8'), /^ffmpeg/, 'the logged pid is ffmpeg itself')
  return { pid, niceness: threadNiceness(pid) }
}

for (const [configured, expected] of [[undefined, 10], [3, 3], [0, 0]] as const) {
  test(`camera.niceness ${configured ?? 'absent'}: the real ffmpeg and each of its threads run at ${expected} above the doorbell`, async (t) => {
    const lines: string[] = []
    const camera = new Camera({ ...CAMERA, ...(configured !== undefined ? { niceness: configured } : {}) }, memoryLogger(lines, 'camera'))
    t.after(async () => { await camera.stop() })
    const own = getPriority()
    const { niceness } = await encoderOf(camera, lines)
    assert.ok(niceness.length > 1, `x264's threads are there (${niceness.length})`)
    assert.deepEqual(new Set(niceness), new Set([Math.min(19, own + expected)]), `threads' niceness: ${niceness.join(' ')}`)
    assert.match(lines.find((l) => l.includes('camera starting')) ?? '', new RegExp(`niceness=${expected}`), 'the log says it')
  })
}

test('spawnChild with niceness: same PID as the program (setpriv and nice exec it), capped at 19', async () => {
  const child = spawnChild('sleep', ['5'], { stdio: 'ignore', niceness: 25 })
  try {
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.match(readFileSync(`/proc/${child.pid}/comm`, 'utf8'), /^sleep/)
    assert.deepEqual(threadNiceness(child.pid!), [19])
  } finally {
    child.kill('SIGKILL')
  }
})

test('the doorbell refuses a bad camera.niceness at start, saying what is expected: no camera, no data written, the relay locked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-niceness-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const relayFile = join(dir, 'relay')
  writeFileSync(relayFile, 'open')
  const config = join(dir, 'doorbell.json')
  writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), hubUrl: 'mqtt://127.0.0.1:1', gpio: { driver: 'simulated', relayFile }, camera: { niceness: -5 } }))
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url))
  const run = spawn(process.execPath, ['--import', 'tsx', main, '--config', config], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] })
  let said = ''
  run.stdout.on('data', (d: Buffer) => { said += d.toString() })
  run.stderr.on('data', (d: Buffer) => { said += d.toString() })
  const code = await new Promise((resolve) => run.once('exit', resolve))
  assert.equal(code, 2, said)
  assert.match(said, /camera\.niceness: camera\.niceness is a whole number from 0 \(as the doorbell\) to 19/)
  assert.doesNotMatch(said, /camera starting/)
  assert.equal(existsSync(join(dir, 'data')), false, 'nothing written')
  assert.equal(readFileSync(relayFile, 'utf8').trim(), 'locked', 'the relay is driven locked before the config is checked')
})
