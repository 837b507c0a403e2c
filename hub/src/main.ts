/** The hub as a program: `npm start --workspace hub -- --config hub.json`. */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError, StartError } from '@doorbell/core'
import { startHub, type Hub } from './hub'

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

// A signal while the modules start gives up starting (the ones started stop); after, it stops the hub.
const starting = new AbortController()
let hub: Hub | null = null
const stop = (): void => {
  if (hub === null) { starting.abort(); return }
  void hub.stop().then(() => process.exit(0))
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

try {
  hub = await startHub(input, { signal: starting.signal })
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(2)
  }
  if (err instanceof StartError) {
    // Every module that had started is stopped already: say which one could not, and why.
    console.error(err.message)
    process.exit(starting.signal.aborted ? 0 : 1)
  }
  throw err
}
