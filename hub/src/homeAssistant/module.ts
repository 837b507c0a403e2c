import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import {
  ROOT, decodeTopicMessage, decodeWord, type CallRecord, type SnapshotEvent, HomeAssistantStatus, integrationTopics, LockCommand, parseIntegrationTopic,
  type DeviceState, type HomeAssistantBroker, type HubConfig, type IntegrationEntity, type Logger, type Member, type RingEvent, type Startable
} from '@doorbell/core'
import type { Principal } from '../broker/gate'
import type { Trust } from '../trust/trust'
import { AVAILABLE, discoveryConfig, LOCK_STATE, NOT_AVAILABLE, objectIdOf, OFF, ON, PRESS } from './discovery'
import { userBroker, type BridgeWill, type Outlet, type UserBroker } from './userBroker'
import { doorOpener } from './doorOpener'
import { brokerSettings, type BrokerSettings } from './brokerSettings'
import { bridgeTurns, type BridgeLease } from './bridgeTurns'

export interface HomeAssistantDeps {
  config: HubConfig
  trust: () => Trust
  broker: () => Aedes
  principalOf: (client: Client) => Principal | null
  log: Logger
  /** The user's broker client (tests inject their own); default from `homeAssistant.broker`. */
  userBroker?: (will: BridgeWill) => UserBroker
  /** A cluster: settings in PostgreSQL, one hub (holding `lease`) bridging, the other hubs' doorbells heard (README). */
  cluster?: {
    settings: () => BrokerSettings
    lease: BridgeLease
    observeOthers: (patterns: string[], listener: (packet: { topic: string, payload: Buffer | string }) => void) => void
    leasePollMs?: number
  }
}

/** One place the bridge publishes to, and what it last published retained there (sent again when it reconnects). */
interface Destination {
  outlet: Outlet
  /** The hub's own availability there (the user's broker); absent on the hub's own broker. */
  bridge?: BridgeWill
  retained: Map<string, string>
}

/** What the bridge knows of one paired doorbell, from what it published. */
interface Doorbell {
  deviceId: string
  name: string
  /** Its state carried a lock: the lock entity is in its config. */
  hasLock: boolean
  /** The last ring's attributes as last published (JSON), to publish only what changed. */
  lastRing: LastRingAttributes | null
}

/** The last ring sensor's attributes: how the ring went, as far as the hub knows yet. */
interface LastRingAttributes {
  ring_id: string
  at: string
  /** `ringing` until the doorbell says how it ended. */
  outcome: 'ringing' | 'answered' | 'missed'
  /** Who answered (their names), from the doorbell's call record. */
  answered_by: string[]
  /** How long the answered call lasted, in seconds; null until it ends. */
  duration_s: number | null
}

/**
 * The `homeAssistant` module: the hub's bridge to Home Assistant on its own broker. It reads what
 * the doorbells already publish (ring events, retained state, presence and its will) and publishes
 * Home Assistant's side of it: one retained device-based discovery config per paired doorbell,
 * the entities' states, and an `event` per ring (never retained). Every config is republished on
 * Home Assistant's birth (`<prefix>/status` = `online`); a removed doorbell's config is cleared.
 * `OPEN` and `UNLOCK` from Home Assistant are signed by the hub as the integration's member and
 * sent to the doorbell, which checks and audits them like any member's (`doorOpener.ts`,
 * docs/home-assistant.md); how it went is the lock's attributes. Starts after `broker` and before `mqtt`, so it
 * sees each doorbell's first message (the broker keeps retained messages in memory only).
 */
/** The module, and what Home settings may change in it at run time. */
export interface HomeAssistantModule extends Startable {
  /** The user's broker as set in Home settings (kept in the data folder). */
  readonly settings: BrokerSettings
  /** Connects to this broker instead (null: to none), without a restart. */
  setBroker: (config: HomeAssistantBroker | null) => Promise<void>
  brokerStatus: () => { state: 'connected' | 'connecting' | 'off', problem: string | null }
}

export function homeAssistantModule (d: HomeAssistantDeps): HomeAssistantModule {
  const { homeId } = d.config
  const prefix = d.config.homeAssistant.discoveryPrefix
  const log = d.log
  const doorbells = new Map<string, Doorbell>()
  let stops: Array<() => void> = []

  const own: Destination = {
    retained: new Map(),
    outlet: {
      name: 'the hub\'s broker',
      publish (topic, payload, retain) {
        d.broker().publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false }, (err) => {
          if (err) log.warn('could not publish for Home Assistant', { topic, error: err.message })
        })
        return true
      }
    }
  }
  const will: BridgeWill = { topic: integrationTopics.bridge(homeId), online: AVAILABLE, offline: NOT_AVAILABLE }
  // The user's broker: set in Home settings (brokerSettings.ts), else in the hub's config; changed
  // at run time by `setBroker` (the old connection ends, the new one starts, nothing restarts).
  const fileSettings = brokerSettings(d.config.dataDir)
  const settings = (): BrokerSettings => d.cluster?.settings() ?? fileSettings
  let remote: UserBroker | null = null
  let theirs: Destination | null = null
  // Set while handling a message published through another hub of a cluster: that hub's own
  // bridge module published it on the shared broker already, so only the user's broker gets it.
  let fromOthers = false
  const destinations = (): Destination[] => fromOthers ? (theirs === null ? [] : [theirs]) : theirs === null ? [own] : [own, theirs]

  /** Retained messages are remembered per destination: the user's broker gets them again when it comes back. */
  const put = (to: Destination, topic: string, payload: string, retain: boolean): void => {
    if (retain) to.retained.set(topic, payload)
    if (!to.outlet.publish(topic, payload, retain) && !retain) {
      // A press is news only now: never delivered late, when the broker is back.
      log.warn('Home Assistant\'s broker is away: an event was not delivered', { broker: to.outlet.name, topic })
    }
  }
  const send = (topic: string, payload: string, retain: boolean): void => {
    for (const to of destinations()) put(to, topic, payload, retain)
  }
  const entity = (deviceId: string, e: IntegrationEntity, payload: string, retain = true): void => {
    send(integrationTopics.entity(homeId, deviceId, e), payload, retain)
  }
  const configTo = (to: Destination, b: Doorbell): void => {
    put(to, integrationTopics.discovery(prefix, objectIdOf(homeId, b.deviceId)), JSON.stringify(discoveryConfig({ home: homeId, ...b, bridge: to.bridge })), true)
  }
  const publishConfig = (b: Doorbell): void => {
    for (const to of destinations()) configTo(to, b)
  }

  const opener = doorOpener({
    homeId,
    trust: d.trust,
    broker: d.broker,
    log,
    tell: (deviceId, attributes) => { entity(deviceId, 'lock-attributes', JSON.stringify(attributes)) }
  })

  /** The live paired device with this id, as the trust store has it now. */
  const pairedDevice = (deviceId: string): Member | undefined =>
    d.trust().members().find((m) => m.kind === 'device' && m.subject === deviceId && m.revokedAt === null)

  /** A doorbell the bridge has not seen yet: its config, and offline until its presence says otherwise. */
  const adopt = (m: Member): Doorbell => {
    const known = doorbells.get(m.subject)
    if (known) return known
    const b: Doorbell = { deviceId: m.subject, name: m.name, hasLock: false, lastRing: null }
    doorbells.set(m.subject, b)
    publishConfig(b)
    entity(b.deviceId, 'availability', NOT_AVAILABLE)
    entity(b.deviceId, 'online', OFF)
    return b
  }

  const forget = (deviceId: string): void => {
    if (!doorbells.delete(deviceId)) return
    log.info('a doorbell was removed: clearing its Home Assistant config', { device: deviceId })
    // An empty retained payload removes the device from Home Assistant and from the broker.
    send(integrationTopics.discovery(prefix, objectIdOf(homeId, deviceId)), '', true)
    for (const e of ['availability', 'lock', 'lock-attributes', 'online', 'last-ring', 'last-ring-attributes', 'image'] as const) entity(deviceId, e, '')
  }

  const onState = (b: Doorbell, state: DeviceState): void => {
    if (state.lock !== null) {
      if (!b.hasLock) { b.hasLock = true; publishConfig(b) }
      entity(b.deviceId, 'lock', LOCK_STATE[state.lock.status])
    }
    if (state.lastRing) {
      const { ringId, at, outcome } = state.lastRing
      entity(b.deviceId, 'last-ring', new Date(at).toISOString())
      const known = b.lastRing?.ring_id === ringId ? b.lastRing : null
      ringAttributes(b, { answered_by: [], duration_s: null, ...known, ring_id: ringId, at: new Date(at).toISOString(), outcome })
    }
  }

  const onRing = (b: Doorbell, ring: RingEvent): void => {
    // Not retained: Home Assistant must never replay a press when it reconnects.
    entity(b.deviceId, 'event', JSON.stringify({ event_type: PRESS, ring_id: ring.ringId, count: ring.count }), false)
    entity(b.deviceId, 'last-ring', new Date(ring.at).toISOString())
    if (b.lastRing?.ring_id !== ring.ringId) ringAttributes(b, { ring_id: ring.ringId, at: new Date(ring.at).toISOString(), outcome: 'ringing', answered_by: [], duration_s: null })
  }

  /** The visitor's picture with the ring (the second, a few seconds later, replaces the first): the image entity, retained. */
  const onSnapshot = (b: Doorbell, snapshot: SnapshotEvent): void => {
    // No picture (camera down): the last picture stays, as an image entity shows the last one it had.
    if (snapshot.jpeg === null) return
    // Base64 as the doorbell sent it (the config says image_encoding b64): checked as a JPEG by its schema already.
    entity(b.deviceId, 'image', snapshot.jpeg)
  }

  /** The doorbell's record of a call that ended: who answered the ring, and for how long. */
  const onCall = (b: Doorbell, call: CallRecord): void => {
    if (call.ringId === null || b.lastRing?.ring_id !== call.ringId || call.outcome !== 'answered') return
    ringAttributes(b, {
      ...b.lastRing,
      outcome: 'answered',
      answered_by: [...new Set(call.answeredBy.map((a) => a.viewerName))],
      duration_s: Math.max(0, Math.round((call.endedAt - call.startedAt) / 1000))
    })
  }

  const ringAttributes = (b: Doorbell, next: LastRingAttributes): void => {
    if (JSON.stringify(next) === JSON.stringify(b.lastRing)) return
    b.lastRing = next
    entity(b.deviceId, 'last-ring-attributes', JSON.stringify(next))
  }

  /** A lock command from the integration member on the hub's broker. */
  const onLockCommand = (deviceId: string, payload: Buffer, client: Client | null): void => {
    const command = decodeWord(LockCommand, payload)
    const who = client ? d.principalOf(client) : null
    if (!command.ok || who?.kind !== 'integration') {
      // The gate refused these already; this is the second look before any side effect.
      log.warn('ignored a Home Assistant lock command', { device: deviceId, client: client?.id ?? '(broker)', reason: command.ok ? 'not from an integration' : command.message })
      return
    }
    const member = d.trust().members().find((m) => m.id === who.member.id && m.revokedAt === null)
    if (!member) {
      log.warn('ignored a Home Assistant lock command', { device: deviceId, reason: 'the integration was removed' })
      return
    }
    lockCommand(deviceId, command.value, `${member.name} (integration)`, member)
  }

  /** A lock command from the user's broker: whoever that broker lets publish on the topic. */
  const onRemoteLockCommand = (deviceId: string, payload: Buffer): void => {
    const command = decodeWord(LockCommand, payload)
    if (!command.ok) {
      // Not our client to disconnect: said in the log, and nothing else happens.
      log.warn('ignored a lock command from the user\'s broker', { device: deviceId, reason: command.message })
      return
    }
    // Signed as the home's Home Assistant integration: the newest live one (an older live one is
    // not shadowed by a newer removed one), else the newest, whose removal is then the refusal.
    const now = Date.now()
    const integrations = d.trust().members().filter((m) => m.kind === 'integration')
    const integration = integrations.filter((m) => m.revokedAt === null && (m.expiresAt === null || m.expiresAt > now)).at(-1) ?? integrations.at(-1) ?? null
    lockCommand(deviceId, command.value, `Home Assistant (${remote?.name ?? 'the user\'s broker'})`, integration)
  }

  const lockCommand = (deviceId: string, command: LockCommand, actor: string, integration: Member | null): void => {
    if (!doorbells.has(deviceId)) {
      log.warn('ignored a Home Assistant lock command', { device: deviceId, reason: 'no such doorbell' })
      return
    }
    if (command === 'LOCK') {
      // The door locks by itself after each release: there is nothing to do.
      log.info('Home Assistant asked to lock: the door relocks by itself', { device: deviceId })
      return
    }
    // UNLOCK and OPEN both ask for one release (auto-relock). Only a signed command opens a door:
    // signed as the integration's member, the doorbell decides.
    if (integration !== null) {
      opener.open(deviceId, integration, command).catch((err: Error) => { log.error('Home Assistant\'s door command failed', { device: deviceId, error: err.message }) })
      return
    }
    // No integration member to sign as (none was ever made): refused here.
    entity(deviceId, 'lock-attributes', JSON.stringify({ last_command: command, by: actor, result: 'refused', reason: 'no-door-right', message: 'no Home Assistant integration in Home settings: nothing may sign for it', at: new Date().toISOString() }))
    d.trust().audit.append({
      at: Date.now(),
      kind: 'open-door',
      outcome: 'denied',
      reason: 'no-door-right',
      actor,
      deviceId,
      message: `${command} from Home Assistant refused: no door right`,
      path: 'lan'
    })
    log.warn('refused a door command from Home Assistant', { device: deviceId, command, actor, reason: 'no door right' })
  }

  const onStatus = (payload: Buffer, to: Destination[]): void => {
    const status = decodeWord(HomeAssistantStatus, payload)
    if (!status.ok) { log.warn('ignored Home Assistant\'s status', { reason: status.message }); return }
    if (status.value !== 'online') return
    log.info('Home Assistant is online: republishing discovery', { doorbells: doorbells.size, broker: to.map((x) => x.outlet.name).join(', ') })
    for (const x of to) for (const b of doorbells.values()) configTo(x, b)
  }

  /** What the user's broker sends the hub: Home Assistant's status, and lock commands. */
  const onRemote = (topic: string, payload: Buffer): void => {
    if (theirs === null) return
    if (topic === integrationTopics.status(prefix)) { onStatus(payload, [theirs]); return }
    const ha = parseIntegrationTopic(topic)
    if (ha?.kind === 'ha-lock-command' && ha.home === homeId) onRemoteLockCommand(ha.device, payload)
  }

  const onPublish = (packet: AedesPublishPacket, client: Client | null): void => {
    // The bridge's own publishes (no client) are not news to it.
    if (client === null) return
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    if (packet.topic === integrationTopics.status(prefix)) { onStatus(payload, [own]); return }
    const ha = parseIntegrationTopic(packet.topic)
    if (ha !== null) {
      if (ha.kind === 'ha-lock-command' && ha.home === homeId) onLockCommand(ha.device, payload, client)
      return
    }
    onDoorbellMessage(packet.topic, payload)
  }

  /** A message from another hub of a cluster (its doorbells): for the user's broker, when this hub bridges. */
  const onOthers = (packet: { topic: string, payload: Buffer | string }): void => {
    if (stops.length === 0) return
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    // A command's result only finds the hub that sent the command (the opener keeps it): as from here.
    if (/\/command\/[^/]+\/to-viewer$/.test(packet.topic)) { onDoorbellMessage(packet.topic, payload); return }
    fromOthers = true
    try { onDoorbellMessage(packet.topic, payload) } finally { fromOthers = false }
  }

  const onDoorbellMessage = (topic: string, payload: Buffer): void => {
    if (/\/command\/[^/]+\/to-viewer$/.test(topic)) {
      // A doorbell's result of a command: maybe one the hub sent for Home Assistant.
      const result = decodeTopicMessage(topic, payload)
      if (result.ok && result.value.kind === 'command-result' && result.value.topic.home === homeId) opener.result(result.value.topic.device, result.value.topic.viewer, result.value.payload)
      return
    }
    if (!/\/(ring|state|presence|calls|snapshot)$/.test(topic)) return
    const decoded = decodeTopicMessage(topic, payload)
    if (!decoded.ok) return
    const m = decoded.value
    if ((m.kind !== 'presence' && m.kind !== 'state' && m.kind !== 'ring' && m.kind !== 'calls' && m.kind !== 'snapshot') || m.topic.home !== homeId) return
    const device = pairedDevice(m.topic.device)
    if (!device) return
    const b = adopt(device)
    if (m.kind === 'presence') {
      entity(b.deviceId, 'availability', m.payload.online ? AVAILABLE : NOT_AVAILABLE)
      entity(b.deviceId, 'online', m.payload.online ? ON : OFF)
    } else if (m.kind === 'state') {
      onState(b, m.payload)
    } else if (m.kind === 'ring') {
      onRing(b, m.payload)
    } else if (m.kind === 'snapshot') {
      onSnapshot(b, m.payload)
    } else {
      onCall(b, m.payload)
    }
  }

  let changing: Promise<void> = Promise.resolve()

  /**
   * Starts the user's broker as a new destination: it gets everything the hub's broker holds
   * retained for Home Assistant (its own discovery configs, which name the hub's will), and all
   * of it again each time it connects.
   */
  const connectRemote = async (config: HomeAssistantBroker, make?: (will: BridgeWill) => UserBroker): Promise<void> => {
    const r = (make ?? ((w) => userBroker({ config, home: homeId, will: w, log })))(will)
    const t: Destination = { outlet: r, bridge: will, retained: new Map() }
    for (const [topic, payload] of own.retained) if (!topic.startsWith(`${prefix}/`)) t.retained.set(topic, payload)
    for (const b of doorbells.values()) configTo(t, b)
    remote = r
    theirs = t
    try {
      await r.start([integrationTopics.status(prefix), integrationTopics.homeLockCommands(homeId)], {
        connected: () => { for (const [topic, payload] of t.retained) r.publish(topic, payload, true) },
        message: (topic, payload) => { if (theirs === t) onRemote(topic, payload) }
      })
    } catch (err) {
      // A file it needs cannot be read: no half-made destination stays behind.
      remote = null
      theirs = null
      throw err
    }
  }
  const disconnectRemote = async (): Promise<void> => {
    const r = remote
    remote = null
    theirs = null
    await r?.stop()
  }

  /** What the bridge connects to now (JSON, or null: none), to reconnect only when Home settings changed it. */
  let applied: string | null = null
  const apply = async (config: HomeAssistantBroker | null, make?: (will: BridgeWill) => UserBroker): Promise<void> => {
    // One change at a time: the second waits for the first's connection to end.
    const next = changing.then(async () => {
      await disconnectRemote()
      applied = JSON.stringify(config)
      if (config !== null) await connectRemote(config, make)
    })
    changing = next.catch(() => {})
    await next
  }
  const wanted = async (): Promise<HomeAssistantBroker | null> => {
    const fromSettings = await settings().stored()
    return fromSettings === undefined ? d.config.homeAssistant.broker ?? null : fromSettings
  }

  // A cluster: the hub holding the lease bridges, re-reading the shared settings each round.
  const c = d.cluster
  const lead = async (): Promise<void> => {
    const config = await wanted()
    if (JSON.stringify(config) !== applied) await apply(config, d.userBroker)
  }
  const turns = c === undefined ? null : bridgeTurns({ lease: c.lease, pollMs: c.leasePollMs ?? 2000, log, lead, lost: () => { apply(null).catch(() => {}) } })
  const leading = (): boolean => turns?.leading() ?? false

  return {
    name: 'homeAssistant',
    async start () {
      const trust = d.trust()
      const broker = d.broker()
      for (const m of trust.members()) if (m.kind === 'device' && m.revokedAt === null) adopt(m)
      broker.on('publish', onPublish)
      const offPaired = trust.onPaired((m) => { if (m.kind === 'device') adopt(m) })
      // A re-paired doorbell (same id, new member) stays: only the last member of an id clears it.
      const offRevoked = trust.onRevoked((m) => { if (m.kind === 'device' && !pairedDevice(m.subject)) forget(m.subject) })
      stops = [() => { broker.removeListener('publish', onPublish) }, offPaired, offRevoked]
      if (c !== undefined) {
        const root = `${ROOT}/${homeId}/+`
        c.observeOthers([...['ring', 'state', 'presence', 'calls', 'snapshot'].map((t) => `${root}/${t}`), `${root}/command/+/to-viewer`], onOthers)
        await turns?.start()
      } else {
        await apply(await wanted(), d.userBroker)
      }
      log.info('Home Assistant discovery on', { prefix, doorbells: doorbells.size, broker: destinations().map((x) => x.outlet.name).join(', '), ...(c !== undefined ? { bridging: leading() } : {}) })
    },
    async stop () {
      for (const stop of stops) stop()
      stops = []
      await turns?.stop()
      await changing
      await disconnectRemote()
      doorbells.clear()
      own.retained.clear()
    },
    get settings () { return settings() },
    async setBroker (config) {
      if (c !== undefined && !leading()) {
        log.info('the user\'s broker was changed (Home settings): the bridging hub connects to it', { broker: config === null ? 'none' : new URL(config.url).host })
        return
      }
      await apply(config)
      log.info(config === null ? 'the user\'s broker is off (Home settings)' : 'the user\'s broker was changed (Home settings)', { broker: remote?.name ?? 'none' })
    },
    brokerStatus () {
      if (remote === null) return { state: 'off', problem: c !== undefined && !leading() ? 'this hub stands by: another hub of the cluster runs the bridge' : null }
      const s = remote.status()
      return { state: s.connected ? 'connected' : 'connecting', problem: s.problem }
    }
  }
}
