import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, existsSync, lstatSync, openSync, readSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { startHub } from '@doorbell/hub'
import { memoryLogger } from '@doorbell/device'
import { topics } from '@doorbell/core'
import { FakeGpiod } from '../../device/test/fakeGpiod'
import { waitFor } from 'xstate'
import { VIEWER_DIST, eventually } from '../src/harness'
import { nodeViewer } from '../src/nodeViewer'
import { deviceInvite, pairViewer } from '../src/trust'

/**
 * The production install for a Raspberry Pi (scripts/install-device.mjs --arch arm64), checked on an
 * x64 machine: installed into a folder, the whole of it under its size bound, every binary in it
 * built for arm64; then the installed doorbell runs under qemu-user (qemu-aarch64-static, the
 * arm64 Node the install brought, nothing from the repository), with the fake gpiod tools (v2)
 * of the driver tests standing in for a Pi 4's GPIO: it drives the relay locked, says which
 * driver and chip it chose, pairs with a hub running natively on loopback, publishes its
 * presence, and a press of the button rings; a Node viewer answers, receives video and opens the
 * door with a signed command (the relay moves, then relocks). One start: emulation is slow.
 * The test-pattern camera's ffmpeg is the host's (x64, started by the emulated Node): the arm64
 * Node cannot start an arm64 ffmpeg without binfmt_misc, which these machines do not have.
 * The tarballs come from the folder scripts/setup.sh --test filled (the test has no network).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const PACKAGES = join(ROOT, 'node_modules/.cache/doorbell-install')
const QEMU = 'qemu-aarch64-static'
const SYSROOT = '/usr/aarch64-linux-gnu'
const MAX_MB = 150
const BUTTON = 17
const LOCK = 27

/** e_machine of an ELF file: 183 (0xb7) is AArch64. */
function elfMachine (path: string): number {
  const fd = openSync(path, 'r')
  const head = Buffer.alloc(20)
  readSync(fd, head, 0, 20, 0)
  closeSync(fd)
  assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF', `${path} is an ELF file`)
  return head.readUInt16LE(18)
}

function filesUnder (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)])
}

test('the arm64 install fits its bound, and the installed doorbell starts under qemu, picks libgpiod, pairs, comes online, rings, and a call gets video and opens the door', { timeout: 600_000 }, async (t) => {
  assert.ok(spawnSync(QEMU, ['--version']).status === 0 && existsSync(SYSROOT), `${QEMU} and ${SYSROOT} are missing: scripts/setup.sh --test installs qemu-user-static and libc6-arm64-cross`)
  assert.ok(existsSync(join(ROOT, 'device/dist/main.js')), 'device/dist is built first (npm test builds it; npm run build --workspace device)')
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-arm64-'))
  const lines: string[] = []
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })

  // The install, as on a Pi but into a folder (--prefix) from the downloaded tarballs.
  const prefix = join(dir, 'root')
  const installStarted = Date.now()
  const install = spawnSync(process.execPath, [join(ROOT, 'scripts/install-device.mjs'), '--arch', 'arm64', '--prefix', prefix, '--packages', PACKAGES], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(install.status, 0, `${install.stdout}${install.stderr}\n(scripts/setup.sh --test downloads the arm64 tarballs into ${PACKAGES})`)
  const reported = /\/opt\/doorbell: ([\d.]+) MB/.exec(install.stdout)
  assert.ok(reported, install.stdout)
  const home = join(prefix, 'opt/doorbell')
  const files = filesUnder(home)
  // lstat: .bin/node is a link to node/bin/node, counted once.
  const bytes = files.reduce((sum, f) => sum + lstatSync(f).size, 0)
  const mb = bytes / 1024 / 1024
  assert.ok(mb <= MAX_MB, `the install is ${mb.toFixed(1)} MB, over ${MAX_MB} MB`)
  assert.ok(Math.abs(mb - Number(reported[1])) < 0.2, `the installer reports the size it has (${reported[1]} MB; ${mb.toFixed(1)} MB here)`)
  // Only what the doorbell runs: the bundle, Node, the native WebRTC part; no sources, maps, viewer or dev tools.
  assert.deepEqual(files.filter((f) => /\.(ts|map|vue)$/.test(f) || /\/(esbuild|typescript|tsx|vite|@esbuild)\//.test(f)), [])
  const natives = files.filter((f) => (f.endsWith('.node') || f.endsWith('/bin/node')) && !lstatSync(f).isSymbolicLink())
  assert.deepEqual(natives.map((f) => f.slice(home.length)).sort(), ['/node_modules/@node-datachannel/linux-arm64-gnu/node_datachannel.node', '/node_modules/node/bin/node'])
  for (const f of natives) assert.equal(elfMachine(f), 183, `${f} is built for arm64`)
  assert.ok(existsSync(join(prefix, 'etc/systemd/system/doorbell-device.service')))
  assert.match(readFileSync(join(prefix, 'usr/local/bin/doorbell'), 'utf8'), /init\) shift; exec "\$node" "\$dist\/init\.js"/)
  console.log(`arm64 install: ${mb.toFixed(1)} MB in ${Date.now() - installStarted} ms`)

  // A hub on loopback, natively; a member watching the doorbell's topics.
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', viewerDir: VIEWER_DIST, dataDir: join(dir, 'hub'), mesh: { enabled: false } }, { log: memoryLogger(lines, 'hub') })
  t.after(async () => { await hub.stop() })
  const member = await pairViewer(hub, { name: 'Watcher' })
  const watcher = mqtt.connect(hub.mqttUrl, { clientId: `viewer-${member.viewerId}-watch`, username: member.memberId, password: member.token, reconnectPeriod: 200 })
  t.after(async () => { await watcher.endAsync() })
  const seen: Array<{ topic: string, payload: string }> = []
  watcher.on('message', (topic, payload) => { seen.push({ topic, payload: payload.toString() }) })
  await new Promise<void>((resolve) => watcher.on('connect', () => resolve()))
  await watcher.subscribeAsync([topics.presence('home', 'porch'), topics.ring('home', 'porch')], { qos: 1 })

  // A Pi 4 on Bookworm's successor: gpiochip0 [pinctrl-bcm2711], libgpiod 2 tools.
  const gpiod = await FakeGpiod.create(2)
  t.after(async () => { await gpiod.close() })
  const dev = join(dir, 'dev')
  spawnSync('mkdir', ['-p', dev])
  writeFileSync(join(dev, 'gpiochip0'), '')
  const config = join(dir, 'doorbell.json')
  writeFileSync(config, JSON.stringify({
    deviceId: 'porch',
    deviceName: 'Porch',
    hubUrl: hub.mqttUrl,
    pairing: { url: await deviceInvite(hub, 'porch') },
    dataDir: join(dir, 'device'),
    mesh: { enabled: false },
    gpio: { driver: 'auto', buttonLine: BUTTON, lockLine: LOCK },
    camera: { source: { kind: 'test-pattern', width: 320, height: 240, fps: 10 } },
    iceAdditionalHostAddresses: ['127.0.0.1']
  }))

  // As the systemd unit starts it, from the installed folder.
  const unit = readFileSync(join(prefix, 'etc/systemd/system/doorbell-device.service'), 'utf8')
  const execStart = /^ExecStart=(\S+) (.*) --config %d\/doorbell\.json$/m.exec(unit)
  assert.ok(execStart, 'the unit\'s ExecStart')
  assert.equal(execStart[1], '/opt/doorbell/node_modules/.bin/node', 'the unit runs the Node the install brought')
  const started = Date.now()
  const device = spawn(QEMU, ['-L', SYSROOT, join(home, 'node_modules/.bin/node'), ...execStart[2]!.split(' '), '--config', config], {
    cwd: home,
    env: { ...process.env, MALLOC_ARENA_MAX: '2', DOORBELL_GPIOD_TOOLS: gpiod.toolDir, DOORBELL_GPIO_DEV: dev },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const out: string[] = []
  device.stdout.on('data', (d: Buffer) => { out.push(...d.toString().split('\n').filter(Boolean)) })
  device.stderr.on('data', (d: Buffer) => { out.push(...d.toString().split('\n').filter(Boolean)) })
  const exited = new Promise((resolve) => device.once('exit', resolve))
  t.after(async () => { if (device.exitCode === null && device.signalCode === null) { device.kill('SIGTERM'); await exited } })
  const said = (what: string, pattern: RegExp, ms = 240_000): Promise<string> =>
    eventually(what, () => { if (device.exitCode !== null) throw new Error(`the doorbell exited (${device.exitCode}):\n${out.join('\n')}`); return out.find((l) => pattern.test(l)) }, ms)
      .catch((err: Error) => { throw new Error(`${err.message}\nthe doorbell said:\n${out.slice(-30).join('\n')}`) })

  const choice = await said('the driver choice', /gpio: libgpiod v2\.2\.1/)
  assert.match(choice, /gpiochip0 \[pinctrl-bcm2711\]/)
  await eventually('the relay driven locked', () => gpiod.level(LOCK) === 0, 240_000)
  const online = await eventually('the doorbell online at the hub', () => seen.find((m) => m.topic === topics.presence('home', 'porch') && /"online":true|^online$/.test(m.payload)), 240_000)
    .catch((err: Error) => { throw new Error(`${err.message}\nthe doorbell said:\n${out.slice(-30).join('\n')}`) })
  assert.ok(online)
  const ready = Date.now() - started
  await said('every module started', /started module=button/)

  // A resident's screen (the viewer's own call logic on werift, natively) answers the ring.
  const viewer = nodeViewer(hub.mqttUrl, member)
  t.after(async () => { await viewer.close() })
  await eventually('the viewer to know the doorbell', () => viewer.home.doorbells.get('porch'), 60_000)
  const call = viewer.home.doorbell('porch')
  gpiod.input(BUTTON, 0)
  await new Promise((resolve) => setTimeout(resolve, 200))
  gpiod.input(BUTTON, 1)
  await eventually('the ring at the hub', () => seen.find((m) => m.topic === topics.ring('home', 'porch')), 120_000)
    .catch((err: Error) => { throw new Error(`${err.message}\nthe doorbell said:\n${out.slice(-30).join('\n')}`) })
  const failed = (what: string) => (err: Error): never => { const c = call.getSnapshot(); throw new Error(`${what}: ${err.message} (the screen: ${JSON.stringify(c.value)}, ${c.context.endReason ?? ''} ${c.context.error ?? ''})\nthe doorbell said:\n${out.slice(-30).join('\n')}`) }
  await waitFor(call, (s) => s.matches('incoming'), { timeout: 60_000 }).catch(failed('the ring on the screen'))
  const answered = Date.now()
  viewer.home.answer('porch')
  await waitFor(call, (s) => s.matches({ active: 'connected' }), { timeout: 120_000 }).catch(failed('the call to connect'))
  const connected = Date.now() - answered
  await eventually('video from the doorbell under qemu', () => viewer.rtp.length >= 10, 120_000).catch(failed('video'))
  // The signed open-door command reaches the emulated doorbell's relay, which relocks by itself.
  viewer.home.unlock('porch')
  await eventually('the relay released by the signed command', () => gpiod.level(LOCK) === 1, 60_000).catch(failed('the relay'))
  await eventually('the relay locked again', () => gpiod.level(LOCK) === 0, 60_000).catch(failed('the relock'))
  viewer.home.hangUp('porch')

  device.kill('SIGTERM')
  await exited
  assert.equal(gpiod.level(LOCK), 0, 'locked after the stop')
  console.log(`arm64 under qemu: start to online ${ready} ms, answer to connected ${connected} ms, driver: ${choice}`)
})

test('the installer refuses bad options and a tampered tarball with a clear message, and changes nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-install-bad-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const prefix = join(dir, 'root')
  // An install already there: a refused run must leave it as it was.
  const kept = join(prefix, 'opt/doorbell/package.json')
  spawnSync('mkdir', ['-p', join(prefix, 'opt/doorbell')])
  writeFileSync(kept, '{"kept":true}\n')
  const run = (args: string[]): { status: number | null, out: string } => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/install-device.mjs'), ...args], { encoding: 'utf8', timeout: 60_000 })
    return { status: r.status, out: `${r.stdout}${r.stderr}` }
  }
  const cases: Array<[string[], RegExp]> = [
    [['--prefix', prefix, '--arch', 'armv7l'], /--arch is arm64 \(a Raspberry Pi\) or x64, not armv7l/],
    [['--prefix', prefix, '--colour'], /unknown option --colour \(usage: install-device\.mjs/],
    [['--prefix'], /--prefix needs a value/],
    [['--prefix', prefix, '--system'], /--system sets up this machine \(users, groups, systemd\): only with --prefix \//]
  ]
  for (const [args, message] of cases) {
    const r = run(args)
    assert.equal(r.status, 2, r.out)
    assert.match(r.out, message)
  }
  // A tarball that is not the one the lock names (a corrupted download, a tampered mirror).
  const packages = join(dir, 'packages')
  spawnSync('cp', ['-r', PACKAGES, packages])
  const tarball = readdirSync(packages).find((f) => f.startsWith('node-datachannel-linux-arm64-gnu-'))
  assert.ok(tarball, `the arm64 tarballs are in ${PACKAGES} (scripts/setup.sh --test)`)
  const bytes = readFileSync(join(packages, tarball))
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1)
  writeFileSync(join(packages, tarball), bytes)
  const tampered = run(['--prefix', prefix, '--arch', 'arm64', '--packages', packages])
  assert.equal(tampered.status, 2, tampered.out)
  assert.match(tampered.out, /@node-datachannel\/linux-arm64-gnu@[\d.]+: the tarball's sha512 is not the one package-lock\.json gives: refusing it/)
  assert.equal(readFileSync(kept, 'utf8'), '{"kept":true}\n', 'the existing install is untouched')
  assert.deepEqual(readdirSync(join(prefix, 'opt/doorbell')), ['package.json'])
})
