/**
 * Other WebRTC stacks against the doorbell, side by side in one run: the viewer app's call logic
 * on werift (as the integration tests run it) and on libdatachannel (node-datachannel: OpenSSL's
 * DTLS, usrsctp), each against a doorbell process of its own, started fresh for every round so
 * that the first call after a start is measured apart from the later ones (the first P-256 DTLS
 * key exchange in a process used to cost ~1 s against OpenSSL's retransmission timer).
 *   answer -> connected (the call machine's CONNECTED: DTLS done and the data channel open);
 *   open door -> the device's acknowledgement (the viewer's machine sees the door unlocked).
 */
import { mkdtemp } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from 'xstate'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/core'
import type { Home } from '@doorbell/viewer/lib'
import { eventually, VIEWER_DIST } from '../src/harness'
import { ndcViewer } from '../src/ndcViewer'
import { nodeViewer } from '../src/nodeViewer'
import { deviceInvite } from '../src/trust'
import { pairViewerInProcess, percentile, round, type Bench, type Figure } from './lib'
import { startDeviceProcess, type DeviceProcess } from './proc'

const CAMERA = { source: { kind: 'test-pattern', width: 640, height: 480, fps: 30 }, codec: 'h264', keyframeInterval: 30 } as const
type Stack = 'werift' | 'libdatachannel'
interface Samples { firstConnect: number[], laterConnect: number[], firstReply: number[], laterReply: number[] }

export const stacksBench: Bench = async ({ smoke, log }) => {
  const rounds = smoke ? 1 : 6
  const callsPerRound = smoke ? 2 : 4
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-stacks-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, viewerDir: VIEWER_DIST, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  const samples: Record<Stack, Samples> = {
    werift: { firstConnect: [], laterConnect: [], firstReply: [], laterReply: [] },
    libdatachannel: { firstConnect: [], laterConnect: [], firstReply: [], laterReply: [] }
  }
  try {
    for (let r = 0; r < rounds; r++) {
      // Alternate which stack goes first, so neither always meets the busier machine.
      for (const stack of (r % 2 === 0 ? ['libdatachannel', 'werift'] : ['werift', 'libdatachannel']) as Stack[]) {
        const deviceId = `stacks-${stack === 'werift' ? 'w' : 'n'}${r}`
        const start = async (): Promise<DeviceProcess> => await startDeviceProcess({ deviceId, hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, deviceId) }, mesh: { enabled: false }, iceAdditionalHostAddresses: ['127.0.0.1'], relockSeconds: 0.2, ringTimeoutSeconds: 60, camera: CAMERA }, `stacks-${stack}`)
        // Twelve doorbells pair from one address in a few minutes: the hub's pairing rate limit may
        // answer 429 (the doorbell does not retry its first pairing); wait it out once.
        const device = await start().catch(async (err: Error) => {
          if (!/ 429 /.test(err.message)) throw err
          await new Promise((resolve) => setTimeout(resolve, 5000))
          return await start()
        })
        const paired = await pairViewerInProcess(hub, { name: `${stack} viewer` })
        const viewer = stack === 'werift' ? nodeViewer(hub.mqttUrl, paired) : ndcViewer(hub.mqttUrl, paired)
        try {
          for (let c = 0; c < callsPerRound; c++) {
            const { connect, reply } = await oneCall(viewer.home, deviceId, () => { device.ring() })
            const s = samples[stack]
            ;(c === 0 ? s.firstConnect : s.laterConnect).push(connect)
            ;(c === 0 ? s.firstReply : s.laterReply).push(reply)
          }
        } catch (err) {
          throw new Error(`${(err as Error).message}\nthe doorbell's last lines:\n${device.lines.slice(-20).map((l) => l.text).join('\n')}`)
        } finally {
          await viewer.close()
          await device.stop()
        }
      }
      log(`stacks: round ${r + 1}/${rounds}`)
    }
  } finally {
    await hub.stop()
  }
  const conditions = `loopback, a fresh doorbell process per round (${rounds} rounds; ${callsPerRound} calls each, the first after the start), 640x480@30 H.264 test pattern, ${cpus().length} shared cores`
  const figures: Figure[] = []
  for (const stack of ['libdatachannel', 'werift'] as Stack[]) {
    const s = samples[stack]
    const f = (id: string, name: string, xs: number[]): Figure => ({ id: `stacks-${stack}-${id}`, name: `${stack} viewer: ${name}`, value: round(percentile(xs, 50)), unit: 'ms', conditions, group: 'stacks' })
    figures.push(
      f('connect-first-p50', 'answer → connected, first call after the doorbell starts, p50', s.firstConnect),
      f('connect-later-p50', 'answer → connected, later calls, p50', s.laterConnect),
      f('reply-first-p50', 'first open door → acknowledged, p50', s.firstReply),
      f('reply-later-p50', 'open door → acknowledged, later calls, p50', s.laterReply)
    )
  }
  return figures
}

/** One ring answered, connected, the door opened once and acknowledged, hung up. Bounded waits, each named when it fails. */
async function oneCall (home: Home, deviceId: string, ring: () => void): Promise<{ connect: number, reply: number }> {
  await eventually('the doorbell known to the viewer', () => home.doorbells.get(deviceId), 15_000)
  const call = home.doorbell(deviceId)
  const until = async (what: string, done: (s: ReturnType<typeof call.getSnapshot>) => boolean): Promise<void> => {
    await waitFor(call, done, { timeout: 20_000 }).catch((err: Error) => { throw new Error(`${deviceId}: waiting for ${what}: ${err.message} (state ${JSON.stringify(call.getSnapshot().value)}, ${call.getSnapshot().context.endReason ?? ''} ${call.getSnapshot().context.error ?? ''})`) })
  }
  // The doorbell's state must say the last call is over, or the new ring looks answered already.
  await until('the doorbell to be idle', (s) => s.context.device?.call.status === 'idle')
  ring()
  await until('the ring', (s) => s.matches('incoming'))
  const answered = performance.now()
  home.answer(deviceId)
  await until('the call to connect', (s) => s.matches({ active: 'connected' }))
  const connect = performance.now() - answered
  const asked = performance.now()
  home.unlock(deviceId)
  await until('the door to open', (s) => s.context.door?.status === 'unlocked' && s.context.pendingCommand === null)
  const reply = performance.now() - asked
  await until('the door to relock', (s) => s.context.door?.status === 'locked')
  home.hangUp(deviceId)
  await until('the call to end', (s) => s.matches('ended'))
  return { connect, reply }
}
