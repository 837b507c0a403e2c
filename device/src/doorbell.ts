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
  const drivers = options.drivers ?? createDrivers(config.gpio, options.print)

  const camera = new Camera(config.camera, log.child('camera'))
  await camera.start()

  // Filled in below; the session actor needs the transports and they need the call actor.
  let link: MqttLink | null = null
  let mesh: Mesh | null = null
  const transports = (): DeviceTransport[] => [link, mesh?.server ?? null].filter((t): t is MqttLink | DirectServer => t !== null)
  /** Which path each session's offer came on: its answer goes back the same way. */
  const sessionPaths = new Map<string, DeviceTransport>()

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
    if (message.type === 'bye') sessionPaths.delete(sessionId)
  }

  const machine = deviceCallMachine.provide({
    actors: {
      session: sessionActor({
        camera,
        lock,
        iceServers: config.iceServers,
        iceAdditionalHostAddresses: config.iceAdditionalHostAddresses,
        signal,
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

  const onSignal = (from: DeviceTransport) => (viewerId: string, message: SignalToDevice): void => {
    if (message.type === 'offer') {
      log.info('offer', { viewer: message.viewerName, session: message.sessionId, path: from.path })
      sessionPaths.set(message.sessionId, from)
      call.send({ type: 'OFFER', sessionId: message.sessionId, viewerId, viewerName: message.viewerName, sdp: message.sdp, at: Date.now() })
    } else {
      log.info('viewer left', { session: message.sessionId, reason: message.reason, path: from.path })
      call.send({ type: 'BYE', sessionId: message.sessionId })
    }
  }

  const hubWaiters = new Set<() => void>()
  const connectHub = (url: string): void => {
    const previous = link
    link = new MqttLink({ url, homeId: config.homeId, deviceId: config.deviceId, log: log.child('mqtt'), direct: () => mesh?.direct() })
    link.onSignal(onSignal(link))
    link.client.on('connect', () => { for (const w of hubWaiters) w() })
    const s = state()
    lastPublished = JSON.stringify({ ...s, at: 0 })
    link.publishState(s)
    if (previous) void previous.stop()
  }

  if (config.mesh.enabled) {
    mesh = await startMesh(config, {
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
      await camera.stop()
    }
  }
}
