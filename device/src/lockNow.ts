/**
 * "Lock now": drives the relay to its locked level with the configured driver, then exits.
 * systemd runs it after the doorbell's process is gone, whatever ended it (ExecStopPost in
 * deployment/systemd/doorbell-device.service): a SIGKILL, a crash or a hang caught by the
 * watchdog leaves the relay where it was (sysfs and a simulated relay file keep their level),
 * and this puts it back to locked.
 *
 *   npm run lock --workspace device -- --config doorbell.json     (or: node device/dist/lockNow.js --config …)
 *
 * Exit status: 0 locked; 1 the relay could not be driven (the message says why); 2 a bad config.
 */
import { readFileSync } from 'node:fs'
import { ConfigError, DeviceConfig, parseConfig, type GpioConfig } from '@doorbell/core'
import { createDrivers, type CreateDriversOptions } from './drivers'

/** Drives the locked level and lets the line go; resolves once the relay is locked. */
export async function lockNow (gpio: GpioConfig, options: CreateDriversOptions & { print?: (line: string) => void } = {}): Promise<void> {
  const { lock } = createDrivers(gpio, options.print, options)
  await lock.set(false)
  await lock.stop()
}

async function main (): Promise<number> {
  const at = process.argv.indexOf('--config')
  const path = at > 0 ? process.argv[at + 1] : process.env.DOORBELL_CONFIG
  let config: DeviceConfig
  try {
    config = parseConfig(DeviceConfig, path ? JSON.parse(readFileSync(path, 'utf8')) : {}, path ?? 'the default config')
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : `cannot read the config ${path}: ${(err as Error).message}`)
    return 2
  }
  try {
    await lockNow(config.gpio)
    console.log(`lock-now: ${config.deviceName}: relay driven to locked (${config.gpio.driver})`)
    return 0
  } catch (err) {
    console.error(`lock-now: ${config.deviceName}: could not drive the relay to locked: ${(err as Error).message}`)
    return 1
  }
}

// Run as a program (tsx or the bundle), not when imported by a test.
if (process.argv[1] !== undefined && /lockNow\.(ts|js)$/.test(process.argv[1])) {
  process.exit(await main())
}
