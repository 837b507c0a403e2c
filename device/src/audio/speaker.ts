import { createSocket, type Socket } from 'node:dgram'
import { accessSync, closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { DeviceConfig, Logger } from '@doorbell/core'
import { findFfmpeg } from '../camera/camera'
import { AudioDeviceError } from './errors'
import { howToList, sinkProbeArgs, speakerArgs, speakerSdp, type PlayingSink } from './ffmpegArgs'
import { FfmpegProcess, lastLine, runToEnd } from './ffmpegProcess'
import { RtpSplice } from './rtpSplice'
import type { HalfDuplexGate } from './halfDuplex'

/** Two free consecutive UDP ports on loopback, the first even: RTP and RTCP for ffmpeg's SDP input. */
async function freeRtpPort (): Promise<number> {
  const bind = async (port: number): Promise<Socket | null> => await new Promise((resolve) => {
    const s = createSocket('udp4')
    s.once('error', () => { s.close(); resolve(null) })
    s.bind(port, '127.0.0.1', () => { resolve(s) })
  })
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = await bind(0)
    if (!a) continue
    const port = a.address().port
    const b = port % 2 === 0 && port < 65535 ? await bind(port + 1) : null
    a.close()
    b?.close()
    if (b) return port
  }
  throw new Error('no free UDP port pair on loopback for the speaker')
}

/**
 * The doorbell's speaker: what viewers say, decoded by one ffmpeg and played to the sink in
 * the config (a WAV file, ALSA, PulseAudio). Each Opus RTP packet from a viewer's session is
 * forwarded over loopback UDP to ffmpeg, which reads the stream's description (SDP) on stdin.
 * Which viewer is heard is the talk floor's decision, made before `play` is called.
 */
export class Speaker {
  private socket: Socket | null = null
  private decoder: FfmpegProcess | null = null
  private port = 0
  private readonly splice = new RtpSplice()
  packets = 0

  /** `gate`: half duplex, told of every packet played so the microphone stays shut meanwhile. */
  constructor (private readonly config: DeviceConfig['audio'], private readonly log: Logger, private readonly gate: HalfDuplexGate | null = null) {}

  /** Is there a speaker to play to (after `start`: an optional device that was missing is not)? */
  get enabled (): boolean { return this.decoder !== null }

  /** Rejects with an AudioDeviceError when the sound device is not there (unless it is optional: then a warning and no speaker). */
  async start (): Promise<void> {
    const sink = this.config.speaker
    if (sink.kind === 'none') return
    const bin = findFfmpeg(this.config.ffmpegPath)
    const missing = await this.check(bin, sink)
    if (missing) {
      if (sink.kind !== 'wav' && sink.optional) {
        this.log.warn(`no speaker: ${missing}`)
        return
      }
      throw new AudioDeviceError(`the speaker cannot be opened: ${missing}`)
    }
    this.port = await freeRtpPort()
    const socket = this.socket = createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    this.log.info('speaker starting', { ffmpeg: bin, sink: sink.kind })
    this.decoder = new FfmpegProcess({ bin, args: () => speakerArgs(sink), stdin: speakerSdp(this.port), what: 'speaker', log: this.log })
    this.decoder.start()
  }

  /** Why the sink cannot be used, or null. */
  private async check (bin: string, sink: PlayingSink): Promise<string | null> {
    if (sink.kind === 'wav') {
      const dir = dirname(resolve(sink.path))
      try { accessSync(dir, constants.W_OK) } catch { return `cannot write the WAV file ${sink.path}: the folder ${dir} is missing or read-only` }
      return null
    }
    const probe = await runToEnd(bin, sinkProbeArgs(sink))
    if (probe.code === 0) return null
    const name = sink.kind === 'alsa' ? `ALSA playback device "${sink.device}"` : `PulseAudio sink "${sink.device ?? 'default'}"`
    return `${name}: ${lastLine(probe.stderr)}; ${howToList(sink.kind, 'playback')}, then set audio.speaker in the config (or "none", or "optional": true)`
  }

  /** One RTP packet of Opus from the session `from`. */
  play (from: string, packet: Uint8Array): void {
    const socket = this.socket
    if (!socket || !this.decoder) return
    const out = this.splice.next(from, packet)
    if (!out) return
    this.packets++
    this.gate?.played()
    this.decoder.healthy()
    socket.send(out, this.port, '127.0.0.1')
  }

  async stop (): Promise<void> {
    await this.decoder?.stop(300)
    this.decoder = null
    const sink = this.config.speaker
    if (sink.kind === 'wav') mendWav(sink.path, this.log)
    await new Promise<void>((resolve) => { this.socket ? this.socket.close(() => resolve()) : resolve() })
    this.socket = null
  }
}

/**
 * Writes the RIFF and data sizes into a WAV file whose writer was killed before it could
 * (ffmpeg leaves them 0 until its trailer), so every player reads the whole recording.
 */
export function mendWav (path: string, log: Logger): void {
  let fd: number | null = null
  try {
    fd = openSync(path, 'r+')
    const stat = fstatSync(fd)
    // A FIFO or a device (/dev/null) has no header to mend, and reading a FIFO would block.
    if (!stat.isFile()) return
    const size = stat.size
    const head = Buffer.alloc(Math.min(size, 4096))
    readSync(fd, head, 0, head.length, 0)
    if (head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE') return
    // Walk the chunks to "data".
    let at = 12
    while (at + 8 <= head.length && head.toString('latin1', at, at + 4) !== 'data') at += 8 + head.readUInt32LE(at + 4)
    if (at + 8 > head.length) return
    const sizes = Buffer.alloc(4)
    sizes.writeUInt32LE(Math.min(size - 8, 0xffff_ffff))
    writeSync(fd, sizes, 0, 4, 4)
    sizes.writeUInt32LE(Math.min(size - at - 8, 0xffff_ffff))
    writeSync(fd, sizes, 0, 4, at + 4)
  } catch (err) {
    // Nothing was said (no file), or it is not ours to mend.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn('could not finish the speaker\'s WAV file', { error: (err as Error).message })
  } finally {
    if (fd !== null) closeSync(fd)
  }
}
