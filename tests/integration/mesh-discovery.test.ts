/**
 * Zero-configuration discovery across a real interface: two network namespaces made by this
 * test, joined by a veth pair. A hub (and a second hub of another home) runs in one, a doorbell
 * with no hub address in the other. The doorbell finds the hub of its home by mDNS, asks it where
 * its broker is (the hub protocol), connects over MQTT with TLS, and rings; the other home's hub
 * refuses it. The hubs run as they do at home (tls 'auto': HTTPS and MQTTS with their local CA);
 * the owner pairs with the setup code the hub printed and invites the doorbell, which pairs on
 * its first start with that invite (its CA pinned by the fingerprint in it) and keeps the pairing.
 * Started ten times over; each run's start -> hub found -> MQTT connected is printed, with medians.
 * Needs root (ip netns, veth); everything stays inside the namespaces and is removed after.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually } from '../src/harness'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const tag = `${process.pid % 10000}`
const NS_HUB = `doorbell-hub-${tag}`
const NS_DEVICE = `doorbell-dev-${tag}`
const HUB_IP = '10.231.0.1'
const DEVICE_IP = '10.231.0.2'
const RUNS = 10

interface Proc { proc: ChildProcess, lines: Array<{ at: number, text: string }>, started: number }

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8' })

/** A program run inside a namespace; its output lines are kept with the time they arrived. */
function runIn (ns: string, args: string[], name: string, env: Record<string, string> = {}): Proc {
  const started = Date.now()
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const p: Proc = { proc, lines: [], started }
  let partial = ''
  const take = (d: Buffer): void => {
    const parts = (partial + d.toString()).split('\n')
    partial = parts.pop()!
    for (const text of parts) p.lines.push({ at: Date.now(), text: `${name}: ${text}` })
  }
  proc.stdout!.on('data', take)
  proc.stderr!.on('data', take)
  return p
}

const lineWith = (p: Proc, needle: string): { at: number, text: string } | undefined => p.lines.find((l) => l.text.includes(needle))

async function stop (p: Proc | null): Promise<void> {
  if (!p || p.proc.exitCode !== null) return
  const exited = new Promise((resolve) => p.proc.once('exit', resolve))
  p.proc.kill('SIGTERM')
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
  if (p.proc.exitCode === null) p.proc.kill('SIGKILL')
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]! }

describe('LAN mesh: a doorbell with no hub address finds the hub of its home across a real interface', () => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-mesh-'))
  const procs: Proc[] = []
  let hub: Proc
  let other: Proc
  let watch: Proc
  let invite: string

  before(async () => {
    // Two namespaces and a veth pair between them; multicast (mDNS) routed onto the link.
    ip('netns', 'add', NS_HUB)
    ip('netns', 'add', NS_DEVICE)
    ip('link', 'add', `vh${tag}`, 'type', 'veth', 'peer', 'name', `vd${tag}`)
    ip('link', 'set', `vh${tag}`, 'netns', NS_HUB)
    ip('link', 'set', `vd${tag}`, 'netns', NS_DEVICE)
    for (const [ns, dev, addr] of [[NS_HUB, `vh${tag}`, HUB_IP], [NS_DEVICE, `vd${tag}`, DEVICE_IP]] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev)
      ip('-n', ns, 'link', 'set', dev, 'up')
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev)
    }

    const hubConfig = (home: string, port: number, sub: string): string => {
      const path = join(dir, `${sub}.json`)
      writeFileSync(path, JSON.stringify({ homeId: home, hubName: `Hub of ${home}`, httpPort: port, mqttPort: port + 1, dataDir: join(dir, sub), mesh: { tcpPort: port + 2, directPort: port + 3 } }))
      return path
    }
    hub = runIn(NS_HUB, ['hub/src/main.ts', '--config', hubConfig('home', 18080, 'hub')], 'hub')
    other = runIn(NS_HUB, ['hub/src/main.ts', '--config', hubConfig('next-door', 28080, 'other-hub')], 'other-hub')
    procs.push(hub, other)
    await eventually('both hubs on the mesh', () => lineWith(hub, 'on the LAN mesh') && lineWith(other, 'on the LAN mesh'), 30_000)
    // The owner pairs with the hub's one-time setup code, invites the doorbell, and watches its rings.
    const setup = await eventually('the hub\'s setup code', () => /setup code code=(\S+)/.exec(lineWith(hub, 'no owner yet')?.text ?? '')?.[1], 10_000)
    watch = runIn(NS_HUB, [
      'tests/src/mqttWatch.ts', `https://${HUB_IP}:18080/`, 'mqtts://127.0.0.1:18081', 'doorbell/home/+/ring', '--setup-code', setup, '--invite-device', 'porch'
    ], 'watch', { NODE_EXTRA_CA_CERTS: join(dir, 'hub', 'tls', 'ca.crt') })
    procs.push(watch)
    await eventually('the ring watcher', () => lineWith(watch, 'subscribed') ?? (lineWith(watch, 'error') ? Promise.reject(new Error(watch.lines.map((l) => l.text).join('\n'))) : undefined), 20_000)
    invite = (JSON.parse(lineWith(watch, '"invite"')!.text.replace(/^watch: /, '')) as { invite: string }).invite
    assert.match(invite, new RegExp(`^https://${HUB_IP.replaceAll('.', '\\.')}:18080/pair#code=\\w+&ca=[0-9A-F:]+$`))
  })

  after(async () => {
    for (const p of procs) await stop(p)
    for (const ns of [NS_HUB, NS_DEVICE]) { try { ip('netns', 'del', ns) } catch {} }
    rmSync(dir, { recursive: true, force: true })
  })

  test(`found by mDNS, connected, rings through the hub of its home (${RUNS} starts)`, async (t) => {
    const config = join(dir, 'device.json')
    writeFileSync(config, JSON.stringify({
      homeId: 'home',
      deviceId: 'porch',
      deviceName: 'Porch',
      // Redeemed on the first start only; the pairing is kept in dataDir for the nine starts after.
      pairing: { url: invite },
      dataDir: join(dir, 'device'),
      camera: { source: { kind: 'test-pattern', width: 160, height: 120, fps: 5 } }
    }))
    const identities = new Set<string>()
    const found: number[] = []
    const connected: number[] = []
    const total: number[] = []
    for (let run = 1; run <= RUNS; run++) {
      const device = runIn(NS_DEVICE, ['device/src/main.ts', '--config', config], 'device')
      procs.push(device)
      try {
        const mesh = await eventually('the device looking by mDNS', () => lineWith(device, 'looking for the hub of this home by mDNS'), 30_000)
        const hubFound = await eventually('the device to find the hub', () => lineWith(device, 'found the hub'), 20_000)
        const onMesh = await eventually('the device\'s identity', () => lineWith(device, 'on the LAN mesh'), 10_000)
        identities.add(onMesh.text.replace(/^.*on the LAN mesh /, '').replace(/ discovery=.*$/, ''))
        const mqttUp = await eventually('the device connected to the hub', () => lineWith(device, 'connected to hub'), 20_000)
        assert.match(hubFound.text, new RegExp(`mqtt=mqtts://${HUB_IP.replaceAll('.', '\\.')}:18081`), 'the broker of its own home, over TLS, at the address it reached the hub on')
        assert.equal(lineWith(device, 'paired with the home') !== undefined, run === 1, 'paired on the first start only')
        found.push(hubFound.at - mesh.at)
        connected.push(mqttUp.at - hubFound.at)
        total.push(mqttUp.at - device.started)
        t.diagnostic(`run ${run}: process start -> mDNS start ${mesh.at - device.started} ms, -> hub found +${hubFound.at - mesh.at} ms, -> MQTT connected +${mqttUp.at - hubFound.at} ms (process start -> connected ${mqttUp.at - device.started} ms)`)
        if (run === 1) {
          // A ring, as a press (Enter on the simulated doorbell), arrives at the hub of its home.
          const before = watch.lines.length
          device.proc.stdin!.write('\n')
          const ring = await eventually('the ring at the hub', () => watch.lines.slice(before).find((l) => l.text.includes('"topic":"doorbell/home/porch/ring"')), 10_000)
          assert.match(ring.text, /\\"ringId\\"/)
        }
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${[...device.lines, ...hub.lines.slice(-10)].map((l) => l.text).join('\n')}`)
      } finally {
        await stop(device)
      }
    }
    // Its identity (peer id, webrtc-direct certhash) and so its addresses are the same on every start.
    assert.equal(identities.size, 1, [...identities].join('\n'))
    assert.match([...identities][0]!, /webrtc-direct\/certhash\//)
    // The hub of the home lists it; the other home's hub refused it and never listed it.
    assert.ok(lineWith(hub, 'found a device device=porch'), 'the home hub lists the device')
    assert.ok(lineWith(other, 'a device of another home asked; not ours device=porch'), 'the other hub was asked and said no')
    assert.equal(lineWith(other, 'found a device'), undefined)
    assert.equal(lineWith(other, 'client connected client=device-porch'), undefined, 'the device never connected to the other home\'s broker')
    const line = `mDNS discovery across a veth pair, median of ${RUNS}: mDNS start -> hub found ${median(found)} ms, hub found -> MQTT connected ${median(connected)} ms, process start -> MQTT connected ${median(total)} ms`
    t.diagnostic(line)
    console.log(line)
  })
})
