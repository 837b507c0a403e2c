import { describeError } from './errors'

/**
 * A long-lived part of a program (the camera, the lock, a path, the broker): each program's
 * composition root is an ordered list of these. Platform-free.
 */
export interface Startable {
  /** What the start-up log and errors call it: `camera`, `lock`, `mesh`. */
  readonly name: string
  /** Starts; rejects when it cannot. An aborted signal means: give up starting, the program is stopping. */
  start: (signal: AbortSignal) => Promise<void>
  /** Stops what start began; safe to call once after a start that resolved. */
  stop: () => Promise<void>
}

/** A module that could not start, naming it; `cause` is what it threw. */
export class StartError extends Error {
  override readonly name = 'StartError'
  constructor (readonly module: string, override readonly cause: unknown) {
    super(`${module} could not start: ${describeError(cause)}`)
  }
}

export interface Started {
  /** The modules that started, in start order. */
  readonly names: readonly string[]
  /** Stops them in reverse order; each stop's error is reported, and the rest still stop. */
  stop: () => Promise<void>
}

export interface StartOptions {
  signal?: AbortSignal
  /** Told of each module's start and stop, and of a stop that failed. */
  log?: { info: (msg: string, data?: Record<string, unknown>) => void, error: (msg: string, data?: Record<string, unknown>) => void }
}

/**
 * Starts `modules` one after the other. When one fails (or the signal aborts), the ones already
 * started are stopped in reverse order before the StartError is thrown: nothing is left running.
 */
export async function startInOrder (modules: readonly Startable[], options: StartOptions = {}): Promise<Started> {
  const signal = options.signal ?? new AbortController().signal
  const started: Startable[] = []
  const stopAll = async (): Promise<void> => {
    for (const m of [...started].reverse()) {
      try {
        await m.stop()
        options.log?.info('stopped', { module: m.name })
      } catch (err) {
        options.log?.error('could not stop', { module: m.name, error: describeError(err) })
      }
    }
    started.length = 0
  }
  for (const m of modules) {
    try {
      signal.throwIfAborted()
      await m.start(signal)
    } catch (err) {
      await stopAll()
      throw err instanceof StartError ? err : new StartError(m.name, err)
    }
    started.push(m)
    options.log?.info('started', { module: m.name })
  }
  const names = started.map((m) => m.name)
  let stopping: Promise<void> | null = null
  return { names, stop: async () => { stopping ??= stopAll(); await stopping } }
}
