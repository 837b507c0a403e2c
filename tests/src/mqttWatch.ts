/**
 * Prints every message on an MQTT topic filter as one JSON line: {"topic":...,"payload":...}.
 * For tests that watch a broker inside another network namespace (`ip netns exec ns node ...`).
 *
 * The hub has no anonymous clients, so the watcher pairs first, as the home's owner, with the
 * one-time setup code the hub printed, over the hub's HTTP API (as the owner's browser does); with
 * `--invite-device` it then creates a device invite, printed as {"invite": url}, for a doorbell
 * to pair with. The hub's CA is trusted through NODE_EXTRA_CA_CERTS (its dataDir/tls/ca.crt).
 *   NODE_EXTRA_CA_CERTS=data/hub/tls/ca.crt node --import tsx tests/src/mqttWatch.ts \
 *     https://10.0.0.1:8080/ mqtts://127.0.0.1:1883 'doorbell/home/+/ring' --setup-code ABCDEFGHJK [--invite-device porch]
 */
import mqtt from 'mqtt'
import { exportPublicKey, generateSigningKey, newId } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'

const [hubUrl, url, filter] = process.argv.slice(2)
const option = (name: string): string | undefined => { const at = process.argv.indexOf(name); return at > 0 ? process.argv[at + 1] : undefined }
const code = option('--setup-code')
const deviceId = option('--invite-device')
if (!hubUrl || !url || !filter || !code) {
  console.error('usage: mqttWatch.ts <hub-url> <mqtt-url> <topic-filter> --setup-code <code> [--invite-device <deviceId>]')
  process.exit(2)
}

const keys = await generateSigningKey(false)
const viewerId = newId('v')
const paired = await new HubApi({ base: hubUrl }).pair({ kind: 'viewer', code, id: viewerId, name: 'Ring watcher', key: await exportPublicKey(keys.publicKey) })
console.log(JSON.stringify({ paired: paired.member.id, role: paired.member.role }))
if (deviceId) {
  const invite = await new HubApi({ base: hubUrl, token: paired.token }).invite({ kind: 'device', deviceId })
  console.log(JSON.stringify({ invite: invite.url }))
}

const client = mqtt.connect(url, { clientId: `viewer-${viewerId}-watch`, username: paired.member.id, password: paired.token, reconnectPeriod: 200 })
client.on('connect', () => {
  client.subscribe(filter, { qos: 1 }, (err, granted) => {
    const refused = granted?.some((g) => g.qos === 128)
    console.log(JSON.stringify(err || refused ? { error: err?.message ?? `the hub refused the subscription to ${filter}` } : { subscribed: filter }))
  })
})
client.on('error', (err) => { console.log(JSON.stringify({ error: err.message })) })
client.on('message', (topic, payload) => { console.log(JSON.stringify({ topic, payload: payload.toString() })) })
process.on('SIGTERM', () => { client.end(true, {}, () => process.exit(0)) })
