/**
 * Issue 19's clip, what it costs the doorbell: the device's CPU (its process and every process it
 * started: the camera's encoder, the snapshot decoder, and the clip's short remux, counted once it
 * has exited) over the same window after each press, with the owner's clip setting on and off,
 * alternating ring by ring in the same run so both see the same load.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { exportPublicKey, generateSigningKey, memoryLogger, newId } from '@doorbell/core'
import { deviceInvite } from '../src/trust'
import { eventually } from '../src/harness'
import { startDeviceProcess } from './proc'
import { sleep } from './lib'

/** utime, stime, and the children's it has waited for (cutime, cstime), in clock ticks. */
async function ticks (pid: number, withChildren: boolean): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0)
}

/** The device and the processes it runs now (ffmpeg), their CPU ticks together. */
async function treeTicks (pid: number): Promise<number> {
  let total = await ticks(pid, true)
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) total += await ticks(Number(entry), true)
    } catch {} // gone meanwhile: its ticks are in the device's cutime once it was waited for
  }
  return total
}

export interface ClipOverhead { on: number[], off: number[], clipBytes: number[], seconds: number, windowMs: number }

export async function clipOverhead (rings: number, seconds: number, log: (line: string) => void): Promise<ClipOverhead> {
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-clip-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  // The ring ends (missed) well before the window does; each press is a new ring.
  const device = await startDeviceProcess({ hubUrl: hub.mqttUrl, pairing: { url: await deviceInvite(hub, 'front-door') }, ringTimeoutSeconds: 3, camera: { clipSeconds: seconds } }, 'history-clip-device')
  // The press, the clip's seconds, its remux and its parts to the hub.
  const windowMs = (seconds + 5) * 1000
  const out: ClipOverhead = { on: [], off: [], clipBytes: [], seconds, windowMs }
  try {
    const keys = await generateSigningKey(false)
    const owner = await hub.trust.pair({ kind: 'viewer', code: hub.trust.setupCode()!.code, id: newId('v'), name: 'Bench', key: await exportPublicKey(keys.publicKey) })
    const setClip = async (on: boolean): Promise<void> => {
      const said = device.lines.length
      const res = await fetch(new URL('api/devices/front-door/clip', hub.url), { method: 'PUT', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ clip: on }) })
      if (res.status !== 200) throw new Error(`PUT clip: ${res.status} ${await res.text()}`)
      await eventually('the doorbell took the clip setting', () => device.lines.slice(said).some((l) => l.text.includes(`turned ${on ? 'on' : 'off'} the ring clip`)), 15_000)
    }
    // The camera's first group of pictures, and the snapshot decoder, before the first window.
    await sleep(3000)
    device.ring()
    await sleep(windowMs)
    for (let i = 0; i < rings * 2; i++) {
      const on = i % 2 === 0
      await setClip(on)
      const said = device.lines.length
      const before = await treeTicks(device.pid)
      const t0 = performance.now()
      device.ring()
      await sleep(windowMs)
      const cpu = (await treeTicks(device.pid) - before) / ((performance.now() - t0) / 1000)
      ;(on ? out.on : out.off).push(cpu)
      const recorded = device.lines.slice(said).find((l) => l.text.includes('clip recorded'))
      if (on !== (recorded !== undefined)) throw new Error(`a ring with the clip ${on ? 'on made no clip' : 'off made one'}: ${device.lines.slice(-6).map((l) => l.text).join(' | ')}`)
      if (recorded) out.clipBytes.push(Number(/bytes=(\d+)/.exec(recorded.text)?.[1] ?? NaN))
      log(`history (clip ${on ? 'on' : 'off'}): device CPU ${cpu.toFixed(1)} % of a core over ${windowMs / 1000} s from the press`)
    }
    const kept = (await hub.history.store.list({ limit: 200 }, { memberId: 'bench', devices: null })).events.filter((e) => hub.history.clips.video(e.id) !== null).length
    if (kept !== rings) throw new Error(`the hub kept ${kept} clips of ${rings}`)
  } finally {
    await device.stop()
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
  return out
}
