/**
 * Where a data-channel round trip's milliseconds go (issue 21: open door → "Door open"). A bounded
 * experiment, not a figure: `node --import tsx tests/bench/diag/dcRoundTrip.ts [rounds per block]`.
 *
 * An echo peer (werift, made as the doorbell makes its peers, in its own process, with the
 * doorbell's camera: 1280x720@30 H.264) answers a viewer's offer and sends each message straight
 * back. The viewer is (a) werift in this process, (b) the project's headless Chromium. Blocks of
 * rounds alternate the echo's video off and on, so both are measured side by side in one run.
 * Each round: a ~300-byte message, paced like openings (idle between them).
 *
 * On each werift end the UDP socket is watched (a listener put in front of werift's, and a wrapper
 * round `send`), so a werift round trip splits into: the viewer's stack on the way out (send call →
 * datagram handed to the kernel), the wire and the echo's wake-up (handed → the echo's socket
 * read), the echo's stack in (read → `message`), out (its `send` → handed), back, the viewer's stack
 * in. Both Node processes stamp `performance.timeOrigin + performance.now()` (one system clock).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { loadavg } from 'node:os'
import type { Socket } from 'node:dgram'
import { fileURLToPath } from 'node:url'
import { MediaStreamTrack, RTCPeerConnection } from 'werift'
import { Camera, createPeerConnection, memoryLogger, mendDataChannel, withoutDefaultStun } from '@doorbell/device'
import { asDtlsServer } from '@doorbell/core'
import { CALL_CAMERA } from '../call'
import { round, spread } from '../lib'

const now = (): number => performance.timeOrigin + performance.now()

/** Each UDP socket of a werift peer: the last DTLS application-data datagram read, the first one sent after `mark`. */
function watchSockets (pc: RTCPeerConnection): { lastRead: () => number, firstSentAfter: (at: number) => number } {
  let read = NaN
  const sent: number[] = []
  for (const transport of pc.iceTransports) {
    for (const protocol of (transport.connection as unknown as { protocols: Array<{ transport?: { socket?: Socket } }> }).protocols) {
      const socket = protocol.transport?.socket
      if (socket === undefined) continue
      socket.prependListener('message', (data: Buffer) => { if (data[0] === 23) read = now() })
      const send = socket.send.bind(socket) as (...args: unknown[]) => void
      ;(socket as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]) => {
        const data = args[0] as Buffer
        if (data[0] === 23) { sent.push(now()); if (sent.length > 64) sent.shift() }
        send(...args)
      }
    }
  }
  return { lastRead: () => read, firstSentAfter: (at) => sent.find((t) => t >= at) ?? NaN }
}

async function gathered (pc: { iceGatheringState: string, iceGatheringStateChange: { watch: (f: (s: string) => boolean) => Promise<unknown> } }): Promise<void> {
  if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete')
}

/** The echo: the doorbell's peer set-up and camera; each message goes straight back, its times after it. */
async function echo (): Promise<void> {
  const camera = new Camera({ ...CALL_CAMERA, source: { ...CALL_CAMERA.source } }, memoryLogger([], 'camera'))
  await camera.start()
  let videoOn = false
  const peers: Array<{ pc: RTCPeerConnection, track: MediaStreamTrack }> = []
  let stopVideo: Array<() => void> = []
  const setVideo = (on: boolean): void => {
    videoOn = on
    for (const s of stopVideo) s()
    stopVideo = on ? peers.map(({ track }) => camera.subscribe((p) => { track.writeRtp(p) }, { fromKeyframe: true })) : []
  }
  process.on('message', (m: { type: string, sdp?: string, on?: boolean }) => {
    if (m.type === 'video') { setVideo(m.on === true); process.send!({ type: 'video', on: videoOn }); return }
    if (m.type === 'stop') { void camera.stop(); process.exit(0) }
    if (m.type !== 'offer') return
    void (async () => {
      const pc = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
      const track = new MediaStreamTrack({ kind: 'video' })
      pc.addTransceiver(track, { direction: 'sendonly' })
      peers.push({ pc, track })
      let watch: ReturnType<typeof watchSockets> | null = null
      pc.onDataChannel.subscribe((dc) => {
        dc.onMessage.subscribe((data) => {
          const at = now()
          const read = watch?.lastRead() ?? NaN
          const text = data.toString()
          const seq = (JSON.parse(text) as { seq: number }).seq
          const sendAt = now()
          dc.send(JSON.stringify({ seq, reply: true }))
          // The echo's own times, once the reply has gone: read → message, send → handed to the kernel.
          setImmediate(() => { dc.send(JSON.stringify({ seq, times: { read, message: at, send: sendAt, handed: watch?.firstSentAfter(sendAt) ?? NaN } })) })
        })
      })
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp! })
      mendDataChannel(pc)
      withoutDefaultStun(pc, [])
      await pc.setLocalDescription(asDtlsServer(await pc.createAnswer()))
      await gathered(pc as never)
      watch = watchSockets(pc)
      process.send!({ type: 'answer', sdp: pc.localDescription!.sdp })
    })()
  })
  process.send!({ type: 'ready' })
}

interface Sample { video: boolean, rtt: number, split?: Record<string, number> }

const ask = <T>(child: ChildProcess, message: object, type: string): Promise<T> => new Promise((resolve) => {
  const on = (m: { type: string }): void => { if (m.type === type) { child.off('message', on); resolve(m as T) } }
  child.on('message', on)
  child.send(message)
})

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** Between rounds, idle as between openings (but shorter): 100-200 ms. */
const gap = (): Promise<void> => pause(100 + Math.random() * 100)
const PAD = 'x'.repeat(260)

/** (a) werift viewer in this process. */
async function weriftRounds (child: ChildProcess, blocks: boolean[], perBlock: number): Promise<Sample[]> {
  const pc = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
  pc.addTransceiver('video', { direction: 'recvonly' })
  const dc = pc.createDataChannel('commands')
  await pc.setLocalDescription(await pc.createOffer())
  withoutDefaultStun(pc, [])
  await gathered(pc as never)
  const { sdp } = await ask<{ sdp: string }>(child, { type: 'offer', sdp: pc.localDescription!.sdp }, 'answer')
  await pc.setRemoteDescription({ type: 'answer', sdp })
  if (dc.readyState !== 'open') await dc.stateChanged.watch((s) => s === 'open')
  const watch = watchSockets(pc)
  let waiting: ((m: { reply?: boolean, times?: Record<string, number>, at: number, read: number }) => void) | null = null
  dc.onMessage.subscribe((data) => {
    const at = now()
    const m = JSON.parse(data.toString()) as { reply?: boolean, times?: Record<string, number> }
    waiting?.({ ...m, at, read: watch.lastRead() })
  })
  const next = (): Promise<{ reply?: boolean, times?: Record<string, number>, at: number, read: number }> => new Promise((resolve) => { waiting = resolve })
  const samples: Sample[] = []
  for (let seq = 0, b = 0; b < blocks.length; b++) {
    await ask(child, { type: 'video', on: blocks[b] }, 'video')
    await pause(500)
    for (let i = 0; i < perBlock; i++, seq++) {
      await gap()
      const reply = next()
      const sendAt = now()
      dc.send(JSON.stringify({ seq, pad: PAD }))
      const r = await reply
      const t = (await next()).times!
      const handed = watch.firstSentAfter(sendAt)
      samples.push({
        video: blocks[b]!,
        rtt: r.at - sendAt,
        split: { viewerOut: handed - sendAt, toEcho: t.read! - handed, echoIn: t.message! - t.read!, echoOut: t.handed! - t.send!, back: r.read - t.handed!, viewerIn: r.at - r.read }
      })
    }
  }
  await pc.close()
  return samples
}

/** (b) the project's Chromium, a plain page, the video shown in a <video>. */
async function chromiumRounds (child: ChildProcess, blocks: boolean[], perBlock: number): Promise<Sample[]> {
  const { chromium } = await import('playwright-core')
  const { CHROMIUM, CHROMIUM_ARGS, pageAnswer, pageOffer } = await import('../../src/browser')
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  try {
    const page = await browser.newPage()
    const { sdp } = await ask<{ sdp: string }>(child, { type: 'offer', sdp: await pageOffer(page, { showVideo: true }) }, 'answer')
    await pageAnswer(page, sdp)
    const samples: Sample[] = []
    for (let b = 0; b < blocks.length; b++) {
      await ask(child, { type: 'video', on: blocks[b] }, 'video')
      await pause(500)
      const got = await page.evaluate(`(async () => {
        const rounds = []
        const at = () => performance.timeOrigin + performance.now()
        for (let i = 0; i < ${perBlock}; i++) {
          await new Promise((r) => setTimeout(r, 100 + Math.random() * 100))
          let reply
          const times = new Promise((r) => { window.dc.onmessage = (e) => { const m = JSON.parse(e.data); if (m.reply) reply = at(); else r(m.times) } })
          const sent = at()
          window.dc.send(JSON.stringify({ seq: i, pad: ${JSON.stringify(PAD)} }))
          const t = await times
          rounds.push({ sent, reply, ...t })
        }
        const frames = document.getElementById('v').getVideoPlaybackQuality?.().totalVideoFrames ?? 0
        return { rounds, frames }
      })()`) as { rounds: Array<{ sent: number, reply: number, read: number, message: number, send: number, handed: number }>, frames: number }
      for (const r of got.rounds) samples.push({ video: blocks[b]!, rtt: r.reply - r.sent, split: { pageToEcho: r.read - r.sent, echoIn: r.message - r.read, echoOut: r.handed - r.send, echoToPage: r.reply - r.handed } })
      if (blocks[b]) process.stderr.write(`  chromium block ${b}: ${got.frames} frames decoded so far\n`)
    }
    // Chromium's clock may be off the system's (FIELD-NOTES): take the offset from the fastest round,
    // as NTP does (its two one-way legs taken as equal), and move each page time by it.
    const fastest = [...samples].sort((a, b) => a.rtt - b.rtt)[0]!.split!
    const offset = (fastest.pageToEcho! - fastest.echoToPage!) / 2
    for (const s of samples) { s.split!.pageToEcho! -= offset; s.split!.echoToPage! += offset }
    process.stderr.write(`  chromium clock offset, from the fastest round: ${round(offset, 2)} ms\n`)
    return samples
  } finally {
    await browser.close()
  }
}

function report (name: string, samples: Sample[]): string {
  const stats = (xs: number[]): string => spread(xs, 2)
  const lines: string[] = []
  for (const video of [false, true]) {
    const s = samples.filter((x) => x.video === video)
    lines.push(`${name}, video ${video ? 'on ' : 'off'} (${s.length} rounds), round trip p50 / p95 / p99 ms: ${stats(s.map((x) => x.rtt))}`)
    if (s[0]?.split) for (const k of Object.keys(s[0].split)) lines.push(`    ${k.padEnd(10)} ${stats(s.map((x) => x.split![k]!).filter(Number.isFinite))}`)
    for (const x of [...s].sort((a, b) => b.rtt - a.rtt).slice(0, 3)) lines.push(`    slow: ${round(x.rtt, 2)} (${Object.entries(x.split ?? {}).map(([k, v]) => `${k} ${round(v, 2)}`).join(', ')})`)
  }
  return lines.join('\n')
}

async function main (): Promise<void> {
  const perBlock = Number(process.argv[2] ?? 20)
  const blocks = [false, true, false, true, true, false]
  const child = fork(fileURLToPath(import.meta.url), ['echo'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await new Promise<void>((resolve) => child.once('message', () => { resolve() }))
  try {
    const load = [loadavg()[0]!]
    const werift = await weriftRounds(child, blocks, perBlock)
    load.push(loadavg()[0]!)
    const browser = process.env.DC_ROUND_TRIP_NO_CHROMIUM === '1' ? [] : await chromiumRounds(child, blocks, perBlock)
    load.push(loadavg()[0]!)
    console.log(`load (1-minute) ${load.map((l) => round(l, 2)).join(' → ')}`)
    console.log(report('werift → werift echo', werift))
    if (browser.length > 0) console.log(report('Chromium → werift echo', browser))
  } finally {
    child.send({ type: 'stop' })
  }
}

if (process.argv[2] === 'echo') await echo()
else await main()
