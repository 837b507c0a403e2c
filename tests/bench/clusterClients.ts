/**
 * One client process of the cluster bench's scale step (clusterScale.ts): `count` screens (one
 * paired member's tabs, or anonymous clients for mosquitto) connected to one broker, each subscribed to the home's rings with QoS 1.
 * Tells its parent over IPC how many connected, and each ring's arrival time per screen (the
 * wall clock of this machine, as the parent's). Ends its clients and exits on `stop` or when the
 * parent goes.
 *
 * Each screen connects as the app's does (viewer/src/lib/paths/lan/hubClient.ts: mqtt.js, a new
 * attempt RETRY_MS after a connection ends). A broker in a connect storm closes connections it
 * cannot take yet (a hub: more than `mqtt.maxPendingConnections` waiting to sign in, or a CONNECT
 * not read within `mqtt.connectTimeoutMs`) with no CONNACK; a screen that waited only for
 * `connect` or `error` then waited for ever, which is why the 3-hub row once stopped at ~9,200 of
 * 10,000 (docs/cluster.md). Every attempt that ends without a CONNACK is counted by kind.
 */
import mqtt, { type MqttClient } from 'mqtt'

const [url, memberId, token, viewerId, countText, topic] = process.argv.slice(2) as [string, string, string, string, string, string]
const count = Number(countText)
/** As the app's hub client. */
const RETRY_MS = 1000
/** A closed attempt sooner than this after it began was refused at once (a hub's limit of connections waiting to sign in); later, timed out. */
const AT_ONCE_MS = 1000
// '-': a broker without sign-in (the mosquitto comparison row).
const credentials = memberId === '-' ? {} : { username: memberId, password: token }
const now = (): number => performance.timeOrigin + performance.now()
const send = (m: unknown): void => { if (process.connected) process.send?.(m) }
const clients: MqttClient[] = []
let connected = 0
let failed = 0
let lastError = ''
/** Attempts that ended without a CONNACK, by kind (the screen tried again), and refusals that end a screen. */
const kinds: Record<string, number> = {}
const note = (kind: string): void => { kinds[kind] = (kinds[kind] ?? 0) + 1 }

async function connectOne (): Promise<void> {
  const client = mqtt.connect(url, { clientId: `viewer-${viewerId}-${Math.random().toString(36).slice(2, 10)}`, ...credentials, reconnectPeriod: RETRY_MS, connectTimeout: 30_000, keepalive: 600 })
  clients.push(client)
  let settled = false
  let began = now()
  /** Why the attempt under way failed, if the client said (a reset, a CONNACK refusal); else told by its timing. */
  let reason: string | null = null
  client.on('connect', () => { settled = true })
  client.on('reconnect', () => { began = now(); reason = null })
  client.on('close', () => {
    if (settled) return
    note(reason ?? (now() - began < AT_ONCE_MS ? 'closed at once, no CONNACK' : 'closed later, no CONNACK'))
    reason = null
  })
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => { resolve() })
      client.on('error', (err: Error & { code?: number | string }) => {
        if (settled) return
        reason = typeof err.code === 'number' ? `CONNACK ${err.code}` : err.message
        // Refused credentials (4, 5): the app forgets its pairing; it does not come back.
        if (err.code === 4 || err.code === 5) reject(err)
      })
    })
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
  send({ progress: connected, failed, kinds })
}
send({ connected, failed, lastError, kinds })
process.on('message', (m) => {
  if (m === 'stop') {
    for (const c of clients) c.end(true)
    process.exit(0)
  }
})
process.on('disconnect', () => { process.exit(0) })
