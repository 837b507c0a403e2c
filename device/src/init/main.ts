/**
 * `doorbell init`: asks for the pins, the relay's level, the camera, the microphone, the speaker
 * and the hub, listing what it finds, then writes the doorbell's config (mode 0600: the invite in
 * it is a secret). Installed as `sudo doorbell init` (scripts/install-device.mjs); from the
 * repository: npm run init --workspace device -- --config doorbell.json [--data-dir DIR] [--force]
 *
 * Exit status: 0 written; 1 nothing written (kept the existing config, or no usable answer); 2 bad arguments.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { probeFromEnv } from '../drivers'
import { discover } from './discover'
import { InitError, askConfig, configFile, type Ask } from './questions'

const args = process.argv.slice(2)
const option = (name: string, fallback: string): string => {
  const at = args.indexOf(name)
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1]! : fallback
}
const known = new Set(['--config', '--data-dir', '--force'])
const unknown = args.filter((a, i) => a.startsWith('--') ? !known.has(a) : !['--config', '--data-dir'].includes(args[i - 1] ?? ''))
if (unknown.length) {
  console.error(`doorbell init: unknown argument ${unknown[0]} (usage: doorbell init [--config FILE] [--data-dir DIR] [--force])`)
  process.exit(2)
}
const path = option('--config', process.env.DOORBELL_CONFIG ?? '/etc/doorbell/doorbell.json')
const dataDir = option('--data-dir', '/var/lib/doorbell/device')

// Lines are pulled one at a time, so answers piped in ahead of the questions wait their turn.
const rl = createInterface({ input: process.stdin, terminal: false })
const lines = rl[Symbol.asyncIterator]()
const ask: Ask = async (q) => {
  process.stdout.write(q)
  const next = await lines.next()
  if (next.done) throw new InitError('the input ended before every question was answered')
  return next.value
}
const say = (line: string): void => { console.log(line) }

try {
  if (existsSync(path) && !args.includes('--force')) {
    const answer = (await ask(`${path} exists. Replace it? y/n [n]: `)).trim()
    if (!/^y(es)?$/i.test(answer)) {
      say(`Kept ${path}; nothing written.`)
      process.exit(1)
    }
  }
  const found = await discover({ ...probeFromEnv(), ...(process.env.DOORBELL_VIDEO_DEV ? { videoDir: process.env.DOORBELL_VIDEO_DEV } : {}) })
  const config = await askConfig(found, ask, say, dataDir)
  const tmp = join(dirname(path), `.${Date.now()}.doorbell-init.tmp`)
  writeFileSync(tmp, `${JSON.stringify(configFile(config), null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, path)
  say(`Wrote ${path}.`)
  say(config.pairing ? 'Next: sudo systemctl enable --now doorbell-device (it pairs with the invite on its first start).' : 'Next: put the owner\'s doorbell invite in pairing.url (or run init again), then sudo systemctl enable --now doorbell-device.')
  rl.close()
} catch (err) {
  rl.close()
  console.error(`doorbell init: ${err instanceof Error ? err.message : String(err)}${err instanceof InitError ? '; nothing written' : ''}`)
  process.exit(1)
}
