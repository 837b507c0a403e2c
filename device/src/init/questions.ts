/**
 * The questions `doorbell init` asks, in order, and the config they make. Platform-free apart from
 * the answers: `ask` is supplied (a terminal in main.ts, a script in the tests). Each answer is
 * checked as it is given and asked again when it will not do; the finished config is parsed by
 * the same schema the doorbell reads it with, so init never writes a config the doorbell refuses.
 */
import { DeviceConfig, parseConfig, type DeviceConfigInput } from '@doorbell/core'
import { describeChip } from '../drivers'
import type { Found } from './discover'

/** Shows a question (with its default in brackets) and resolves with the line typed, trimmed. */
export type Ask = (question: string) => Promise<string>

export class InitError extends Error {
  override name = 'InitError'
}

/** How often one question is asked again before init gives up (a script answering wrongly must not loop). */
const TRIES = 3

interface Choice<T> { label: string, value: T }
type AudioChoice = { kind: 'alsa', device: string } | { kind: 'pulse' } | { kind: 'none' }
type MicrophoneChoice = AudioChoice | { kind: 'camera' }

async function question<T> (ask: Ask, say: (line: string) => void, text: string, fallback: string, parse: (answer: string) => T | string): Promise<T> {
  for (let i = 0; i < TRIES; i++) {
    const answer = (await ask(fallback === '' ? `${text}: ` : `${text} [${fallback}]: `)).trim()
    const result = parse(answer === '' ? fallback : answer)
    if (typeof result !== 'string') return result
    say(`  ${result}`)
  }
  throw new InitError(`no usable answer to "${text}" after ${TRIES} tries`)
}

async function choose<T> (ask: Ask, say: (line: string) => void, text: string, choices: Array<Choice<T>>, fallback = 1): Promise<T> {
  say(text)
  choices.forEach((c, i) => { say(`  ${i + 1}) ${c.label}`) })
  return await question(ask, say, 'Choose', String(fallback), (a) => {
    const n = Number(a)
    return Number.isInteger(n) && n >= 1 && n <= choices.length ? choices[n - 1]!.value : `answer a number from 1 to ${choices.length}`
  })
}

const yesNo = (a: string): boolean | string => /^(y|yes)$/i.test(a) ? true : /^(n|no)$/i.test(a) ? false : 'answer y or n'
const line = (a: string): number | string => /^\d+$/.test(a) && Number(a) <= 127 ? Number(a) : 'a BCM line number, 0-127 (BCM17 is header pin 11)'
const text = (max: number) => (a: string): string | { value: string } => a.length >= 1 && a.length <= max ? { value: a } : `1 to ${max} characters`
const slug = (name: string): string => name.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'doorbell'

/** Asks every question and returns the config, checked. `dataDir`: where the installed doorbell keeps its pairing. */
export async function askConfig (found: Found, ask: Ask, say: (line: string) => void, dataDir: string): Promise<DeviceConfig> {
  say('What was found on this machine:')
  if (found.gpiod) {
    say(`  GPIO (libgpiod ${found.gpiod.release}): ${found.gpiod.chips.length ? found.gpiod.chips.map((c) => `${describeChip(c)} (${c.lines} lines)`).join(', ') : 'no chips'}`)
    say(`  the Pi's header: ${found.gpiod.header ? describeChip(found.gpiod.header) : 'not found (give the chip label below)'}`)
  }
  say(`  cameras: ${found.videoDevices.length ? found.videoDevices.join(', ') : 'no /dev/video*'}`)
  say(`  microphones: ${found.microphones.length ? found.microphones.map((d) => `${d.device} (${d.description})`).join(', ') : 'none'}`)
  say(`  speakers: ${found.speakers.length ? found.speakers.map((d) => `${d.device} (${d.description})`).join(', ') : 'none'}`)
  for (const note of found.notes) say(`  note: ${note}`)

  const deviceName = (await question(ask, say, 'Name of this doorbell', 'Front door', text(64))).value
  const hub = await question(ask, say, 'Hub address (wss://name/mqtt; "-": find it on the LAN by mDNS)', '-',
    (a) => a === '-' ? { value: undefined } : /^(mqtts?|wss?):\/\/\S+$/.test(a) ? { value: a } : 'starts with wss://, ws://, mqtts:// or mqtt://, or "-"')
  const invite = await question(ask, say, 'The owner\'s doorbell invite URL ("-": pair later)', '-',
    (a) => a === '-' ? { value: undefined } : URL.canParse(a) && /^https?:/.test(a) ? { value: a } : 'the https://…/pair#code=… link the owner made, or "-"')

  say('GPIO: BCM line numbers (docs/hardware.md has the wiring).')
  const chip = found.gpiod?.header ? undefined : await question(ask, say, 'GPIO chip label ("-": the Pi\'s own)', '-', (a) => a === '-' ? { value: undefined } : text(64)(a))
  const buttonLine = await question(ask, say, 'Button line (BCM)', '17', line)
  const buttonActiveLow = await question(ask, say, 'Button wired to ground (pressed = low, with pull-up)? y/n', 'y', yesNo)
  const lockLine = await question(ask, say, 'Lock relay line (BCM)', '27', (a) => {
    const n = line(a)
    return n === buttonLine ? 'the relay needs its own line, not the button\'s' : n
  })
  const lockActiveHigh = await choose(ask, say, 'The relay module opens the door when its input is:', [
    { label: 'high (most relay modules marked "high level trigger")', value: true },
    { label: 'low ("low level trigger" modules)', value: false }
  ])

  const cameras: Array<Choice<NonNullable<DeviceConfigInput['camera']>['source']>> = [
    ...found.videoDevices.map((device) => ({ label: `USB webcam ${device} (V4L2, 1280x720@30)`, value: { kind: 'v4l2' as const, device } })),
    { label: 'Pi camera (rpicam-vid, hardware H.264)', value: { kind: 'picam' as const } },
    { label: 'an RTSP camera (asks for its URL)', value: { kind: 'rtsp' as const, url: '' } },
    { label: 'test pattern (no camera)', value: { kind: 'test-pattern' as const } }
  ]
  let source = await choose(ask, say, 'Camera:', cameras)
  if (source?.kind === 'rtsp') {
    const url = await question(ask, say, 'RTSP URL', '', (a) => /^rtsps?:\/\/\S+$/.test(a) ? { value: a } : 'an rtsp:// or rtsps:// URL')
    source = { kind: 'rtsp', url: url.value }
  }
  const microphone = await choose<MicrophoneChoice>(ask, say, 'Microphone:', [
    ...found.microphones.map((d) => ({ label: `${d.device} (${d.description})`, value: { kind: 'alsa' as const, device: d.device } })),
    { label: 'PulseAudio / PipeWire default', value: { kind: 'pulse' as const } },
    { label: 'none', value: { kind: 'none' as const } },
    // Last, so the numbers above stay the same with any camera.
    ...(source?.kind === 'rtsp' ? [{ label: 'the RTSP camera\'s own sound (its audio track)', value: { kind: 'camera' as const } }] : [])
  ])
  const speaker = await choose<AudioChoice>(ask, say, 'Speaker:', [
    ...found.speakers.map((d) => ({ label: `${d.device} (${d.description})`, value: { kind: 'alsa' as const, device: d.device } })),
    { label: 'PulseAudio / PipeWire default', value: { kind: 'pulse' as const } },
    { label: 'none', value: { kind: 'none' as const } }
  ])

  const input: DeviceConfigInput = {
    deviceId: slug(deviceName),
    deviceName,
    ...(hub.value ? { hubUrl: hub.value } : {}),
    ...(invite.value ? { pairing: { url: invite.value } } : {}),
    dataDir,
    gpio: { driver: 'auto', buttonLine, lockLine, buttonActiveLow, lockActiveHigh, ...(chip?.value ? { chip: chip.value } : {}) },
    camera: { source },
    audio: { source: microphone, speaker }
  }
  return parseConfig(DeviceConfig, input, 'the answers')
}

/** The config as written: only what was asked (defaults stay defaults, so a later release's defaults apply). */
export function configFile (config: DeviceConfig): Record<string, unknown> {
  const { deviceId, deviceName, hubUrl, pairing, dataDir, gpio, camera, audio } = config
  return { deviceId, deviceName, ...(hubUrl ? { hubUrl } : {}), ...(pairing ? { pairing } : {}), dataDir, gpio, camera: { source: camera.source }, audio: { source: audio.source, speaker: audio.speaker } }
}
