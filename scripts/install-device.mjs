#!/usr/bin/env node
/**
 * Installs the doorbell for production: what the doorbell runs and nothing else (no devDependencies,
 * no sources, no viewer), for a Raspberry Pi (linux-arm64) or any Linux box (linux-x64).
 * Plain JavaScript: it runs on any Node >= 22 before anything is installed. scripts/install-pi.sh
 * is the front door on a Pi (it fetches a Node first when there is none); README "On a Raspberry Pi".
 *
 *   node scripts/install-device.mjs [--prefix DIR] [--arch arm64|x64] [--packages DIR] [--download-only] [--system] [--no-apt]
 *
 * Into PREFIX (default /, like DESTDIR: the installed paths are always /opt/doorbell/...):
 *   opt/doorbell/node_modules/node/bin/node   Node from the npm registry's node-linux-<arch>, the
 *                                             version package-lock.json holds (.bin/node links it,
 *                                             the path the systemd unit names)
 *   opt/doorbell/node_modules/...             the bundle's native parts only: node-datachannel,
 *                                             its prebuilt @node-datachannel/linux-<arch>-gnu, detect-libc
 *   opt/doorbell/device/dist/                 the bundle (main.js, lockNow.js, init.js), built beforehand
 *   etc/systemd/system/doorbell-device.service   the unit, as in deployment/systemd
 *   usr/local/bin/doorbell                    `doorbell init|lock|start`
 * ffmpeg is Debian's (apt; V4L2, the Pi's hardware encoder, ALSA and PulseAudio), not bundled; the
 * gpiod tools too. rpi-gpio is not installed: "auto" never picks it (docs/hardware.md).
 * --system (as root, prefix /) also: the apt packages (ffmpeg gpiod alsa-utils; not with --no-apt),
 * the groups and the doorbell-device user in gpio, video and audio, systemctl daemon-reload.
 * --packages DIR keeps the downloaded tarballs (and reads them from there first): an install with no
 * network, or a test; --download-only fills it and stops.
 * Every tarball is checked against package-lock.json's integrity (the Node binary against the registry's).
 */
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const INSTALL_DIR = 'opt/doorbell'
/** The whole install (Node included) must stay under this: a Pi's SD card, and issue 18. */
export const MAX_INSTALL_MB = 150
const REGISTRY = (process.env.npm_config_registry ?? 'https://registry.npmjs.org').replace(/\/$/, '')

export class InstallError extends Error {
  name = 'InstallError'
}

function parseArgs (argv) {
  const o = { prefix: '/', arch: process.arch, packages: undefined, downloadOnly: false, system: false, apt: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined || v.startsWith('--')) throw new InstallError(`${a} needs a value`)
      return v
    }
    if (a === '--prefix') o.prefix = resolve(value())
    else if (a === '--arch') o.arch = value()
    else if (a === '--packages') o.packages = resolve(value())
    else if (a === '--download-only') o.downloadOnly = true
    else if (a === '--system') o.system = true
    else if (a === '--no-apt') o.apt = false
    else throw new InstallError(`unknown option ${a} (usage: install-device.mjs [--prefix DIR] [--arch arm64|x64] [--packages DIR] [--download-only] [--system] [--no-apt])`)
  }
  if (o.arch !== 'arm64' && o.arch !== 'x64') throw new InstallError(`--arch is arm64 (a Raspberry Pi) or x64, not ${o.arch}`)
  if (o.system && o.prefix !== '/') throw new InstallError('--system sets up this machine (users, groups, systemd): only with --prefix /')
  return o
}

/** What the bundle loads at run time besides itself (device/build.ts's externals that a doorbell needs), pinned by the lock. */
export function runtimePackages (arch, lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'))) {
  const entry = (name) => {
    const p = lock.packages[`node_modules/${name}`]
    if (!p?.version) throw new InstallError(`package-lock.json has no ${name}: run npm install in the repository first`)
    return { name, version: p.version, integrity: p.integrity }
  }
  const node = entry('node')
  return {
    node: { name: `node-linux-${arch}`, version: node.version, integrity: undefined },
    modules: [entry('node-datachannel'), entry('detect-libc'), entry(`@node-datachannel/linux-${arch}-gnu`)]
  }
}

const tarballName = (pkg) => `${pkg.name.replace('@', '').replace('/', '-')}-${pkg.version}.tgz`

function checkIntegrity (pkg, bytes, expected) {
  if (!expected) return
  const [algorithm, digest] = expected.split('-', 2)
  const actual = createHash(algorithm).update(bytes).digest('base64')
  if (actual !== digest) throw new InstallError(`${pkg.name}@${pkg.version}: the tarball's ${algorithm} is not the one ${pkg.integrity ? 'package-lock.json' : 'the registry'} gives: refusing it`)
}

/** The package's tarball: from --packages if there, else from the registry (then kept there). */
async function tarball (pkg, packages) {
  const cached = packages && join(packages, tarballName(pkg))
  if (cached && existsSync(cached)) {
    const bytes = readFileSync(cached)
    checkIntegrity(pkg, bytes, pkg.integrity)
    return cached
  }
  const metaUrl = `${REGISTRY}/${pkg.name.replace('/', '%2f')}/${pkg.version}`
  let meta
  try {
    const res = await fetch(metaUrl)
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    meta = await res.json()
  } catch (err) {
    throw new InstallError(`cannot reach the npm registry for ${pkg.name}@${pkg.version} (${metaUrl}: ${err.cause?.message ?? err.message}); with no network, give --packages with the tarballs (install-device.mjs --download-only --packages DIR on a machine that has one)`)
  }
  const res = await fetch(meta.dist.tarball)
  if (!res.ok) throw new InstallError(`${pkg.name}@${pkg.version}: ${meta.dist.tarball} answered HTTP ${res.status}`)
  const bytes = Buffer.from(await res.arrayBuffer())
  checkIntegrity(pkg, bytes, pkg.integrity ?? meta.dist.integrity)
  const dir = packages ?? mkdtempSync(join(tmpdir(), 'doorbell-install-'))
  mkdirSync(dir, { recursive: true })
  const path = join(dir, tarballName(pkg))
  writeFileSync(path, bytes)
  return path
}

function run (command, args, what) {
  const r = spawnSync(command, args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new InstallError(`${what}: ${command} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.trim()}`)
  return r.stdout
}

function extract (file, dir, members = []) {
  mkdirSync(dir, { recursive: true })
  run('tar', ['-xzf', file, '-C', dir, '--strip-components=1', '--no-same-owner', ...members], `unpacking ${file}`)
}

/** Drops what a package ships for its developers (TypeScript sources, types, source maps, docs but the licence). */
function prune (dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (entry.name === 'src') rmSync(path, { recursive: true })
      else prune(path)
    } else if (/\.(ts|map|md)$/.test(entry.name) && !/^licen[cs]e/i.test(entry.name)) {
      rmSync(path)
    }
  }
}

/** Bytes on disk under a folder (files and links, not following links). */
export function sizeOf (dir) {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    total += entry.isDirectory() ? sizeOf(path) : lstatSync(path).size
  }
  return total
}

function setUpSystem (o, log) {
  if (process.getuid?.() !== 0) throw new InstallError('--system needs root: sudo')
  if (o.apt) {
    log('apt: ffmpeg (camera, microphone, speaker), gpiod (the libgpiod driver), alsa-utils (arecord -l for init)')
    run('apt-get', ['install', '-y', '--no-install-recommends', 'ffmpeg', 'gpiod', 'alsa-utils'], 'installing the Debian packages')
  }
  // Raspberry Pi OS has all three groups; another Debian box may lack gpio.
  for (const group of ['gpio', 'video', 'audio']) {
    if (spawnSync('getent', ['group', group]).status !== 0) run('groupadd', ['--system', group], `creating the group ${group}`)
  }
  if (spawnSync('id', ['doorbell-device']).status !== 0) {
    run('useradd', ['--system', '--home-dir', '/var/lib/doorbell/device', '--shell', '/usr/sbin/nologin', '--groups', 'gpio,video,audio', 'doorbell-device'], 'creating the user doorbell-device')
  } else {
    run('usermod', ['-a', '-G', 'gpio,video,audio', 'doorbell-device'], 'adding doorbell-device to gpio, video, audio')
  }
  mkdirSync('/etc/doorbell', { recursive: true, mode: 0o755 })
  if (existsSync('/run/systemd/system')) run('systemctl', ['daemon-reload'], 'reloading systemd')
}

export async function install (argv, log = (line) => console.log(`install: ${line}`)) {
  const o = parseArgs(argv)
  const { node, modules } = runtimePackages(o.arch)
  const files = new Map()
  for (const pkg of [node, ...modules]) files.set(pkg, await tarball(pkg, o.packages))
  if (o.downloadOnly) {
    log(`${files.size} tarballs for linux-${o.arch} in ${o.packages ?? 'a temporary folder'}`)
    return { bytes: 0 }
  }

  const dist = join(ROOT, 'device/dist')
  for (const name of ['main.js', 'lockNow.js', 'init.js']) {
    if (!existsSync(join(dist, name))) throw new InstallError(`device/dist/${name} is missing: build the doorbell first (npm run build --workspace device)`)
  }
  const home = join(o.prefix, INSTALL_DIR)
  // A reinstall replaces the program, never /etc/doorbell or /var/lib/doorbell (config, pairing).
  rmSync(home, { recursive: true, force: true })
  mkdirSync(join(home, 'device/dist'), { recursive: true })
  for (const name of readdirSync(dist)) {
    // Source maps only help a debugger (node --enable-source-maps) and are a third of the size.
    if (!name.endsWith('.map')) copyFileSync(join(dist, name), join(home, 'device/dist', name))
  }

  const nm = join(home, 'node_modules')
  // Only the binary: the package's C headers (include/) are for building addons.
  extract(files.get(node), join(nm, 'node'), ['package/bin/node', 'package/LICENSE'])
  mkdirSync(join(nm, '.bin'))
  symlinkSync('../node/bin/node', join(nm, '.bin/node'))
  for (const pkg of modules) {
    extract(files.get(pkg), join(nm, pkg.name))
    prune(join(nm, pkg.name))
  }
  writeFileSync(join(home, 'package.json'), `${JSON.stringify({
    name: 'doorbell-device-install',
    private: true,
    type: 'module',
    description: 'The doorbell as installed by scripts/install-device.mjs: device/dist and what it loads at run time',
    dependencies: Object.fromEntries([node, ...modules].map((p) => [p.name, p.version]))
  }, null, 2)}\n`)

  const unitDir = join(o.prefix, 'etc/systemd/system')
  mkdirSync(unitDir, { recursive: true })
  copyFileSync(join(ROOT, 'deployment/systemd/doorbell-device.service'), join(unitDir, 'doorbell-device.service'))
  const binDir = join(o.prefix, 'usr/local/bin')
  mkdirSync(binDir, { recursive: true })
  writeFileSync(join(binDir, 'doorbell'), DOORBELL_COMMAND)
  chmodSync(join(binDir, 'doorbell'), 0o755)
  mkdirSync(join(o.prefix, 'etc/doorbell'), { recursive: true })

  if (o.system) setUpSystem(o, log)
  const bytes = sizeOf(home)
  const mb = bytes / 1024 / 1024
  log(`/${INSTALL_DIR}: ${mb.toFixed(1)} MB (Node ${node.version} for linux-${o.arch}: ${(lstatSync(join(nm, 'node/bin/node')).size / 1024 / 1024).toFixed(1)} MB)`)
  if (mb > MAX_INSTALL_MB) throw new InstallError(`the install is ${mb.toFixed(1)} MB, over its ${MAX_INSTALL_MB} MB bound: something the doorbell does not run came in`)
  return { bytes, home }
}

const DOORBELL_COMMAND = `#!/bin/sh
# The installed doorbell's commands (scripts/install-device.mjs).
node=/opt/doorbell/node_modules/.bin/node
dist=/opt/doorbell/device/dist
config=\${DOORBELL_CONFIG:-/etc/doorbell/doorbell.json}
case "\${1:-}" in
  init) shift; exec "$node" "$dist/init.js" --config "$config" "$@" ;;
  lock) shift; exec "$node" "$dist/lockNow.js" --config "$config" "$@" ;;
  start) shift; exec "$node" "$dist/main.js" --config "$config" "$@" ;;
  *) echo "usage: doorbell init|lock|start   (config: $config; the service: systemctl status doorbell-device)" >&2; exit 2 ;;
esac
`

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await install(process.argv.slice(2))
  } catch (err) {
    console.error(err instanceof InstallError ? `install: ${err.message}` : err)
    process.exit(err instanceof InstallError ? 2 : 1)
  }
}
