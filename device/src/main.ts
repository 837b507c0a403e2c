/**
 * The doorbell as a program: `npm start --workspace device -- --config doorbell.json`.
 * With the simulated driver, Enter on this terminal rings. The modules it starts, in order, are
 * listed in `startDoorbell` (doorbell.ts): lock, pairing, audit outbox, camera, answering side,
 * mesh, home-network link, cloud, calls, button.
 */
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { ConfigError, StartError } from '@doorbell/core'
import { startDoorbell } from './doorbell'
import { SimulatedButton } from './drivers'

const at = process.argv.indexOf('--config')
const path = at > 0 ? process.argv[at + 1] : process.env.DOORBELL_CONFIG
let input: unknown = {}
try {
  if (path) input = JSON.parse(readFileSync(path, 'utf8'))
} catch (err) {
  console.error(`cannot read the config ${path}: ${(err as Error).message}`)
  process.exit(2)
}

try {
  const device = await startDoorbell(input as Record<string, unknown>)
  if (device.drivers.button instanceof SimulatedButton) {
    console.log('Simulated doorbell: press Enter to ring.')
    createInterface({ input: process.stdin }).on('line', () => { device.ring() })
  }
  const stop = (): void => { void device.stop().then(() => process.exit(0)) }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
} catch (err) {
  // A module that could not start has stopped the ones before it (the door is locked): say why.
  const cause = err instanceof StartError ? err.cause : err
  if (cause instanceof ConfigError) {
    console.error(cause.message)
    process.exit(2)
  }
  throw err
}
