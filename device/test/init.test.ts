import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DeviceConfig, parseConfig } from '@doorbell/core'
import { parseAlsaList } from '../src/init/discover'
import { FakeGpiod, type FakeChip } from './fakeGpiod'

/**
 * `doorbell init` answered from a script, as a person at a fresh Pi would type: it lists what it
 * finds (gpiochips by label from the gpiod tools, /dev/video*, arecord -l / aplay -l), asks again
 * on an answer that will not do, and writes a config the doorbell accepts, readable by root only.
 * Stand-ins for the Pi's hardware: the fake gpiod tools of the driver tests, a folder with
 * video0/video2, and arecord/aplay printing what a USB speakerphone's card looks like.
 */

const MAIN = fileURLToPath(new URL('../src/init/main.ts', import.meta.url))
const PI5: FakeChip[] = [{ name: 'gpiochip0', label: 'pinctrl-rp1', lines: 54 }, { name: 'gpiochip10', label: 'gpio-brcmstb@107d508500', lines: 32 }]
// As alsa-utils prints it for a Jabra-like USB speakerphone on card 2 next to the Pi's HDMI cards.
const ARECORD = `**** List of CAPTURE Hardware Devices ****
card 2: USB [Jabra SPEAK 410 USB], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
  Subdevice #0: subdevice #0
`
const APLAY = `**** List of PLAYBACK Hardware Devices ****
card 0: vc4hdmi0 [vc4-hdmi-0], device 0: MAI PCM i2s-hifi-0 [MAI PCM i2s-hifi-0]
  Subdevices: 1/1
card 2: USB [Jabra SPEAK 410 USB], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
`

interface Rig { dir: string, config: string, env: NodeJS.ProcessEnv }

async function rig (t: { after: (fn: () => Promise<void>) => void }, chips: FakeChip[] = PI5): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-init-'))
  const gpiod = await FakeGpiod.create(2, chips)
  t.after(async () => { await gpiod.close(); await rm(dir, { recursive: true, force: true }) })
  const bin = join(dir, 'bin')
  const dev = join(dir, 'dev')
  await mkdir(bin)
  await mkdir(dev)
  for (const name of ['video0', 'video2', 'gpiochip0']) writeFileSync(join(dev, name), '')
  for (const [tool, out] of [['arecord', ARECORD], ['aplay', APLAY]] as const) {
    writeFileSync(join(dir, `${tool}.txt`), out)
    writeFileSync(join(bin, tool), `#!/bin/sh\n[ "$1" = "-l" ] && exec cat '${join(dir, `${tool}.txt`)}'\nexit 1\n`)
    chmodSync(join(bin, tool), 0o755)
  }
  return {
    dir,
    config: join(dir, 'doorbell.json'),
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, DOORBELL_GPIOD_TOOLS: gpiod.toolDir, DOORBELL_VIDEO_DEV: dev }
  }
}

async function init (r: Rig, answers: string[], extra: string[] = []): Promise<{ code: number | null, out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--config', r.config, '--data-dir', join(r.dir, 'data'), ...extra], { env: r.env, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  child.stdin.end(answers.map((a) => `${a}\n`).join(''))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, out }
}

test('init lists the chips, cameras and sound cards it finds and writes a config the doorbell reads, root-only', async (t) => {
  const r = await rig(t)
  const { code, out } = await init(r, [
    'Garden gate', // name
    'wss://hub.home.arpa/mqtt', // hub
    'https://hub.home.arpa/pair#code=ABCD-EFGH', // invite
    '', // button line: 17
    'maybe', 'y', // wired to ground? asked again
    '17', '22', // the relay on the button's line is refused
    '2', // relay active low
    '2', // camera: /dev/video2
    '1', // microphone: the USB card
    '2' // speaker: the USB card (after HDMI)
  ])
  assert.equal(code, 0, out)
  assert.match(out, /GPIO \(libgpiod 2\.2\.1\): gpiochip0 \[pinctrl-rp1\] \(54 lines\), gpiochip10 \[gpio-brcmstb@107d508500\] \(32 lines\)/)
  assert.match(out, /the Pi's header: gpiochip0 \[pinctrl-rp1\]/)
  assert.match(out, /cameras: .*\/dev\/video0, .*\/dev\/video2/)
  assert.match(out, /microphones: plughw:2,0 \(USB \[Jabra SPEAK 410 USB\], device 0: USB Audio \[USB Audio\]\)/)
  assert.match(out, /answer y or n/)
  assert.match(out, /the relay needs its own line/)
  assert.equal(statSync(r.config).mode & 0o777, 0o600)
  const written = JSON.parse(readFileSync(r.config, 'utf8')) as Record<string, unknown>
  const config = parseConfig(DeviceConfig, written, 'the written config')
  assert.equal(config.deviceId, 'garden-gate')
  assert.equal(config.deviceName, 'Garden gate')
  assert.equal(config.hubUrl, 'wss://hub.home.arpa/mqtt')
  assert.equal(config.pairing?.url, 'https://hub.home.arpa/pair#code=ABCD-EFGH')
  assert.equal(config.dataDir, join(r.dir, 'data'))
  assert.deepEqual(config.gpio, { driver: 'auto', buttonLine: 17, lockLine: 22, buttonActiveLow: true, lockActiveHigh: false, debounceMs: 20 })
  assert.deepEqual(config.camera.source, { kind: 'v4l2', device: `${r.env.DOORBELL_VIDEO_DEV}/video2`, width: 1280, height: 720, fps: 30 })
  assert.deepEqual(config.audio.source, { kind: 'alsa', device: 'plughw:2,0' })
  assert.deepEqual(config.audio.speaker, { kind: 'alsa', device: 'plughw:2,0', optional: false })
})

test('init with no Pi header chip asks for its label; an RTSP camera asks for its URL and offers its sound as the microphone; "-" leaves hub and invite out', async (t) => {
  const r = await rig(t, [{ name: 'gpiochip0', label: 'gpio-mockup-A', lines: 32 }])
  const { code, out } = await init(r, ['', '-', '-', 'gpio-mockup-A', '5', 'y', '6', '1', '4', 'http://cam/x', 'rtsp://192.168.1.20:554/stream1', '4', '4'])
  assert.equal(code, 0, out)
  assert.match(out, /the Pi's header: not found/)
  assert.match(out, /an rtsp:\/\/ or rtsps:\/\/ URL/)
  const config = parseConfig(DeviceConfig, JSON.parse(readFileSync(r.config, 'utf8')), 'written')
  assert.equal(config.hubUrl, undefined)
  assert.equal(config.pairing, undefined)
  assert.equal(config.deviceId, 'front-door')
  assert.deepEqual(config.gpio, { driver: 'auto', chip: 'gpio-mockup-A', buttonLine: 5, lockLine: 6, buttonActiveLow: true, lockActiveHigh: true, debounceMs: 20 })
  assert.deepEqual(config.camera.source, { kind: 'rtsp', url: 'rtsp://192.168.1.20:554/stream1' })
  assert.match(out, /4\) the RTSP camera's own sound \(its audio track\)/)
  assert.deepEqual(config.audio, { ...config.audio, source: { kind: 'camera' }, speaker: { kind: 'none' } })
  assert.match(out, /put the owner's doorbell invite in pairing.url/)
})

test('init changes nothing when the answers run out, when three answers will not do, or when told to keep the existing config', async (t) => {
  const r = await rig(t)
  const ended = await init(r, ['Front door', '-'])
  assert.equal(ended.code, 1)
  assert.match(ended.out, /the input ended before every question was answered; nothing written/)
  assert.equal(existsSync(r.config), false)

  const wrong = await init(r, ['', '-', '-', '200', 'x', '-1'])
  assert.equal(wrong.code, 1)
  assert.match(wrong.out, /no usable answer to "Button line \(BCM\)" after 3 tries; nothing written/)
  assert.equal(existsSync(r.config), false)

  writeFileSync(r.config, '{"deviceName":"kept"}\n')
  const kept = await init(r, ['n'])
  assert.equal(kept.code, 1)
  assert.match(kept.out, /exists\. Replace it\?.*Kept .*nothing written/s)
  assert.equal(readFileSync(r.config, 'utf8'), '{"deviceName":"kept"}\n')

  const bad = await init(r, [], ['--colour'])
  assert.equal(bad.code, 2)
  assert.match(bad.out, /unknown argument --colour/)
})

test('arecord -l / aplay -l lines become plughw devices; other lines are skipped', () => {
  assert.deepEqual(parseAlsaList(APLAY).map((d) => d.device), ['plughw:0,0', 'plughw:2,0'])
  assert.deepEqual(parseAlsaList('aplay: device_list:274: no soundcards found...\n'), [])
})
