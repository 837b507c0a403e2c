import type { Actor } from 'xstate'
import {
  DeviceConfig, InspectionBatcher, iceSettingsFor, newId, parseConfig,
  type DeviceConfigInput, type DeviceState
} from '@doorbell/core'
import { inspectionRecorder, startAnswering, type deviceCallMachine } from '@doorbell/machines'
import { Camera } from './camera/camera'
import { createDrivers, type Drivers } from './drivers'
import { LockControl } from './lock/lockControl'
import { consoleLogger, type Logger } from '@doorbell/core'
import { sessionActor } from './peer/session'
import { MqttLink } from './transport/mqttLink'
import { startMesh, type Mesh } from './mesh/mesh'
import { join } from 'node:path'
import { readFileSync, writeFileSync } from 'node:fs'
import { ConfigError, DoorGuard } from '@doorbell/core'
import { loadPairing, pairDevice, savePairing, PairingError, type DevicePairing } from './trust/pairing'
import { AuditOutbox } from './trust/auditOutbox'
import { CloudLink } from './paths/cloud/cloudLink'

export interface DeviceOptions {
  log?: Logger
  /** Hardware to use instead of what config names (tests pass simulated parts they hold). */
  drivers?: Drivers
  /** Where the simulated relay prints DOOR UNLOCKED / DOOR LOCKED. */
  print?: (line: string) => void
  /**
   * A started camera to share instead of the one config names (many camera nodes fed by one
   * encoder, as the operator console's load test does). The doorbell does not stop it.
   */
  camera?: Camera
}

export interface Doorbell {
  config: DeviceConfig
  call: Actor<typeof deviceCallMachine>
  lock: LockControl
  camera: Camera
  /** The connection to the hub: null until the hub is found (mDNS) when no hubUrl is configured. */
  readonly link: MqttLink | null
  /** Resolves once the device is connected to a hub. */
  hubConnected: (signal?: AbortSignal) => Promise<void>
  /** The LAN mesh (libp2p), unless mesh.enabled is off. */
  mesh: Mesh | null
  /** AWS IoT Core and KVS signaling, when the config has a cloud section. */
  cloud: CloudLink | null
  /** The home this doorbell is paired with. */
  pairing: DevicePairing
  /** Checks every viewer's credential and every open-door command. */
  guard: DoorGuard
  /** Open-door attempts not yet acknowledged by the hub. */
  audit: AuditOutbox
  drivers: Drivers
  /** What a press of the button does. */
  ring: () => void
  state: () => DeviceState
  stop: () => Promise<void>
}

/**
 * The device's composition root: drivers, camera, lock, call machine and the hub link,
 * wired in that order and stopped in reverse.
 */
export async function startDoorbell (input: DeviceConfigInput, options: DeviceOptions = {}): Promise<Doorbell> {
  const config = parseConfig(DeviceConfig, input, 'device config')
  const log = options.log ?? consoleLogger('device')
  const pairing = await pairedHome(config, log)
  const homeId = pairing.homeId
  const guard = new DoorGuard({ homeId, deviceId: config.deviceId, homeKey: pairing.homeKey, ...(pairing.zone ? { zone: pairing.zone } : {}) })
  const revocationsFile = join(config.dataDir, 'revocations.txt')
  const takeRevocations = async (token: string, from: string): Promise<boolean> => {
    const r = await guard.takeRevocations(token)
    if (!r.ok) { log.warn('ignored a revocation list', { from, error: r.message }); return false }
    if (r.changed) {
      try { writeFileSync(revocationsFile, token, { mode: 0o600 }) } catch (err) { log.error('could not keep the revocation list on disk', { error: (err as Error).message }) }
    }
    return r.changed
  }
  try { await takeRevocations(readFileSync(revocationsFile, 'utf8').trim(), revocationsFile) } catch {}
  const audit = new AuditOutbox(join(config.dataDir, 'audit-outbox.jsonl'), log.child('audit'))
  const drivers = options.drivers ?? createDrivers(config.gpio, options.print)

  const camera = options.camera ?? new Camera(config.camera, log.child('camera'))
  if (!options.camera) await camera.start()

  // Filled in below.
  let link: MqttLink | null = null
  let mesh: Mesh | null = null
  let cloud: CloudLink | null = null

  // Inspection: off by default, and then no inspector is attached at all.
  const batcher = config.inspect
    ? new InspectionBatcher((events) => {
      link?.publishInspect({ source: { kind: 'device', id: config.deviceId, name: config.deviceName }, events })
    })
    : null
  const inspect = batcher ? inspectionRecorder({ source: config.deviceId, now: Date.now, emit: (e) => { batcher.push(e) } }) : undefined

  const lock = new LockControl(drivers.lock, config.relockSeconds * 1000, log.child('lock'), inspect)
  lock.start()

  // Every path at once (the device cannot know where its viewers are): the answering side
  // admits each offer and answers it on the path it came from.
  const answering = startAnswering({
    deviceId: config.deviceId,
    deviceName: config.deviceName,
    ringTimeoutMs: config.ringTimeoutSeconds * 1000,
    maxCallMs: config.maxCallSeconds * 1000,
    maxViewers: config.maxViewers,
    guard,
    lock: () => lock.state(),
    log,
    ...(inspect ? { inspect } : {}),
    session: (routing) => sessionActor({
      camera,
      lock,
      // The doorbell's own ICE settings (TURN REST credentials minted per call), plus the cloud's TURN for a call that came that way.
      ice: async (sessionId) => {
        const own = await iceSettingsFor(config, config.deviceId, Date.now())
        const viaCloud = routing.pathOf(sessionId) === 'cloud' && cloud ? cloud.iceServers() : []
        return { iceServers: [...own.iceServers, ...viaCloud], iceTransportPolicy: own.iceTransportPolicy }
      },
      iceAdditionalHostAddresses: config.iceAdditionalHostAddresses,
      signal: routing.signal,
      guard,
      audit: (attempt) => { audit.add(attempt) },
      pathOf: routing.pathOf,
      deviceId: config.deviceId,
      log
    })
  })
  const call = answering.call
  const state = answering.state
  const publishState = answering.publishState

  const hubWaiters = new Set<() => void>()
  const connectHub = (url: string): void => {
    // Paired over TLS: the token never goes out in clear, whatever a hub on the LAN advertises.
    if (pairing.ca && !/^(mqtts|wss):\/\//.test(url)) {
      log.error('refused a hub address without TLS: this doorbell was paired with a TLS hub', { url })
      return
    }
    const previous = link
    const current = new MqttLink({
      url,
      homeId,
      deviceId: config.deviceId,
      log: log.child('mqtt'),
      direct: () => mesh?.direct(),
      auth: { memberId: pairing.memberId, token: pairing.token, ca: pairing.ca }
    })
    link = current
    current.onRevocations((token) => {
      takeRevocations(token, 'hub')
        .then((changed) => { if (changed) answering.endRevokedSessions() })
        .catch((err: Error) => { log.error('could not take the revocation list', { error: err.message }) })
    })
    current.client.on('connect', () => {
      audit.flush()
      for (const w of hubWaiters) w()
    })
    if (previous) {
      answering.detach(previous)
      void previous.stop()
    }
    answering.attach(current)
  }

  audit.setSender(async (attempt) => {
    if (!link) throw new Error('no hub yet')
    await link.publishAudit(attempt)
  })

  if (config.mesh.enabled) {
    mesh = await startMesh(config, {
      homeId,
      admit: async (credential, viewerId) => {
        const r = await guard.admit(credential, viewerId)
        return r.ok ? null : r.message
      },
      log: log.child('mesh'),
      hasHub: () => link?.client.connected === true,
      onHub: (hub) => {
        // The same URL: the client is already retrying it. (Replacing a client drops what it queued.)
        if (link?.url === hub.mqttUrl) return
        log.info('found the hub', { hub: hub.hubName, mqtt: hub.mqttUrl })
        connectHub(hub.mqttUrl)
      }
    })
    answering.attach(mesh.server)
  }
  if (config.hubUrl) connectHub(config.hubUrl)
  if (config.cloud) {
    const away = new CloudLink(config.cloud, { deviceId: config.deviceId, log: log.child('cloud'), ...(inspect ? { inspect } : {}) })
    try {
      // Does not wait for AWS: a doorbell on a LAN without internet starts all the same.
      await away.start()
      cloud = away
      answering.attach(away)
    } catch (err) {
      // A broken cloud section (its certificate unreadable) costs the cloud path, not the door.
      log.error('the cloud path is off: its config cannot be used', { error: (err as Error).message })
    }
  }

  lock.subscribe(publishState)
  publishState()

  const ring = (): void => { answering.ring(newId('r')) }
  await drivers.button.start(ring)

  let stopped = false
  return {
    config,
    call,
    lock,
    camera,
    get link () { return link },
    mesh,
    get cloud () { return cloud },
    pairing,
    guard,
    audit,
    async hubConnected (signal?: AbortSignal) {
      if (link?.client.connected) return
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { hubWaiters.delete(done); resolve() }
        hubWaiters.add(done)
        signal?.addEventListener('abort', () => { hubWaiters.delete(done); reject(signal.reason) }, { once: true })
      })
    },
    drivers,
    ring,
    state,
    async stop () {
      if (stopped) return
      stopped = true
      await drivers.button.stop()
      answering.stop()
      lock.stop()
      batcher?.stop()
      await drivers.lock.stop().catch((err: Error) => log.error('could not lock the door on stop', { error: err.message }))
      await link?.stop()
      await mesh?.stop()
      await cloud?.stop()
      if (!options.camera) await camera.stop()
      audit.stop()
    }
  }
}

/** The stored pairing; else the invite in the config is redeemed now; else the doorbell cannot start. */
async function pairedHome (config: DeviceConfig, log: Logger): Promise<DevicePairing> {
  let pairing = loadPairing(config.dataDir)
  if (!pairing && config.pairing) {
    pairing = await pairDevice({ url: config.pairing.url, deviceId: config.deviceId, deviceName: config.deviceName, log: log.child('pairing') })
    savePairing(config.dataDir, pairing)
  }
  if (!pairing) {
    throw new PairingError(`this doorbell (${config.deviceId}) is not paired with a home. The owner creates a doorbell invite in Home settings; ` +
      'then start with "pairing": { "url": "<the invite URL>" } in the config, or run: npm run pair --workspace device -- <invite URL>')
  }
  if (config.homeId !== pairing.homeId && config.homeId !== 'home') {
    throw new ConfigError(`invalid config: homeId is ${config.homeId} but this doorbell is paired with home ${pairing.homeId}`)
  }
  return pairing
}
