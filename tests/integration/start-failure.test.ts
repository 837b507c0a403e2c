import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { startHub } from '@doorbell/hub'
import { StartError } from '@doorbell/core'
import { memoryLogger, pairDevice, savePairing, startDoorbell, SimulatedButton, SimulatedLock } from '@doorbell/device'
import { VIEWER_DIST, eventually, testMesh } from '../src/harness'
import { deviceInvite } from '../src/trust'
import { childrenNamed } from '../src/doorbellProcess'

/**
 * A module that fails to start leaves nothing running. The doorbell starts its modules in order
 * (lock, pairing, audit outbox, camera, audio, answering side, mesh, home-network link, cloud, calls,
 * button); here the mesh's TCP port is taken, so the mesh fails after the lock drove the relay
 * and the camera and the microphone spawned ffmpeg. The start must reject naming the mesh, having stopped the
 * audio and the camera (their ffmpeg gone), the lock (the relay's driver stopped, locked) and every module
 * before them in reverse order, with no socket left open by any of them (the camera's RTP port
 * among them), and none of the modules after the mesh started.
 */

/** The relay, recording that the doorbell stopped it (a stopped driver leaves the door locked). */
class RecordingLock extends SimulatedLock {
  stops = 0
  override async stop (): Promise<void> {
    this.stops++
    await super.stop()
  }
}

/** The pids of this process's ffmpeg children (the camera's and the microphone's encoders). */
const ffmpegChildren = (): number[] => childrenNamed(process.pid, 'ffmpeg')

/** The sockets this process holds open (their inodes). */
function openSockets (): Set<string> {
  const sockets = new Set<string>()
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`)
      if (target.startsWith('socket:')) sockets.add(target)
    } catch { /* closed meanwhile */ }
  }
  return sockets
}

/** A socket's protocol and local port, from /proc/net (null: not an IP socket, or gone). */
function socketInfo (socket: string): { proto: string, port: number } | null {
  const inode = /\[(\d+)\]/.exec(socket)?.[1]
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    try {
      const [header, ...rows] = readFileSync(`/proc/net/${proto}`, 'utf8').trim().split('\n')
      // The header has one name fewer than a row has cells before `inode` ("tx_queue rx_queue" is one cell, "tr tm->when" another).
      const column = header!.trim().split(/\s+/).indexOf('inode') - 2
      for (const row of rows) {
        const cells = row.trim().split(/\s+/)
        if (cells[column] === inode) return { proto, port: parseInt(cells[1]!.split(':')[1]!, 16) }
      }
    } catch { /* no such table */ }
  }
  return null
}
const describeSocket = (socket: string): string => {
  const info = socketInfo(socket)
  return info ? `${socket} ${info.proto} port ${info.port}` : socket
}

const listen = async (server: Server, port: number, host: string): Promise<void> => {
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve) })
}
const close = async (server: Server): Promise<void> => { await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) }

/** A port free now (nothing bound to it on 0.0.0.0). */
async function freePort (): Promise<number> {
  const probe = createServer()
  await listen(probe, 0, '0.0.0.0')
  const port = (probe.address() as { port: number }).port
  await close(probe)
  return port
}

test('a doorbell whose mesh cannot start stops the camera, the lock and every module before it, and leaves no port held', async (t) => {
  const lines: string[] = []
  const hubMesh = testMesh('start-failure-hub')
  const deviceMesh = testMesh('start-failure-device')
  t.after(() => { hubMesh.remove(); deviceMesh.remove() })

  // Paired first, so the start below opens nothing but its own modules' sockets.
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', viewerDir: VIEWER_DIST, dataDir: hubMesh.dataDir, mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  const mqttUrl = hub.mqttUrl
  savePairing(deviceMesh.dataDir, await pairDevice({ url: await deviceInvite(hub, 'front-door'), deviceId: 'front-door', deviceName: 'Front door', log: memoryLogger(lines, 'pairing') }))
  await hub.stop()

  // The mesh's TCP port, taken by someone else.
  const blocker = createServer()
  await listen(blocker, 0, '0.0.0.0')
  t.after(async () => { await close(blocker) })
  const tcpPort = (blocker.address() as { port: number }).port
  const directPort = await freePort()

  const before = openSockets()
  assert.deepEqual(ffmpegChildren(), [], 'no encoder runs before the start')
  const lock = new RecordingLock((line) => { lines.push(line) })
  const button = new SimulatedButton()
  const log: string[] = []
  let encoderSeen = false
  const watch = setInterval(() => { if (ffmpegChildren().length > 0) encoderSeen = true }, 5)
  t.after(() => { clearInterval(watch) })

  await assert.rejects(startDoorbell({
    hubUrl: mqttUrl,
    dataDir: deviceMesh.dataDir,
    mesh: { host: '0.0.0.0', tcpPort, directPort },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    relockSeconds: 1
  }, { log: memoryLogger(log, 'device'), drivers: { button, lock } }), (err: unknown) => {
    assert.ok(err instanceof StartError, `a StartError, not ${String(err)}`)
    assert.equal(err.name, 'StartError')
    assert.equal(err.module, 'mesh')
    return true
  })
  clearInterval(watch)

  // The modules before the mesh started, then stopped in reverse order; none after it started.
  const modules = (what: 'started' | 'stopped'): string[] =>
    log.flatMap((l) => { const m = new RegExp(`\\[device/modules\\] ${what} module=(.+)$`).exec(l); return m ? [m[1]!] : [] })
  assert.deepEqual(modules('started'), ['lock', 'pairing', 'audit outbox', 'camera', 'audio', 'quick replies', 'answering side', 'snapshots'], log.join('\n'))
  assert.deepEqual(modules('stopped'), ['snapshots', 'answering side', 'quick replies', 'audio', 'camera', 'audit outbox', 'pairing', 'lock'], log.join('\n'))

  // The camera had started its encoder, and it is gone.
  assert.ok(encoderSeen, 'the camera had spawned ffmpeg before the mesh failed')
  await eventually('the camera\'s and the microphone\'s ffmpeg to be gone', () => ffmpegChildren().length === 0, 5000)
  // The lock drove the relay locked first, and its driver was stopped (fail-secure).
  assert.ok(lines.includes('DOOR LOCKED'), 'the relay was driven locked at the start')
  assert.equal(lock.stops, 1, 'the relay\'s driver was stopped')
  assert.equal(lock.open, false)
  assert.throws(() => { button.press() }, /not started/, 'the button never started')

  // Nothing the start opened is still open: no socket of its own, the direct port free.
  // Every other module's: the mesh's own direct port is left to libp2p, whose UDP mux (native, in
  // node-datachannel) keeps its socket after it is stopped, on any stop (see device/src/paths/direct/README.md).
  const leaked = (): string[] => [...openSockets()].filter((s) => !before.has(s) && socketInfo(s)?.port !== directPort)
  await eventually('the sockets the start opened to be closed', () => leaked().length === 0, 8000)
    .catch((err: Error) => { assert.fail(`${err.message}: ${leaked().map(describeSocket).join(', ')}`) })
})

test('a doorbell whose microphone is not there does not start: the error names the device and how to list devices; nothing is left running', async (t) => {
  const lines: string[] = []
  const hubMesh = testMesh('start-failure-audio-hub')
  const deviceMesh = testMesh('start-failure-audio-device')
  t.after(() => { hubMesh.remove(); deviceMesh.remove() })
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', viewerDir: VIEWER_DIST, dataDir: hubMesh.dataDir, mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  t.after(() => hub.stop())
  savePairing(deviceMesh.dataDir, await pairDevice({ url: await deviceInvite(hub, 'front-door'), deviceId: 'front-door', deviceName: 'Front door', log: memoryLogger(lines, 'pairing') }))

  const lock = new RecordingLock((line) => { lines.push(line) })
  const log: string[] = []
  // No machine that runs this has a sound card 9.
  await assert.rejects(startDoorbell({
    hubUrl: hub.mqttUrl,
    dataDir: deviceMesh.dataDir,
    mesh: { enabled: false },
    audio: { source: { kind: 'alsa', device: 'plughw:9,0' } }
  }, { log: memoryLogger(log, 'device'), drivers: { button: new SimulatedButton(), lock } }), (err: unknown) => {
    assert.ok(err instanceof StartError, `a StartError, not ${String(err)}`)
    assert.equal(err.module, 'audio')
    assert.equal((err.cause as Error).name, 'AudioDeviceError')
    assert.match(err.message, /ALSA capture device "plughw:9,0"/)
    assert.match(err.message, /arecord -l/)
    return true
  })
  const stopped = log.flatMap((l) => { const m = /\[device\/modules\] stopped module=(.+)$/.exec(l); return m ? [m[1]!] : [] })
  assert.deepEqual(stopped, ['camera', 'audit outbox', 'pairing', 'lock'], log.join('\n'))
  assert.equal(lock.stops, 1)
  await eventually('no ffmpeg left', () => ffmpegChildren().length === 0, 5000)
})
