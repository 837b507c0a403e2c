/**
 * Issue 21's "device RSS with 4 viewers ≤ 150 MB and CPU per viewer, with preview sessions
 * counted": the `load` bench's doorbell rung with 4 screens that preview (werift peers running
 * the viewer's own Home with `preview: true`, in this process). Two windows, one run:
 *   ringing: 4 live previews (video only, no microphone), against the same doorbell idle;
 *   answered: one screen answers on its preview (audio opens on it) and the 3 others, told
 *   "Answered on …", join the call: 4 viewers in the call, made from previews.
 * Per window: device CPU (% of one core), its peak RSS, the viewers' packet loss.
 */
import type { Hub } from '@doorbell/hub'
import { eventually } from '../src/harness'
import { nodeViewer, type NodeViewer } from '../src/nodeViewer'
import { pairViewerInProcess, round, sleep, type Figure } from './lib'
import { cpuPercent, rssMb, type DeviceProcess } from './proc'
import { endCalls, lossPercent } from './load'

const DEVICE = 'front-door'

/** Device CPU and peak RSS over `ms`, and the viewers' loss in that time. */
async function window (device: DeviceProcess, viewers: NodeViewer[], ms: number): Promise<{ cpu: number, rss: number, loss: number }> {
  for (const v of viewers) v.rtp.length = 0
  let rss = 0
  const sampler = setInterval(() => { void rssMb(device.pid).then((mb) => { rss = Math.max(rss, mb) }, () => {}) }, 250)
  const [cpu] = await cpuPercent([device.pid], ms).finally(() => { clearInterval(sampler) })
  rss = Math.max(rss, await rssMb(device.pid))
  return { cpu: cpu!, rss, loss: lossPercent(viewers.map((v) => v.rtp.map((p) => p.header.sequenceNumber))) }
}

export async function previewLoad (hub: Hub, device: DeviceProcess, o: { windowMs: number, count: number, conditions: string, log: (line: string) => void }): Promise<Figure[]> {
  const { count, windowMs, log } = o
  const paired = await Promise.all(Array.from({ length: count }, async (_, k) => await pairViewerInProcess(hub, { name: `Preview ${k}`, viewerId: `preview${count}x${k}` })))
  const viewers = paired.map((p) => nodeViewer(hub.mqttUrl, p, 'h264', { preview: true }))
  try {
    await eventually('the preview screens on the hub', () => viewers.every((v) => v.home.hub.connected))
    await sleep(1000)
    const idle = await window(device, [], windowMs)
    device.ring()
    const live = (v: NodeViewer): boolean => v.home.doorbells.get(DEVICE)?.getSnapshot().matches({ incoming: { preview: 'live' } }) === true
    await eventually(`all ${count} screens live, with video`, () => viewers.every((v) => live(v) && v.rtp.length > 30), 30_000).catch((err: Error) => {
      const states = viewers.map((v) => JSON.stringify(v.home.doorbells.get(DEVICE)?.getSnapshot().value))
      throw new Error(`${err.message}; RTP packets per preview: ${viewers.map((v) => v.rtp.length).join(', ')}; states: ${states.join(', ')}; device said:\n${device.lines.slice(-15).map((l) => l.text).join('\n')}`)
    })
    if (viewers.some((v) => v.audioRtp.length > 0)) throw new Error('a preview received the doorbell\'s microphone before Answer')
    await sleep(1000)
    const ringing = await window(device, viewers, windowMs)
    // One answers on its preview; the others are told, and join the call.
    const [answerer, ...others] = viewers as [NodeViewer, ...NodeViewer[]]
    answerer.home.answer(DEVICE)
    const card = (v: NodeViewer) => v.home.doorbells.get(DEVICE)!.getSnapshot()
    await eventually('the others\' previews ended ("Answered on …")', () => others.every((v) => card(v).matches({ incoming: 'snapshot' }) || card(v).matches('ended')), 15_000)
    // Join: from the banner (still ringing on this screen) or from the ended card.
    for (const v of others) { if (card(v).matches('ended')) v.home.watch(DEVICE); else v.home.answer(DEVICE) }
    await eventually(`all ${count} in the call`, () => viewers.every((v) => card(v).matches({ active: 'connected' })), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; states: ${viewers.map((v) => JSON.stringify(card(v).value)).join(', ')}; device said:\n${device.lines.slice(-15).map((l) => l.text).join('\n')}`)
    })
    await sleep(1000)
    const call = await window(device, viewers, windowMs)
    const perPreview = (ringing.cpu - idle.cpu) / count
    log(`load: ${count} previews while ringing: device CPU ${round(ringing.cpu)} % (idle ${round(idle.cpu)} %, ${round(perPreview, 2)} % per preview), RSS ${Math.round(ringing.rss)} MB, loss ${round(ringing.loss, 2)} %`)
    log(`load: answered on a preview + ${count - 1} joined: device CPU ${round(call.cpu)} % (${round((call.cpu - idle.cpu) / count, 2)} % per viewer), RSS ${Math.round(call.rss)} MB, loss ${round(call.loss, 2)} %`)
    const c = (what: string): string => `${o.conditions}; ${count} screens with live preview (werift, the viewer's Home): ${what}`
    const rssTarget = count === 4 ? { target: { op: '<=' as const, value: 150 } } : {}
    return [
      { id: 'load-preview-cpu-idle', name: 'device CPU, camera on, no viewer (the previews\' baseline)', value: round(idle.cpu), unit: '%', conditions: c('before the ring'), group: 'load' },
      { id: 'load-preview-cpu', name: `device CPU, ${count} live previews while ringing`, value: round(ringing.cpu), unit: '%', conditions: c('ringing, every screen previewing'), group: 'load' },
      { id: 'load-preview-cpu-per-preview', name: 'device CPU per preview session (over idle)', value: round(perPreview, 2), unit: '%', conditions: c('ringing, every screen previewing'), group: 'load' },
      { id: 'load-preview-rss', name: `device RSS, ${count} live previews while ringing`, value: Math.round(ringing.rss), unit: 'MB', ...rssTarget, conditions: c('ringing, every screen previewing; peak over the window'), group: 'load' },
      { id: 'load-preview-loss', name: `packet loss, ${count} live previews`, value: round(ringing.loss, 2), unit: '%', conditions: c('ringing, every screen previewing'), group: 'load' },
      { id: 'load-preview-call-cpu', name: `device CPU, answered on a preview + ${count - 1} joined`, value: round(call.cpu), unit: '%', conditions: c('one answered on its preview, the others joined'), group: 'load' },
      { id: 'load-preview-call-rss', name: `device RSS, answered on a preview + ${count - 1} joined`, value: Math.round(call.rss), unit: 'MB', ...rssTarget, conditions: c('one answered on its preview, the others joined; peak over the window'), group: 'load' }
    ]
  } finally {
    await endCalls(viewers, DEVICE)
  }
}
