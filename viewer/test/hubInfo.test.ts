import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hubSocketUrl } from '../src/composables/hubInfo'

test('the MQTT WebSocket is on the page\'s own origin, secure when the page is', () => {
  const info = { homeId: 'home', hubName: 'Hub', mqttPath: '/mqtt', inspect: false }
  assert.equal(hubSocketUrl(info, { protocol: 'http:', host: 'hub.local:8080' }), 'ws://hub.local:8080/mqtt')
  assert.equal(hubSocketUrl(info, { protocol: 'https:', host: 'hub.local' }), 'wss://hub.local/mqtt')
})
