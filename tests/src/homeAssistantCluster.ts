import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import { CommandResult, DeviceState, OutOfCallCommand, Presence, RingEvent, encode, newId, topics, type HomeAssistantBrokerSettings } from '@doorbell/core'
import { connectAs, type ClusterHub, type Owner, type PairedDevice } from './cluster'
import { eventually } from './harness'
import { sleep, type DeviceDiscovery, type FakeHomeAssistant } from './homeAssistant'

/** Home Assistant's bridge on a cluster of hubs (the home-assistant-cluster tests): the doorbell, who bridges, one ring and one OPEN. */

export const HOME = 'home'
const QUIET_MS = 1500
const LONG = 60_000
/** What a hub logs when it takes the bridge (hub/src/homeAssistant/bridgeTurns.ts). */
export const BRIDGING = 'this hub runs the bridge to the user\'s broker'
/** What it logs when it gives the bridge up because its lease is gone. */
export const LOST = 'this hub lost the bridge\'s lease'

export interface Doorbell { client: MqttClient, commands: OutOfCallCommand[] }

/**
 * The paired doorbell as an MQTT client on `hub`: online, locked, and answering each command it
 * gets (counted) with a successful result, as the real one does once its DoorGuard accepts it.
 */
export async function doorbellOn (hub: ClusterHub, door: PairedDevice): Promise<Doorbell> {
  const presence = (online: boolean): string => encode(Presence, { deviceId: door.deviceId, deviceName: 'Door', online, at: Date.now() })
  const client = await connectAs(hub.mqttUrl, door, { will: { topic: topics.presence(HOME, door.deviceId), payload: Buffer.from(presence(false)), qos: 1, retain: true } })
  const commands: OutOfCallCommand[] = []
  client.on('message', (topic, payload) => {
    const viewer = topic.split('/')[4]!
    const command = OutOfCallCommand.parse(JSON.parse(payload.toString()))
    commands.push(command)
    client.publish(topics.commandResult(HOME, door.deviceId, viewer), encode(CommandResult, { ok: true, id: command.id, type: command.type }), { qos: 1 })
  })
  await client.subscribeAsync(topics.commandInbox(HOME, door.deviceId), { qos: 1 })
  const state = encode(DeviceState, { deviceId: door.deviceId, deviceName: 'Door', call: { status: 'idle', ringId: null, since: 1 }, participants: [], lock: { status: 'locked', relockAt: null, version: 1, boot: 'b1', error: null }, lastRing: null, at: Date.now() })
  await client.publishAsync(topics.state(HOME, door.deviceId), state, { qos: 1, retain: true })
  await client.publishAsync(topics.presence(HOME, door.deviceId), presence(true), { qos: 1, retain: true })
  return { client, commands }
}

/** The live hubs that said they took the bridge (ever). */
export const bridgingHubs = (hubs: ClusterHub[]): ClusterHub[] => hubs.filter((h) => h.proc.proc.exitCode === null && h.proc.lines.some((l) => l.includes(BRIDGING)))

/** The live hubs bridging now by their own logs: the last of "took it" and "lost it" is "took it". */
export const bridgingNow = (hubs: ClusterHub[]): ClusterHub[] => hubs.filter((h) => {
  if (h.proc.proc.exitCode !== null) return false
  const last = h.proc.lines.findLast((l) => l.includes(BRIDGING) || l.includes(LOST))
  return last?.includes(BRIDGING) === true
})

/** Exactly one of `hubs` is connected to the user's broker (by each hub's API); the others stand by. */
export async function oneConnected (owner: Owner, hubs: ClusterHub[]): Promise<ClusterHub> {
  return await eventually('one hub connected to the user\'s broker', async () => {
    const views: Array<[ClusterHub, HomeAssistantBrokerSettings]> = await Promise.all(hubs.map(async (h) => [h, await owner.on(h).homeAssistantBroker()] as [ClusterHub, HomeAssistantBrokerSettings]))
    const connected = views.filter(([, v]) => v.connection.state === 'connected')
    return connected.length === 1 && views.every(([, v]) => v.broker?.source === 'settings') ? connected[0]![0] : null
  }, LONG)
}

type Components = DeviceDiscovery['components'][string]

/** A ring on the doorbell's hub is one event on the user's broker; an OPEN is one command to the doorbell, opened once. */
export async function ringAndOpen (o: { bell: Doorbell, door: PairedDevice, ha: FakeHomeAssistant, config: DeviceDiscovery }): Promise<void> {
  const lock = o.config.components.door as Extract<Components, { platform: 'lock' }>
  const ring = o.config.components.ring as Extract<Components, { platform: 'event' }>
  const ringId = newId('r')
  await o.bell.client.publishAsync(topics.ring(HOME, o.door.deviceId), encode(RingEvent, { type: 'ring', deviceId: o.door.deviceId, deviceName: 'Door', ringId, at: Date.now(), count: 1 }), { qos: 1 })
  const events = (): number => o.ha.got.filter((m) => m.topic === ring.state_topic && m.payload.includes(ringId)).length
  await eventually('the ring as an event on the user\'s broker', () => events() > 0, LONG)
  const commandsBefore = o.bell.commands.length
  const from = o.ha.got.length
  await o.ha.client.publishAsync(lock.command_topic, 'OPEN', { qos: 1 })
  const opened = (): number => o.ha.got.slice(from).filter((m) => m.topic === lock.json_attributes_topic && (JSON.parse(m.payload) as { result: string }).result === 'opened').length
  await eventually('the OPEN carried out and told', () => opened() > 0, LONG)
  await sleep(QUIET_MS)
  assert.equal(events(), 1, 'one event per ring')
  assert.equal(o.bell.commands.length - commandsBefore, 1, 'one command per OPEN')
  assert.equal(o.bell.commands.at(-1)?.type, 'unlock', 'the door command')
  assert.equal(opened(), 1, 'told once')
}
