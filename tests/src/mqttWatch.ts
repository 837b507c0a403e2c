/**
 * Prints every message on an MQTT topic filter as one JSON line: {"topic":...,"payload":...}.
 * For tests that watch a broker inside another network namespace (`ip netns exec ns node ...`).
 *   node --import tsx tests/src/mqttWatch.ts mqtt://127.0.0.1:1883 'doorbell/+/+/ring'
 */
import mqtt from 'mqtt'

const [url, filter] = process.argv.slice(2)
if (!url || !filter) {
  console.error('usage: mqttWatch.ts <mqtt-url> <topic-filter>')
  process.exit(2)
}
const client = mqtt.connect(url, { clientId: `watch-${process.pid}`, reconnectPeriod: 200 })
client.on('connect', () => {
  client.subscribe(filter, { qos: 1 }, (err) => { console.log(JSON.stringify(err ? { error: err.message } : { subscribed: filter })) })
})
client.on('message', (topic, payload) => { console.log(JSON.stringify({ topic, payload: payload.toString() })) })
process.on('SIGTERM', () => { client.end(true, {}, () => process.exit(0)) })
