import { readFileSync, writeFileSync } from 'node:fs'
import type { ButtonDriver, LockDriver } from './types'

/** A button pressed by code: Enter on the terminal (see main.ts) or a test. */
export class SimulatedButton implements ButtonDriver {
  private onPress: (() => void) | null = null

  async start (onPress: () => void): Promise<void> { this.onPress = onPress }
  async stop (): Promise<void> { this.onPress = null }

  press (): void {
    if (this.onPress === null) throw new Error('the simulated button is not started')
    this.onPress()
  }
}

/** What a simulated relay file holds. */
export type RelayPosition = 'open' | 'locked'

/** The position a simulated relay file says (a missing file: never driven, so locked). */
export function readRelayFile (path: string): RelayPosition {
  try {
    return readFileSync(path, 'utf8').trim() === 'open' ? 'open' : 'locked'
  } catch {
    return 'locked'
  }
}

/**
 * A relay that prints what a real one would do. `failNext` lets tests break it. With a
 * `relayFile` its position is kept in that file, written before set() resolves: like a real
 * relay (and a sysfs pin) it stays where it was when the process dies, until something drives it.
 * The printed line is the demo's narration, not the relay. DOOR UNLOCKED is written a turn of the
 * loop after the move, once the resident waiting for "Door open" has been told (a write to the
 * terminal's pipe, or to journald, can wake its reader and stall that path; docs/performance.md);
 * DOOR LOCKED at once (nobody waits on a relock, and `lock-now` exits right after it).
 */
export class SimulatedLock implements LockDriver {
  open = false
  private failures = 0
  /** DOOR UNLOCKED, waiting for its turn. */
  private opened: NodeJS.Immediate | null = null

  constructor (private readonly print: (line: string) => void = (line) => { console.log(line) }, private readonly relayFile?: string) {
    if (relayFile !== undefined) this.open = readRelayFile(relayFile) === 'open'
  }

  /** The next `n` calls to set() fail, as a relay whose driver died would. */
  failNext (n = 1): void { this.failures = n }

  async set (open: boolean): Promise<void> {
    if (this.failures > 0) {
      this.failures--
      throw new Error('simulated relay failure')
    }
    if (this.relayFile !== undefined) writeFileSync(this.relayFile, open ? 'open\n' : 'locked\n')
    this.open = open
    if (open) {
      this.opened ??= setImmediate(() => { this.opened = null; this.print('DOOR UNLOCKED') })
      return
    }
    // An opening not yet told is told first: the lines keep the relay's order.
    if (this.opened !== null) {
      clearImmediate(this.opened)
      this.opened = null
      this.print('DOOR UNLOCKED')
    }
    this.print('DOOR LOCKED')
  }

  async stop (): Promise<void> {
    if (this.open) await this.set(false)
  }
}
