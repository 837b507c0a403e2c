import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/**
 * The dependency rule, checked: what a browser imports (core, machines, the device's answering
 * side and its home-network link, which the browser camera node runs) bundles for the browser
 * with nothing Node-only in it, transitively. A stray import of werift, ffmpeg, GPIO, libp2p's
 * TCP or a `node:` module here would make the camera node's page fail to build.
 */
const ENTRIES = {
  core: '../../core/src/index.ts',
  machines: '../../machines/src/index.ts',
  '@doorbell/device/answering': '../src/answering/index.ts',
  '@doorbell/device/lan': '../src/paths/lan/index.ts'
}
const NODE_ONLY = /(^|\/)node_modules\/(werift|@ffmpeg-installer|rpi-gpio|node-datachannel|@libp2p\/tcp|@libp2p\/mdns|datastore-fs|amazon-kinesis-video-streams-webrtc)\//

for (const [name, entry] of Object.entries(ENTRIES)) {
  test(`${name} bundles for the browser with nothing Node-only in it`, async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      // The AWS SDK's KVS clients load on first use (a dynamic import): not part of this check.
      external: ['@aws-sdk/*']
    }).catch((err: { errors?: Array<{ text: string }> }) => {
      assert.fail(`${name} does not bundle for the browser: ${(err.errors ?? []).map((e) => e.text).join('; ')}`)
    })
    const inputs = Object.keys(result.metafile.inputs)
    assert.ok(inputs.length > 0)
    const nodeOnly = inputs.filter((i) => NODE_ONLY.test(i) || i.startsWith('node:'))
    assert.deepEqual(nodeOnly, [], `${name} pulls in Node-only code`)
  })
}
