/**
 * What an operator's SUBSCRIBE costs as the home grows: a real hub (startHub, plain MQTT on
 * 127.0.0.1) with 10, 100 and 1,000 paired devices in the operator's zone, and an mqtt.js
 * operator subscribing to each device's four event topics one SUBSCRIBE per device, as the
 * console does (viewer/src/lib/paths/lan/hubClient.ts). The figure is the SUBSCRIBE → SUBACK
 * time, p50 over every device; it should stay flat as devices are added.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { exportPublicKey, generateSigningKey, memoryLogger, newId, topics } from '@doorbell/core'
import { startHub } from '@doorbell/hub'
import { percentile, round, type Bench, type Figure } from './lib'

const HOME = 'home'
const ZONE = 'street'
const eventTopics = (device: string): string[] => [topics.ring(HOME, device), topics.state(HOME, device), topics.presence(HOME, device), topics.calls(HOME, device)]

export const subscribeBench: Bench = async ({ smoke, log }) => {
  const counts = smoke ? [10, 100] : [10, 100, 1000]
  const dataDir = await mkdtemp(join(tmpdir(), 'doorbell-bench-subscribe-'))
  const hub = await startHub({ host: '127.0.0.1', httpPort: 0, mqttPort: 0, tls: 'off', dataDir, mesh: { enabled: false } }, { log: memoryLogger([], 'hub') })
  const figures: Figure[] = []
  try {
    const { code } = await hub.trust.invite('console', { kind: 'viewer', role: 'operator', zones: [ZONE] }, hub.url)
    const viewerId = newId('v')
    const key = await generateSigningKey(false)
    const operator = await hub.trust.pair({ kind: 'viewer', code, id: viewerId, name: 'Operator', key: await exportPublicKey(key.publicKey) })
    const devices: string[] = []
    for (const n of counts) {
      while (devices.length < n) {
        const id = `cam-${devices.length}`
        const invite = await hub.trust.invite('console', { kind: 'device', deviceId: id, zones: [ZONE] }, hub.url)
        await hub.trust.pair({ kind: 'device', code: invite.code, id, name: id })
        devices.push(id)
      }
      const client = await mqtt.connectAsync(hub.mqttUrl, { clientId: `viewer-${viewerId}-n${n}`, username: operator.member.id, password: operator.token, reconnectPeriod: 0, connectTimeout: 10_000 })
      const samples: number[] = []
      let refused = 0
      try {
        for (const d of devices) {
          const t0 = performance.now()
          const granted = await client.subscribeAsync(eventTopics(d), { qos: 1 })
          samples.push(performance.now() - t0)
          refused += granted.filter((g) => (g.qos & 0x80) !== 0).length
        }
      } finally {
        await client.endAsync()
      }
      if (refused > 0) throw new Error(`${refused} of the operator's filters were refused`)
      log(`subscribe: ${n} devices, SUBSCRIBE → SUBACK p50 ${round(percentile(samples, 50), 3)} ms, p99 ${round(percentile(samples, 99), 3)} ms`)
      figures.push({
        id: `subscribe-operator-p50-${n}`,
        name: `an operator's SUBSCRIBE (4 topics of one device) → SUBACK, p50, ${n} devices in the home`,
        value: round(percentile(samples, 50), 3),
        unit: 'ms',
        conditions: `127.0.0.1, plain MQTT; startHub (aedes + gate); ${n} paired devices in the operator's one zone; one mqtt.js operator (signed in as a paired member) subscribing QoS 1 to each device's ring, state, presence and calls, one SUBSCRIBE per device, in turn; p50 of ${samples.length}; ${availableParallelism()} CPUs`,
        group: 'broker'
      })
    }
  } finally {
    await hub.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
  return figures
}
