/**
 * The demo: a hub and a simulated doorbell with a test-pattern camera, in one process.
 * Press Enter to ring. Ctrl-C stops both (the door is left locked).
 */
import { networkInterfaces } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { startHub } from '@doorbell/hub'
import { startDoorbell } from '@doorbell/device'

const httpPort = Number(process.env.HUB_PORT ?? 8080)
const mqttPort = Number(process.env.MQTT_PORT ?? 1883)
const viewerDir = fileURLToPath(new URL('../viewer/dist', import.meta.url))

const inspect = process.env.INSPECT === '1'
// HTTPS by default (phones need it for the camera, the microphone and WebCrypto); TLS=off serves
// plain HTTP on this machine only, for development.
const tlsOff = process.env.TLS === 'off'
const hub = await startHub({ httpPort, mqttPort, viewerDir, host: process.env.HUB_HOST ?? (tlsOff ? '127.0.0.1' : '0.0.0.0'), inspect, tls: tlsOff ? 'off' : 'auto' })

// The demo doorbell pairs itself with a device invite from the hub's console, as an owner's
// invite would; a pairing left from another hub's data is dropped first.
const deviceDataDir = 'data/device'
const paired = hub.trust.members().some((m) => m.kind === 'device' && m.subject === 'front-door' && m.revokedAt === null)
if (!paired) rmSync(join(deviceDataDir, 'pairing.json'), { force: true })
const invite = paired
  ? undefined
  : await hub.trust.invite('console', { kind: 'device', deviceId: 'front-door' }, hub.url, hub.tls ? `&ca=${hub.tls.fingerprint}` : '')
const device = await startDoorbell({
  dataDir: deviceDataDir,
  ...(invite ? { pairing: { url: invite.url } } : {}),
  hubUrl: hub.mqttUrl,
  ringTimeoutSeconds: Number(process.env.RING_TIMEOUT ?? 30),
  relockSeconds: Number(process.env.RELOCK_SECONDS ?? 5),
  // The demo's microphone: a test tone, so a new user hears the doorbell when answering.
  audio: { source: { kind: 'test-tone', frequencyHz: 660 } },
  inspect
})

const scheme = hub.tls || hub.url.startsWith('https') ? 'https' : 'http'
const lanUrls = tlsOff
  ? []
  : Object.values(networkInterfaces()).flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => `${scheme}://${a!.address}:${httpPort}/`)
const setup = hub.setupCode
console.log(`
  Doorbell demo is running.
    Viewer:   ${scheme}://localhost:${httpPort}/${lanUrls.length ? `\n    On your LAN: ${lanUrls.join('  ')}` : ''}
    Inspector: ${scheme}://localhost:${httpPort}/inspector${inspect ? '' : '  (start with INSPECT=1 to switch it on)'}
    Operator console: ${scheme}://localhost:${httpPort}/console  (for operators: invite one from Home settings)
    Camera node: ${scheme}://localhost:${httpPort}/camera  (any browser with a camera, with a doorbell-or-camera invite)${hub.tls ? `
    Certificate: install the home's CA from ${scheme}://localhost:${httpPort}/ca.crt
                 (SHA-256 ${hub.tls.fingerprint}); until then the browser warns.` : ''}
    ${setup ? `Owner setup code: ${setup.code}  (pair your first browser with it; one use, 24 h)` : 'Paired: invite more screens from Home settings in the viewer.'}
    Press Enter here to ring the doorbell. Ctrl-C to stop.
`)

const rl = createInterface({ input: process.stdin })
rl.on('line', () => { device.ring() })

let stopping = false
const stop = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  rl.close()
  await device.stop()
  await hub.stop()
  process.exit(0)
}
process.on('SIGINT', () => { void stop() })
process.on('SIGTERM', () => { void stop() })
