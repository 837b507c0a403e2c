/**
 * One client process of the cluster bench's scale step (clusterScale.ts): `count` screens (one
 * paired member's tabs, or anonymous clients for mosquitto) connected to one broker, each subscribed to the home's rings with QoS 1.
 * Tells its parent over IPC how many connected, and each ring's arrival time per screen (the
 * wall clock of this machine, as the parent's). Ends its clients and exits on `stop` or when the
 * parent goes.
 */
import mqtt, { type MqttClient } from 'mqtt'

const [url, memberId, token, viewerId, countText, topic] = process.argv.slice(2) as [string, string, string, string, string, string]
const count = Number(countText)
// '-': a broker without sign-in (the mosquitto comparison row).
const credentials = memberId === '-' ? {} : { username: memberId, password: token }
const now = (): number => performance.timeOrigin + performance.now()
const send = (m: unknown): void => { if (process.connected) process.send?.(m) }
const clients: MqttClient[] = []
let connected = 0
let failed = 0
let lastError = ''

async function connectOne (): Promise<void> {
  const client = mqtt.connect(url, { clientId: `viewer-${viewerId}-${Math.random().toString(36).slice(2, 10)}`, ...credentials, reconnectPeriod: 0, connectTimeout: 60_000, keepalive: 600 })
  clients.push(client)
  try {
    await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('error', reject) })
    client.on('error', () => {})
    client.on('message', (_t, payload) => { send({ ring: (JSON.parse(payload.toString()) as { ringId: string }).ringId, at: now() }) })
    await client.subscribeAsync(topic, { qos: 1 })
    connected++
  } catch (err) {
    failed++
    lastError = (err as Error).message
    client.end(true)
  }
}

for (let i = 0; i < count; i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, count - i) }, connectOne))
  send({ progress: connected, failed })
}
send({ connected, failed, lastError })
process.on('message', (m) => {
  if (m === 'stop') {
    for (const c of clients) c.end(true)
    process.exit(0)
  }
})
process.on('disconnect', () => { process.exit(0) })
