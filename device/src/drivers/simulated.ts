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

/** A relay that prints what a real one would do. `failNext` lets tests break it. */
export class SimulatedLock implements LockDriver {
  open = false
  private failures = 0

  constructor (private readonly print: (line: string) => void = (line) => { console.log(line) }) {}

  /** The next `n` calls to set() fail, as a relay whose driver died would. */
  failNext (n = 1): void { this.failures = n }

  async set (open: boolean): Promise<void> {
    if (this.failures > 0) {
      this.failures--
      throw new Error('simulated relay failure')
    }
    this.open = open
    this.print(open ? 'DOOR UNLOCKED' : 'DOOR LOCKED')
  }

  async stop (): Promise<void> {
    if (this.open) await this.set(false)
  }
}
