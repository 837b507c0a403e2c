/**
 * What `doorbell init` finds on this machine, to offer as answers: the GPIO chips (gpiodetect, with
 * their labels), the V4L2 devices (/dev/video*), and the ALSA capture and playback devices
 * (`arecord -l`, `aplay -l`). Nothing found is not an error: init then says so and asks anyway.
 */
import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { detectGpiod, listGpiodChips, pickChip, type ChipInfo, type GpioProbe } from '../drivers'

export interface AlsaDevice {
  /** `plughw:1,0`: what audio.source / audio.speaker take (plughw converts the rate and channels). */
  device: string
  /** `USB Audio Device [USB Audio], device 0: USB Audio [USB Audio]`, as arecord prints it. */
  description: string
}

export interface Found {
  /** null: the gpiod tools are not installed. */
  gpiod: { release: string, chips: ChipInfo[], header?: ChipInfo, problem: string } | null
  videoDevices: string[]
  microphones: AlsaDevice[]
  speakers: AlsaDevice[]
  /** Where each list came from, or why it is empty. */
  notes: string[]
}

export interface DiscoverOptions extends GpioProbe {
  /** The folder holding video devices (default /dev). */
  videoDir?: string
}

/** `card 1: Device [USB Audio Device], device 0: USB Audio [USB Audio]` lines of `arecord -l` / `aplay -l`. */
export function parseAlsaList (text: string): AlsaDevice[] {
  const out: AlsaDevice[] = []
  for (const line of text.split('\n')) {
    const m = /^card (\d+): (.+?), device (\d+): (.+)$/.exec(line.trim())
    if (m) out.push({ device: `plughw:${m[1]},${m[3]}`, description: `${m[2]}, device ${m[3]}: ${m[4]}` })
  }
  return out
}

async function alsa (tool: 'arecord' | 'aplay', env: NodeJS.ProcessEnv): Promise<{ devices: AlsaDevice[], note?: string }> {
  return await new Promise((resolve) => {
    execFile(tool, ['-l'], { env, timeout: 5000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code === 'string') { resolve({ devices: [], note: `${tool} is not installed (sudo apt install alsa-utils)` }); return }
      const devices = parseAlsaList(stdout)
      resolve({ devices, ...(devices.length === 0 ? { note: `${tool} -l lists no sound card${stderr.trim() ? ` (${stderr.trim()})` : ''}` } : {}) })
    })
  })
}

export async function discover (o: DiscoverOptions = {}): Promise<Found> {
  const notes: string[] = []
  const env = o.env ?? process.env
  let gpiod: Found['gpiod'] = null
  const tools = await detectGpiod(o)
  if (tools === null) {
    notes.push('the gpiod tools are not installed (sudo apt install gpiod): the GPIO chips cannot be listed')
  } else {
    const { chips, problem } = await listGpiodChips(tools)
    const header = pickChip(chips)
    gpiod = { release: tools.release, chips, ...(header ? { header } : {}), problem }
    if (problem) notes.push(`gpiodetect said: ${problem}`)
  }
  const videoDir = o.videoDir ?? '/dev'
  let videoDevices: string[] = []
  try {
    videoDevices = (await readdir(videoDir)).filter((n) => /^video\d+$/.test(n))
      .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5))).map((n) => `${videoDir}/${n}`)
  } catch {}
  if (videoDevices.length === 0) notes.push(`no ${videoDir}/video* (a USB webcam shows up there; the Pi camera is used through rpicam-vid)`)
  const [mic, speaker] = await Promise.all([alsa('arecord', env), alsa('aplay', env)])
  for (const r of [mic, speaker]) if (r.note) notes.push(r.note)
  return { gpiod, videoDevices, microphones: mic.devices, speakers: speaker.devices, notes }
}
