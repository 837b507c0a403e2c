/**
 * Issue 17's "device CPU and RSS with audio and 4 viewers (RSS stays <= 150 MB)": the `load`
 * bench's doorbell again, the same camera and config, with its microphone on (a 660 Hz test tone
 * that a second ffmpeg encodes to Opus; no speaker), and 1 and then 4 viewers (werift peers running
 * the viewer's own call logic, whose offers carry sound both ways as the app's do: `makePeer`).
 * Every viewer must receive the doorbell's Opus in the window, or the step throws.
 * Per step: device CPU, the camera's ffmpeg and the microphone's ffmpeg (each % of one core), the
 * device's peak RSS, and packet loss (video and sound). Run in the same `load` run as the
 * video-only steps, after them and with that doorbell stopped, so one doorbell runs at a time;
 * the log puts the two side by side.
 */
import { cpus, loadavg } from 'node:os'
import type { Hub } from '@doorbell/hub'
import { eventually } from '../src/harness'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'
import { deviceInvite } from '../src/trust'
import { pairViewerInProcess, round, sleep, type Figure } from './lib'
import { cpuPercent, rssMb, startDeviceProcess } from './proc'
import { CAMERA, endCalls, lossPercent, watchAll } from './load'

const DEVICE = 'front-door-audio'
/** The doorbell's microphone in this bench: the demo's test tone (docs/audio.md). */
const MICROPHONE = { source: { kind: 'test-tone', frequencyHz: 660 }, speaker: { kind: 'none' } } as const

/** What the video-only doorbell measured in the same run, by viewer count. */
export type VideoOnly = Map<number, { cpu: number, rss: number, load: number }>

const viewersName = (n: number): string => `${n} viewer${n > 1 ? 's' : ''}`

export async function audioLoad (hub: Hub, o: { counts: number[], windowMs: number, videoOnly: VideoOnly, log: (line: string) => void }): Promise<Figure[]> {
  const { counts, windowMs, log } = o
  const device = await startDeviceProcess({ deviceId: DEVICE, hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, DEVICE) }, iceAdditionalHostAddresses: ['127.0.0.1'], camera: CAMERA, audio: MICROPHONE, ringTimeoutSeconds: 120 }, 'load-audio-device')
  const figures: Figure[] = []
  const cpuByCount: Array<[number, number]> = []
  let viewers: NodeViewer[] = []
  try {
    await eventually('the microphone\'s encoder running', async () => (await device.microphonePid()) !== null, 30_000)
    for (const count of counts) {
      const paired = await Promise.all(Array.from({ length: count }, async (_, k) => await pairViewerInProcess(hub, { name: `Audio ${k}`, viewerId: `loadaudio${count}x${k}` })))
      viewers = paired.map((p) => nodeViewer(hub.mqttUrl, p))
      await eventually('viewers connected to the hub', () => viewers.every((v) => v.home.hub.connected))
      await watchAll(viewers, DEVICE, () => device.lines.map((l) => l.text))
      await sleep(1000)
      for (const v of viewers) { v.rtp.length = 0; v.audioRtp.length = 0 }
      const [camera, microphone] = [await device.ffmpegPid(), await device.microphonePid()]
      if (camera === null || microphone === null) throw new Error(`the doorbell's encoders: camera ${camera}, microphone ${microphone} (two ffmpeg expected)`)
      const load = loadavg()[0]!
      let rss = 0
      const sampler = setInterval(() => { void rssMb(device.pid).then((mb) => { rss = Math.max(rss, mb) }, () => {}) }, 250)
      const [cpu, cameraCpu, micCpu] = await cpuPercent([device.pid, camera, microphone], windowMs).finally(() => { clearInterval(sampler) })
      rss = Math.max(rss, await rssMb(device.pid))
      // Each viewer hears the doorbell: its Opus counted per viewer over the window.
      const heard = viewers.map((v) => v.audioRtp.length)
      if (heard.some((n) => n === 0)) throw new Error(`a viewer received none of the doorbell's Opus over ${windowMs / 1000} s: audio RTP per viewer ${heard.join(', ')}; video RTP ${viewers.map((v) => v.rtp.length).join(', ')}`)
      const seqs = (list: NodeViewer['rtp']): number[] => list.map((p) => p.header.sequenceNumber)
      const loss = lossPercent(viewers.flatMap((v) => [seqs(v.rtp), seqs(v.audioRtp)]))
      const soundLoss = lossPercent(viewers.map((v) => seqs(v.audioRtp)))
      const video = o.videoOnly.get(count)
      log(`load: audio on, ${viewersName(count)}: device CPU ${round(cpu!)} % (video only, same run: ${video ? `${round(video.cpu)} % at load ${round(video.load, 2)}` : 'n/a'}), camera ffmpeg ${round(cameraCpu!)} %, microphone ffmpeg ${round(micCpu!)} %, RSS ${Math.round(rss)} MB (video only: ${video ? `${Math.round(video.rss)} MB` : 'n/a'}), Opus packets/s per viewer ${heard.map((n) => round(n / (windowMs / 1000))).join(', ')}, loss ${round(loss, 2)} % (sound alone ${round(soundLoss, 2)} %), load ${round(load, 2)}`)
      const c = `loopback, ${device.built ? 'built device (npm run start:dist flags)' : 'device through tsx'} in its own process on ${cpus().length} shared cores, 1280x720@30 H.264 test pattern at 2.5 Mbit/s and the microphone on (660 Hz test tone, Opus 32 kbit/s, a second ffmpeg; no speaker), ${count} werift viewer${count > 1 ? 's' : ''} each with sound both ways in its offer and each receiving the Opus, ${windowMs / 1000} s window; measured after the video-only steps of the same run, that doorbell stopped; load average ${round(load, 1)} at the start`
      figures.push(
        { id: `load-audio-cpu-${count}`, name: `device CPU with audio, ${viewersName(count)}`, value: round(cpu!), unit: '%', conditions: c, group: 'load' },
        { id: `load-audio-rss-${count}`, name: `device RSS with audio, ${viewersName(count)}`, value: Math.round(rss), unit: 'MB', ...(count === 4 ? { target: { op: '<=' as const, value: 150 } } : {}), conditions: `${c}; peak over the window`, group: 'load' },
        { id: `load-audio-loss-${count}`, name: `packet loss with audio (video and sound), ${viewersName(count)}`, value: round(loss, 2), unit: '%', conditions: c, group: 'load' },
        { id: `load-audio-sound-loss-${count}`, name: `packet loss of the doorbell's sound (Opus), ${viewersName(count)}`, value: round(soundLoss, 2), unit: '%', conditions: c, group: 'load' },
        { id: `load-audio-ffmpeg-cpu-${count}`, name: `camera's ffmpeg CPU with audio, ${viewersName(count)}`, value: round(cameraCpu!), unit: '%', conditions: c, group: 'load' },
        { id: `load-audio-mic-ffmpeg-cpu-${count}`, name: `microphone's ffmpeg CPU (Opus encode), ${viewersName(count)}`, value: round(micCpu!), unit: '%', conditions: c, group: 'load' }
      )
      cpuByCount.push([count, cpu!])
      await endCalls(viewers, DEVICE)
      viewers = []
      await sleep(1000)
    }
  } finally {
    await Promise.all(viewers.map(async (v) => { await v.close() }))
    await device.stop()
  }
  if (cpuByCount.length >= 2) {
    // What one more viewer costs with sound: the slope between the fewest and the most viewers.
    const [[x0, y0], [x1, y1]] = [cpuByCount[0]!, cpuByCount.at(-1)!]
    const slope = (y1 - y0) / (x1 - x0)
    const [v0, v1] = [o.videoOnly.get(x0), o.videoOnly.get(x1)]
    const videoSlope = v0 && v1 ? (v1.cpu - v0.cpu) / (x1 - x0) : NaN
    log(`load: device CPU per viewer over ${x0} → ${x1} viewers: ${round(slope, 2)} % with audio, ${round(videoSlope, 2)} % video only (same run)`)
    figures.push({ id: 'load-audio-cpu-per-viewer', name: 'device CPU per viewer with audio (slope over the viewer counts)', value: round(slope, 2), unit: '%', conditions: `as load-audio-cpu-${x1}; (device CPU at ${x1} viewers − at ${x0}) / ${x1 - x0}, each a call session with sound`, group: 'load' })
  }
  return figures
}
