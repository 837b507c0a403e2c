import { createActor, type Actor } from 'xstate'
import {
  DeviceConfig, InspectionBatcher, newId, parseConfig,
  type DeviceConfigInput, type DeviceState, type DeviceTransport, type SignalToDevice, type SignalToViewer
} from '@doorbell/core'
import { callStatusOf, deviceCallMachine, inspectionRecorder, participantsOf } from '@doorbell/machines'
import { Camera } from './camera/camera'
import { createDrivers, type Drivers } from './drivers'
import { LockControl } from './lock/lockControl'
import { consoleLogger, type Logger } from '@doorbell/core'
import { sessionActor } from './peer/session'
import { MqttLink } from './transport/mqttLink'
import { startMesh, type Mesh } from './mesh/mesh'
import type { DirectServer } from './mesh/directServer'
import { join } from 'node:path'
import { readFileSync, writeFileSync } from 'node:fs'
import { ConfigError, DoorGuard } from '@doorbell/core'
import { loadPairing, pairDevice, savePairing, PairingError, type DevicePairing } from './trust/pairing'
import { AuditOutbox } from './trust/auditOutbox'
import { CloudLink } from './cloud/cloudLink'

export interface DeviceOptions {
  log?: Logger
  /** Hardware to use instead of what config names (tests pass simulated parts they hold). */
  drivers?: Drivers
  /** Where the simulated relay prints DOOR UNLOCKED / DOOR LOCKED. */
  print?: (line: string) => void
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
  const guard = new DoorGuard({ homeId, deviceId: config.deviceId, homeKey: pairing.homeKey })
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

  const camera = new Camera(config.camera, log.child('camera'))
  await camera.start()

  // Filled in below; the session actor needs the transports and they need the call actor.
  let link: MqttLink | null = null
  let mesh: Mesh | null = null
  let cloud: CloudLink | null = null
  // Every path at once: the device cannot know where its viewers are (home, or away).
  const transports = (): DeviceTransport[] => [link, mesh?.server ?? null, cloud].filter((t): t is MqttLink | DirectServer | CloudLink => t !== null)
  /** Which path each session's offer came on: its answer goes back the same way. */
  const sessionPaths = new Map<string, DeviceTransport>()
  /** The member behind each session, so a revocation ends its calls at once. */
  const sessionMembers = new Map<string, { memberId: string, viewerId: string }>()

  // Inspection: off by default, and then no inspector is attached at all.
  const batcher = config.inspect
    ? new InspectionBatcher((events) => {
      link?.publishInspect({ source: { kind: 'device', id: config.deviceId, name: config.deviceName }, events })
    })
    : null
  const inspect = batcher ? inspectionRecorder({ source: config.deviceId, now: Date.now, emit: (e) => { batcher.push(e) } }) : undefined

  const lock = new LockControl(drivers.lock, config.relockSeconds * 1000, log.child('lock'), inspect)
  lock.start()

  const signal = (viewerId: string, sessionId: string, message: SignalToViewer): void => {
    const path = sessionPaths.get(sessionId)
    // A bye goes every way: the viewer may have moved from one path to another during the call.
    for (const t of message.type === 'bye' || !path ? transports() : [path]) t.sendToViewer(viewerId, sessionId, message)
    if (message.type === 'bye') { sessionPaths.delete(sessionId); sessionMembers.delete(sessionId) }
  }

  const machine = deviceCallMachine.provide({
    actors: {
      session: sessionActor({
        camera,
        lock,
        iceServers: (sessionId) => sessionPaths.get(sessionId)?.path === 'cloud' && cloud ? [...config.iceServers, ...cloud.iceServers()] : config.iceServers,
        iceAdditionalHostAddresses: config.iceAdditionalHostAddresses,
        signal,
        guard,
        audit: (attempt) => { audit.add(attempt) },
        pathOf: (sessionId) => sessionPaths.get(sessionId)?.path ?? null,
        deviceId: config.deviceId,
        log
      })
    },
    actions: {
      announceRing: (_, ring) => {
        log.info('ring', { ringId: ring.ringId, count: ring.count })
        for (const t of transports()) t.publishRing({ type: 'ring', deviceId: config.deviceId, deviceName: config.deviceName, ...ring })
      },
      recordCall: (_, summary) => {
        log.info('call recorded', { outcome: summary.outcome, answeredBy: summary.answeredBy.map((a) => a.viewerName), unlocks: summary.unlocks.length })
        for (const t of transports()) t.publishCall({ deviceId: config.deviceId, ...summary, endedAt: summary.endedAt ?? Date.now() })
      },
      rejectOffer: (_, { sessionId, viewerId }) => {
        log.warn('offer refused: the call is full', { viewer: viewerId, max: config.maxViewers })
        signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'busy', message: `the doorbell already has ${config.maxViewers} viewers` })
      }
    }
  })
  const call = createActor(machine, {
    input: { ringTimeoutMs: config.ringTimeoutSeconds * 1000, maxCallMs: config.maxCallSeconds * 1000, maxViewers: config.maxViewers },
    id: 'deviceCall',
    systemId: 'deviceCall',
    ...(inspect ? { inspect } : {})
  })

  const state = (): DeviceState => {
    const snap = call.getSnapshot()
    return {
      deviceId: config.deviceId,
      deviceName: config.deviceName,
      call: {
        status: callStatusOf(snap),
        ringId: snap.context.ring?.ringId ?? null,
        since: snap.context.callStartedAt ?? snap.context.ring?.at ?? 0
      },
      participants: participantsOf(snap),
      lock: lock.state(),
      lastRing: snap.context.lastRing,
      at: Date.now()
    }
  }

  // Publish the retained state whenever what it says changes.
  let lastPublished = ''
  const publishState = (): void => {
    const s = state()
    const key = JSON.stringify({ ...s, at: 0 })
    if (key === lastPublished) return
    lastPublished = key
    for (const t of transports()) t.publishState(s)
  }

  /** Offers whose credential is being checked. */
  const admitting = new Set<string>()
  const onSignal = (from: DeviceTransport) => (viewerId: string, message: SignalToDevice): void => {
    if (message.type === 'offer') {
      // A session id is used once: a second offer must not take over another viewer's call.
      if (admitting.has(message.sessionId) || sessionMembers.has(message.sessionId)) {
        log.warn('offer refused: the session exists', { session: message.sessionId, path: from.path })
        return
      }
      // No picture for strangers: the offer's credential must be a live member of this home.
      admitting.add(message.sessionId)
      void guard.admit(message.credential, viewerId).then((admitted) => {
        // A bye that came while the credential was being checked wins.
        if (!admitting.delete(message.sessionId)) return
        if (!admitted.ok) {
          log.warn('offer refused', { viewer: message.viewerName, reason: admitted.reason, message: admitted.message, path: from.path })
          from.sendToViewer(viewerId, message.sessionId, { type: 'bye', sessionId: message.sessionId, reason: 'rejected', message: admitted.message.slice(0, 300) })
          return
        }
        log.info('offer', { viewer: admitted.grant.name, role: admitted.grant.role, session: message.sessionId, path: from.path })
        sessionPaths.set(message.sessionId, from)
        sessionMembers.set(message.sessionId, { memberId: admitted.grant.id, viewerId })
        call.send({ type: 'OFFER', sessionId: message.sessionId, viewerId, viewerName: admitted.grant.name, sdp: message.sdp, at: Date.now() })
      })
    } else {
      // Only the session's own viewer ends it (session ids are public in the device's state).
      const owner = sessionMembers.get(message.sessionId)
      if (owner && owner.viewerId !== viewerId) {
        log.warn('ignored a bye from another viewer', { session: message.sessionId, from: viewerId, path: from.path })
        return
      }
      admitting.delete(message.sessionId)
      log.info('viewer left', { session: message.sessionId, reason: message.reason, path: from.path })
      call.send({ type: 'BYE', sessionId: message.sessionId })
    }
  }

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
    current.onSignal(onSignal(current))
    current.onRevocations((token) => {
      takeRevocations(token, 'hub')
        .then((changed) => { if (changed) endRevokedSessions() })
        .catch((err: Error) => { log.error('could not take the revocation list', { error: err.message }) })
    })
    current.client.on('connect', () => {
      audit.flush()
      for (const w of hubWaiters) w()
    })
    const s = state()
    lastPublished = JSON.stringify({ ...s, at: 0 })
    link.publishState(s)
    if (previous) void previous.stop()
  }

  audit.setSender(async (attempt) => {
    if (!link) throw new Error('no hub yet')
    await link.publishAudit(attempt)
  })

  /** A revoked member's calls end now, on every path. */
  const endRevokedSessions = (): void => {
    for (const [sessionId, who] of sessionMembers) {
      if (!guard.isRevoked(who.memberId)) continue
      log.warn('ending the call of a removed member', { session: sessionId, member: who.memberId })
      call.send({ type: 'BYE', sessionId })
      signal(who.viewerId, sessionId, { type: 'bye', sessionId, reason: 'rejected', message: 'you have been removed from this home' })
    }
  }

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
    mesh.server.onSignal(onSignal(mesh.server))
  }
  if (config.hubUrl) connectHub(config.hubUrl)
  if (config.cloud) {
    const away = new CloudLink(config.cloud, { deviceId: config.deviceId, log: log.child('cloud') })
    away.onSignal(onSignal(away))
    try {
      // Does not wait for AWS: a doorbell on a LAN without internet starts all the same.
      await away.start()
      cloud = away
      // Its retained state from now on (the hub's link may have made this state "already published").
      away.publishState(state())
    } catch (err) {
      // A broken cloud section (its certificate unreadable) costs the cloud path, not the door.
      log.error('the cloud path is off: its config cannot be used', { error: (err as Error).message })
    }
  }

  call.subscribe(publishState)
  lock.subscribe(publishState)
  call.start()
  publishState()

  const ring = (): void => { call.send({ type: 'PRESS', ringId: newId('r'), at: Date.now() }) }
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
      call.stop()
      lock.stop()
      batcher?.stop()
      await drivers.lock.stop().catch((err: Error) => log.error('could not lock the door on stop', { error: err.message }))
      await link?.stop()
      await mesh?.stop()
      await cloud?.stop()
      await camera.stop()
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
