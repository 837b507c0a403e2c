import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { freePort } from './hubProcess'
import { endChild } from './child'

/**
 * GStreamer's RTSP server (tests/src/rtspServer.py, Debian's packages: scripts/setup.sh --test) as an
 * IP camera on loopback, started and stopped by PID; `restart` brings it back on the same port, as a
 * camera that rebooted.
 */
const SCRIPT = fileURLToPath(new URL('./rtspServer.py', import.meta.url))
/** Debian's python3, which has gi (a pyenv python does not). */
export const SYSTEM_PYTHON = '/usr/bin/python3'

export type RtspProfile = 'constrained-baseline' | 'main'
/** The camera's sound track: none, or a sine of `toneHz` as G.711 A-law (8 kHz) or Opus (48 kHz). */
export interface RtspSound { audio: 'none' | 'pcma' | 'opus', toneHz?: number }

export interface RtspCamera {
  url: string
  proc: ChildProcess
  lines: string[]
  stop: () => Promise<void>
  /** Starts the server again on the same port. */
  restart: () => Promise<void>
}

async function launch (port: number, profile: RtspProfile, size: string, sound: RtspSound, lines: string[]): Promise<ChildProcess> {
  if (!existsSync(SYSTEM_PYTHON)) throw new Error(`${SYSTEM_PYTHON} is missing: run scripts/setup.sh --test`)
  const proc = spawn(SYSTEM_PYTHON, [SCRIPT, String(port), profile, size, sound.audio, String(sound.toneHz ?? 880)], { stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stderr!.on('data', (d: Buffer) => { lines.push(...d.toString().split('\n').filter(Boolean)) })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      lines.push(...d.toString().split('\n').filter(Boolean))
      if (out.includes('ready ')) resolve()
    })
    proc.once('exit', (code) => { reject(new Error(`the RTSP server exited (${code}): ${lines.join('\n')} (scripts/setup.sh --test installs its packages)`)) })
  })
  return proc
}

/** `size`: the picture, `WxH` (default 640x360); `sound`: its sound track (default none: video only). */
export async function startRtspCamera (profile: RtspProfile, size = '640x360', sound: RtspSound = { audio: 'none' }): Promise<RtspCamera> {
  const port = await freePort()
  const lines: string[] = []
  const camera: RtspCamera = {
    url: `rtsp://127.0.0.1:${port}/camera`,
    proc: await launch(port, profile, size, sound, lines),
    lines,
    async stop () {
      await endChild(camera.proc)
    },
    async restart () {
      await camera.stop()
      camera.proc = await launch(port, profile, size, sound, lines)
    }
  }
  return camera
}
