/**
 * Pairs this doorbell with its home: `npm run pair --workspace device -- '<invite URL>' [--config doorbell.json]`.
 * The owner makes the invite in the viewer (Home settings → Invite → Doorbell); the URL carries the
 * one-time code and the fingerprint of the home's certificate authority, which is checked.
 */
import { readFileSync } from 'node:fs'
import { ConfigError, DeviceConfig, consoleLogger, parseConfig } from '@doorbell/core'
import { pairDevice, savePairing, PairingError } from './trust/pairing'

const args = process.argv.slice(2)
const at = args.indexOf('--config')
const path = at >= 0 ? args[at + 1] : process.env.DOORBELL_CONFIG
const url = args.find((a, i) => !a.startsWith('--') && (at < 0 || i !== at + 1))
if (!url) {
  console.error('usage: npm run pair --workspace device -- \'<invite URL>\' [--config doorbell.json]')
  process.exit(2)
}
try {
  const config = parseConfig(DeviceConfig, path ? JSON.parse(readFileSync(path, 'utf8')) : {}, path ?? 'defaults')
  const pairing = await pairDevice({ url, deviceId: config.deviceId, deviceName: config.deviceName, log: consoleLogger('pair') })
  savePairing(config.dataDir, pairing)
  console.log(`Paired ${config.deviceId} with home ${pairing.homeId} (${pairing.hubName}); kept in ${config.dataDir}/pairing.json.`)
} catch (err) {
  if (err instanceof ConfigError || err instanceof PairingError || err instanceof SyntaxError) {
    console.error((err as Error).message)
    process.exit(2)
  }
  throw err
}
