/**
 * The demo: a hub and a simulated doorbell with a test-pattern camera, in one process.
 * Press Enter to ring. Ctrl-C stops both (the door is left locked).
 */
import { networkInterfaces } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { startHub } from '@doorbell/hub'
import { startDoorbell } from '@doorbell/device'

const httpPort = Number(process.env.HUB_PORT ?? 8080)
const mqttPort = Number(process.env.MQTT_PORT ?? 1883)
const viewerDir = fileURLToPath(new URL('../viewer/dist', import.meta.url))

const inspect = process.env.INSPECT === '1'
const hub = await startHub({ httpPort, mqttPort, viewerDir, host: process.env.HUB_HOST ?? '0.0.0.0', inspect })
const device = await startDoorbell({
  hubUrl: hub.mqttUrl,
  ringTimeoutSeconds: Number(process.env.RING_TIMEOUT ?? 30),
  relockSeconds: Number(process.env.RELOCK_SECONDS ?? 5),
  inspect
})

const lanUrls = Object.values(networkInterfaces()).flat()
  .filter((a) => a && a.family === 'IPv4' && !a.internal)
  .map((a) => `http://${a!.address}:${httpPort}/`)
console.log(`
  Doorbell demo is running.
    Viewer:   http://localhost:${httpPort}/${lanUrls.length ? `\n    On your LAN: ${lanUrls.join('  ')}` : ''}
    Inspector: http://localhost:${httpPort}/inspector${inspect ? '' : '  (start with INSPECT=1 to switch it on)'}
    Open it in two browsers (add ?name=Kitchen to name one), then
    press Enter here to ring the doorbell. Ctrl-C to stop.
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
