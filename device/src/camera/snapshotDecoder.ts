import { spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import { SNAPSHOT_TARGET_BYTES, describeError, type Logger } from '@doorbell/core'
import { SnapshotError, h264AnnexB, snapshotJpeg, vp8Ivf, wholeKeyframe } from './snapshot'

/**
 * The press → picture fast path (docs/history.md): one ffmpeg that stays running, fed the cached
 * keyframe on demand, instead of a process start per picture (a start cost 0.2-2 s on a busy machine).
 *
 * ffmpeg's command line holds each frame until the next one arrives (its output lags one frame), so
 * every request writes its keyframe twice: the second copy pushes the first out, and its own JPEG is
 * the first of the two; the other is dropped when it comes. Outputs are counted, not guessed: the
 * n-th JPEG out is the n-th frame in. A decoder that stalls, dies or makes a picture over the size
 * target hands that request to the one-shot path (snapshot.ts), and a stalled one is restarted.
 */

/** The H.264 access unit delimiter: it ends the keyframe's access unit for ffmpeg's parser. */
const AUD = Buffer.from([0, 0, 0, 1, 9, 0xf0])
const SOI = Buffer.from([0xff, 0xd8])
const EOI = Buffer.from([0xff, 0xd9])

export interface SnapshotDecoderOptions {
  ffmpeg: string
  codec: 'h264' | 'vp8'
  log: Logger
  /** How long one picture may take before the decoder is given up on (and restarted). */
  timeoutMs?: number
  /** Never keep a decoder running: every picture is a one-shot run (no resident ffmpeg). */
  oneShot?: boolean
}

interface Running {
  proc: ChildProcessByStdio<Writable, Readable, Readable>
  /** Frames written so far, and JPEGs read so far: the n-th JPEG is the n-th frame's. */
  written: number
  read: number
  pending: Map<number, (jpeg: Buffer) => void>
  buffer: Buffer
  said: string
  exited: Promise<void>
}

export class SnapshotDecoder {
  private running: Running | null = null
  private queue: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly abort = new AbortController()
  /** How the last picture was made, for the log and the tests. */
  lastPath: 'decoder' | 'one-shot' | null = null

  constructor (private readonly o: SnapshotDecoderOptions) {}

  /** The running decoder's process id (none before the first picture or after a failure). */
  get pid (): number | undefined { return this.running?.proc.pid }

  /** A whole keyframe (the camera's `keyframe()`) as a JPEG 640 px wide, at most the size target. */
  async jpeg (keyframe: Buffer[]): Promise<Buffer> {
    const key = wholeKeyframe(keyframe)
    // One picture at a time: the frame counting needs the writes in order.
    const result = this.o.oneShot === true ? Promise.resolve(null) : this.queue.then(async () => await this.fast(key))
    this.queue = result.catch(() => {})
    const fast = await result
    if (fast) { this.lastPath = 'decoder'; return fast }
    this.lastPath = 'one-shot'
    return await snapshotJpeg(key, { ffmpeg: this.o.ffmpeg, codec: this.o.codec, signal: this.abort.signal })
  }

  /** The picture from the running decoder, or null when the one-shot path should make it. */
  private async fast (key: Buffer[]): Promise<Buffer | null> {
    if (this.stopped) throw new SnapshotError('the snapshot decoder is stopped')
    const run = this.running ?? this.start()
    const frame = (): Buffer => {
      if (this.o.codec === 'h264') return Buffer.concat([h264AnnexB(key), AUD])
      // IVF: the file header went out once at the start; each frame carries its own header (size, pts).
      const ivf = vp8Ivf(key).subarray(32)
      const out = Buffer.from(ivf)
      out.writeBigUInt64LE(BigInt(run.written), 4)
      return out
    }
    const mine = run.written
    const got = new Promise<Buffer>((resolve) => run.pending.set(mine, resolve))
    const first = frame()
    run.written++
    const second = frame()
    run.written++
    run.pending.set(mine + 1, () => {}) // the flushing copy's own JPEG: not wanted
    run.proc.stdin.write(Buffer.concat([first, second]))
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), this.o.timeoutMs ?? 3000) })
    const outcome = await Promise.race([got, timeout, run.exited.then(() => 'exited' as const)])
    clearTimeout(timer)
    if (outcome === 'timeout' || outcome === 'exited') {
      this.o.log.warn('the snapshot decoder gave no picture; it restarts, and this one is made by a one-shot run', { why: outcome, ffmpeg: run.said.trim().split('\n').at(-1) ?? '' })
      this.kill(run)
      return null
    }
    return outcome.length <= SNAPSHOT_TARGET_BYTES ? outcome : null
  }

  private start (): Running {
    const args = [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      // Decide on the stream from the first frame, and hand each frame on at once.
      '-probesize', '32', '-analyzeduration', '0', '-fflags', 'nobuffer', '-flags', 'low_delay', '-threads', '1',
      '-f', this.o.codec === 'h264' ? 'h264' : 'ivf', '-i', 'pipe:0',
      '-vf', 'scale=640:-2', '-fps_mode', 'passthrough', '-q:v', '5', '-c:v', 'mjpeg', '-threads', '1',
      '-f', 'image2pipe', '-flush_packets', '1', 'pipe:1'
    ]
    const proc = spawn(this.o.ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const run: Running = {
      proc,
      written: 0,
      read: 0,
      pending: new Map(),
      buffer: Buffer.alloc(0),
      said: '',
      exited: new Promise((resolve) => { proc.once('close', () => resolve()); proc.once('error', () => resolve()) })
    }
    proc.on('error', (err) => { run.said += `\n${describeError(err)}` })
    proc.stdin.on('error', () => {}) // ffmpeg gone: `exited` says so
    proc.stderr.setEncoding('utf8').on('data', (d: string) => { run.said = (run.said + d).slice(-2000) })
    proc.stdout.on('data', (chunk: Buffer) => {
      run.buffer = run.buffer.length === 0 ? chunk : Buffer.concat([run.buffer, chunk])
      for (;;) {
        // ffmpeg's JPEGs have no embedded thumbnail: the first end-of-image marker ends the picture.
        const start = run.buffer.indexOf(SOI)
        const end = start === -1 ? -1 : run.buffer.indexOf(EOI, start + 2)
        if (end === -1) break
        const jpeg = run.buffer.subarray(start, end + 2)
        run.buffer = run.buffer.subarray(end + 2)
        const n = run.read++
        run.pending.get(n)?.(Buffer.from(jpeg))
        run.pending.delete(n)
      }
    })
    void run.exited.then(() => { if (this.running === run) this.running = null })
    if (this.o.codec === 'vp8') proc.stdin.write(vp8Ivf([]))
    this.running = run
    return run
  }

  private kill (run: Running): void {
    if (this.running === run) this.running = null
    run.pending.clear()
    run.proc.stdin.destroy()
    run.proc.kill('SIGKILL')
  }

  stop (): void {
    this.stopped = true
    this.abort.abort()
    if (this.running) this.kill(this.running)
  }
}
