/**
 * The doorbell as a program: `npm start --workspace device -- --config doorbell.json`.
 * With the simulated driver, Enter on this terminal rings. The modules it starts, in order, are
 * listed in `startDoorbell` (doorbell.ts): lock, pairing, audit outbox, camera, answering side,
 * mesh, home-network link, cloud, calls, button, systemd. Before any of them is loaded, the relay
 * is driven locked (lockFirst).
 */
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { ConfigError, DeviceConfig, StartError } from '@doorbell/core'
import { SimulatedButton, createDrivers, type Drivers } from './drivers'

const at = process.argv.indexOf('--config')
const path = at > 0 ? process.argv[at + 1] : process.env.DOORBELL_CONFIG
let input: unknown = {}
try {
  if (path) input = JSON.parse(readFileSync(path, 'utf8'))
} catch (err) {
  console.error(`cannot read the config ${path}: ${(err as Error).message}`)
  process.exit(2)
}

/**
 * Fail-secure before anything else is even loaded (the doorbell's modules take seconds to load on a
 * Pi): the relay is driven locked with the config's own gpio section, read alone so that a damaged
 * config elsewhere still leaves the door locked. The same drivers then go to the doorbell (no gap in
 * which a libgpiod line is let go). If this fails, the doorbell's lock module tries again and says why.
 */
async function lockFirst (config: unknown): Promise<Drivers | undefined> {
  const gpio = DeviceConfig.shape.gpio.safeParse((config as { gpio?: unknown } | null)?.gpio)
  if (!gpio.success) return undefined
  const drivers = createDrivers(gpio.data)
  try {
    await drivers.lock.set(false)
  } catch (err) {
    console.error(`could not drive the relay locked at start: ${(err as Error).message}`)
  }
  return drivers
}

const drivers = await lockFirst(input)
const { startDoorbell } = await import('./doorbell')

// A signal while the modules start gives up starting: the ones already started stop, in reverse.
const starting = new AbortController()
const giveUp = (): void => { starting.abort(new Error('stopped by a signal while starting')) }
process.once('SIGINT', giveUp)
process.once('SIGTERM', giveUp)

try {
  const device = await startDoorbell(input as Record<string, unknown>, { signal: starting.signal, ...(drivers ? { drivers } : {}) })
  process.off('SIGINT', giveUp)
  process.off('SIGTERM', giveUp)
  if (device.drivers.button instanceof SimulatedButton) {
    console.log('Simulated doorbell: press Enter to ring.')
    createInterface({ input: process.stdin }).on('line', () => { device.ring() })
  }
  const stop = (code: number) => (): void => { void device.stop().finally(() => process.exit(code)) }
  process.on('SIGINT', stop(0))
  process.on('SIGTERM', stop(0))
  // Fail-secure: an error nothing caught still stops every module (the relay is driven locked as the calls end, and again last).
  process.on('uncaughtException', (err) => {
    console.error('the doorbell stops on an error nothing caught:', err)
    stop(1)()
  })
} catch (err) {
  // A module that could not start has stopped the ones before it (the door is locked): say why.
  const cause = err instanceof StartError ? err.cause : err
  if (cause instanceof ConfigError) {
    console.error(cause.message)
    process.exit(2)
  }
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(starting.signal.aborted ? 0 : 1)
}
