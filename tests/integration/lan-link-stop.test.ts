import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import { memoryLogger } from '@doorbell/core'
import { MqttLink } from '@doorbell/device/lan'
import { eventually } from '../src/harness'

/**
 * A hub that takes the doorbell's goodbye and never acknowledges it (a hub wedged under load, a
 * half-open connection) must not hold the doorbell's stop: the modules after the link (the mesh,
 * the camera, the lock) stop only once it returns. Real Aedes, whose publish hook never answers
 * for the goodbye.
 */
test('a stop whose goodbye the hub never acknowledges still ends, after its grace', { timeout: 20_000 }, async (t) => {
  const seen: string[] = []
  const broker = await Aedes.createBroker({
    authorizePublish: (_client, packet, callback) => {
      seen.push(packet.topic)
      // The goodbye (presence, offline) is held for ever; everything else goes through.
      if (packet.topic.endsWith('/presence') && packet.payload.toString().includes('"online":false')) return
      callback(null)
    }
  })
  const server = createServer((socket) => broker.handle(socket))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let link: MqttLink | null = null
  t.after(async () => {
    // Whatever the test found, nothing stays connected (else the server would wait for it).
    await new Promise<void>((resolve) => { link ? link.client.end(true, {}, () => resolve()) : resolve() })
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await new Promise<void>((resolve) => broker.close(() => resolve()))
  })
  const lines: string[] = []
  link = new MqttLink({
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    homeId: 'home',
    deviceId: 'front-door',
    log: memoryLogger(lines, 'mqtt'),
    auth: { memberId: 'm-front-door', token: 't', ca: null },
    stopGraceMs: 500
  })
  const hubLink = link
  await eventually('connected to the hub', () => hubLink.client.connected, 5000)
  await eventually('its presence published', () => seen.some((topic) => topic.endsWith('/presence')), 5000)

  const stopping = hubLink.stop().then(() => 'stopped')
  const waited = await Promise.race([stopping, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5000))])
  assert.equal(waited, 'stopped', 'the stop ended without the acknowledgement')
  assert.ok(seen.filter((topic) => topic.endsWith('/presence')).length >= 2, 'the goodbye was sent')
  assert.equal(hubLink.client.connected, false)
})
