/** The hub as a program: `npm start --workspace hub -- --config hub.json`. */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '@doorbell/core'
import { startHub } from './hub'

const at = process.argv.indexOf('--config')
const path = at > 0 ? process.argv[at + 1] : process.env.HUB_CONFIG
let input: Record<string, unknown> = {}
try {
  if (path) input = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
} catch (err) {
  console.error(`cannot read the config ${path}: ${(err as Error).message}`)
  process.exit(2)
}
input.viewerDir ??= fileURLToPath(new URL('../../viewer/dist', import.meta.url))

try {
  const hub = await startHub(input)
  const stop = (): void => { void hub.stop().then(() => process.exit(0)) }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(2)
  }
  throw err
}
