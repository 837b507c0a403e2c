/**
 * Builds the device into one ESM file, dist/main.js (and the "lock now" and init commands, dist/lockNow.js, dist/init.js), that plain Node runs without tsx
 * (the flags that keep its memory down are in README.md, "Build", and `npm run start:dist`):
 *   node --max-semi-space-size=2 --heap-growing-percent=20 device/dist/main.js --config doorbell.json
 * Run through tsx, the device carries the TypeScript loader, every transpiled module and its
 * inline source map: ~30-40 MB more RSS when idle (issue 7). The bundle holds our workspaces (core, machines)
 * and the npm dependencies; what must stay a real package at run time is external:
 *   rpi-gpio               optional, with a native addon (epoll), loaded by import() on a Pi only
 *   @ffmpeg-installer/*    finds its platform binary by require.resolve at run time
 *   bufferutil, utf-8-validate  optional native speed-ups of ws, absent is fine
 *   node-datachannel       libp2p's webrtc-direct (its native addon comes as @node-datachannel/<platform>)
 * so dist/main.js runs where it is built (it resolves those from ../node_modules).
 * Whitespace and syntax are minified, identifiers are not: stack traces keep real function
 * names. The source map is written beside it, for `node --enable-source-maps` when debugging;
 * by default it is not loaded (it would cost memory). Usage: npm run build --workspace device
 */
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const outdir = `${dir}dist`

await rm(outdir, { recursive: true, force: true })
const result = await build({
  absWorkingDir: dir,
  // lockNow: the "lock now" command systemd runs after the doorbell stops (ExecStopPost); init: `doorbell init`.
  entryPoints: { main: 'src/main.ts', lockNow: 'src/lockNow.ts', init: 'src/init/main.ts' },
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: ['rpi-gpio', '@ffmpeg-installer/*', 'bufferutil', 'utf-8-validate', 'node-datachannel', '@node-datachannel/*'],
  // The CommonJS packages in the bundle (mqtt, ws, debug...) require Node's built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  // One non-ASCII character makes V8 hold the whole source as UTF-16: twice the memory.
  charset: 'ascii',
  legalComments: 'external',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning'
})

for (const name of ['main.js', 'lockNow.js', 'init.js']) {
  const bytes = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith(`/${name}`) || file === name)?.[1].bytes ?? 0
  console.log(`device: dist/${name} ${(bytes / 1024).toFixed(0)} kB`)
}
