/**
 * Does the camera's encoder at a higher niceness stop delaying the doorbell's wake-ups? A bounded
 * experiment, not a figure: `node --import tsx tests/bench/diag/niceWake.ts [seconds] [encoders]` (inside
 * scripts/isolated.sh, under the bench lock).
 *
 * The doorbell's encoder (ffmpeg with the `call` bench's camera: 1280x720@30 H.264) sends its RTP to
 * an echo in its own process (the doorbell's stand-in: it reads every packet, as the doorbell does);
 * this process (the page's stand-in) sends the echo a small UDP datagram every 20-40 ms and times
 * its return: both processes must wake and get a CPU, as in an opening's transport hop. Blocks of
 * `BLOCK_MS` alternate the encoder's threads between niceness 10 (camera.niceness as shipped) and 0
 * (before); each block also reports the encoder's CPU, so a starved encoder would show.
 * `encoders` > 1 runs that many alike, all switched together: a stand-in for a machine whose
 * encoder takes most of its CPU (a Pi encoding a USB webcam in software), not a measure of one.
 */
import { fork } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { CAMERA_NICENESS } from '@doorbell/core'
import { ffmpegArgs } from '../../../device/src/camera/ffmpegArgs'
import { findFfmpeg } from '../../../device/src/camera/camera'
import { spawnChild } from '../../../device/src/children'
import { CALL_CAMERA } from '../call'
import { percentile, round, spread } from '../lib'
import { cpuTicks, setThreadNiceness } from '../proc'

const BLOCK_MS = 5000

/** The doorbell's stand-in: takes the camera's RTP, answers each ping at once. */
async function echo (): Promise<void> {
  const rtp = createSocket('udp4')
  let packets = 0
  rtp.on('message', () => { packets++ })
  await new Promise<void>((resolve) => rtp.bind(0, '127.0.0.1', resolve))
  const ping = createSocket('udp4')
  ping.on('message', (data, from) => { ping.send(data, from.port, from.address) })
  await new Promise<void>((resolve) => ping.bind(0, '127.0.0.1', resolve))
  process.on('message', (m: string) => { if (m === 'packets') process.send!({ packets }) })
  process.send!({ rtpPort: rtp.address().port, pingPort: ping.address().port })
}

async function main (seconds: number, count: number): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['echo'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const ports = await new Promise<{ rtpPort: number, pingPort: number }>((resolve) => child.once('message', resolve as (m: unknown) => void))
  const encoders = Array.from({ length: count }, () => spawnChild(findFfmpeg(), ffmpegArgs({ ...CALL_CAMERA, rtpPort: ports.rtpPort }), { stdio: ['pipe', 'ignore', 'ignore'], deathSignal: 'KILL' }))
  const pids = encoders.map((e) => e.pid!)
  const ticksNow = async (): Promise<number> => (await Promise.all(pids.map(cpuTicks))).reduce((a, b) => a + b, 0)
  const packetsNow = async (): Promise<number> => await new Promise((resolve) => {
    child.once('message', (m) => { resolve((m as { packets: number }).packets) })
    child.send('packets')
  })
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const pending = new Map<number, number>()
  let rtts: number[] = []
  socket.on('message', (data) => {
    const sent = pending.get(data.readUInt32BE(0))
    if (sent !== undefined) rtts.push(performance.now() - sent)
  })
  const modes = [CAMERA_NICENESS, 0]
  const results = new Map(modes.map((n) => [n, { rtts: [] as number[], blockP99: [] as number[], cpu: [] as number[], fps: [] as number[] }]))
  await new Promise((resolve) => setTimeout(resolve, 2000)) // the encoder up
  const loads = [loadavg()[0]!]
  let seq = 0
  const blocks = Math.max(2, Math.round(seconds * 1000 / BLOCK_MS))
  for (let b = 0; b < blocks; b++) {
    // ABBA order, so neither mode always follows the other.
    const niceness = modes[[0, 1, 1, 0][b % 4]!]!
    for (const pid of pids) await setThreadNiceness(pid, niceness)
    await new Promise((resolve) => setTimeout(resolve, 200))
    rtts = []
    const ticks = await ticksNow()
    const packets = await packetsNow()
    const from = performance.now()
    while (performance.now() - from < BLOCK_MS) {
      const buf = Buffer.alloc(300)
      buf.writeUInt32BE(++seq, 0)
      pending.set(seq, performance.now())
      socket.send(buf, ports.pingPort, '127.0.0.1')
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 20))
    }
    const took = (performance.now() - from) / 1000
    const r = results.get(niceness)!
    r.rtts.push(...rtts)
    r.blockP99.push(percentile(rtts, 99))
    r.cpu.push((await ticksNow() - ticks) / took)
    r.fps.push((await packetsNow() - packets) / took)
    loads.push(loadavg()[0]!)
  }
  for (const e of encoders) e.kill('SIGKILL')
  child.kill('SIGKILL')
  socket.close()
  const median = (xs: number[]): number => percentile(xs, 50)
  console.log(`niceWake: ${count} encoder(s), ${blocks} blocks of ${BLOCK_MS / 1000} s, load ${round(Math.min(...loads))}-${round(Math.max(...loads))}; UDP round trip to a process that reads the encoder's RTP (ms)`)
  for (const [n, r] of results) {
    console.log(`  encoder niceness ${String(n).padStart(2)}: round trip p50 / p95 / p99 ${spread(r.rtts, 2)} (n=${r.rtts.length}), max ${round(Math.max(...r.rtts), 1)}; per-block p99 median ${round(median(r.blockP99), 2)}; encoders' CPU ${round(median(r.cpu))} % of a core; RTP packets/s (all) ${round(median(r.fps))}`)
  }
}

if (process.argv[2] === 'echo') await echo()
else await main(Number(process.argv[2] ?? 120), Number(process.argv[3] ?? 1))
