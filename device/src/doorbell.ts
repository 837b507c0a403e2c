import { createActor, type Actor } from 'xstate'
import { DeviceConfig, InspectionBatcher, newId, parseConfig, type DeviceConfigInput, type DeviceState } from '@doorbell/core'
import { callStatusOf, deviceCallMachine, inspectionRecorder, participantsOf } from '@doorbell/machines'
import { Camera } from './camera/camera'
import { createDrivers, type Drivers } from './drivers'
import { LockControl } from './lock/lockControl'
import { consoleLogger, type Logger } from '@doorbell/core'
import { sessionActor } from './peer/session'
import { MqttLink } from './transport/mqttLink'

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
  link: MqttLink
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

  // Filled in below; the session actor needs the link and the link needs the call actor.
  let link: MqttLink | null = null

  // Inspection: off by default, and then no inspector is attached at all.
  const batcher = config.inspect
    ? new InspectionBatcher((events) => {
      link?.publishInspect({ source: { kind: 'device', id: config.deviceId, name: config.deviceName }, events })
    })
    : null
  const inspect = batcher ? inspectionRecorder({ source: config.deviceId, now: Date.now, emit: (e) => { batcher.push(e) } }) : undefined

  const lock = new LockControl(drivers.lock, config.relockSeconds * 1000, log.child('lock'), inspect)
  lock.start()

  const signal = (viewerId: string, sessionId: string, message: Parameters<MqttLink['sendToViewer']>[2]): void => {
    link?.sendToViewer(viewerId, sessionId, message)
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
        link?.publishRing({ type: 'ring', deviceId: config.deviceId, deviceName: config.deviceName, ...ring })
      },
      recordCall: (_, summary) => {
        log.info('call recorded', { outcome: summary.outcome, answeredBy: summary.answeredBy.map((a) => a.viewerName), unlocks: summary.unlocks.length })
        link?.publishCall({ deviceId: config.deviceId, ...summary, endedAt: summary.endedAt ?? Date.now() })
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
    link?.publishState(s)
  }

  link = new MqttLink({
    url: config.hubUrl,
    homeId: config.homeId,
    deviceId: config.deviceId,
    log: log.child('mqtt'),
    onSignal: (viewerId, message) => {
      if (message.type === 'offer') {
        log.info('offer', { viewer: message.viewerName, session: message.sessionId })
        call.send({ type: 'OFFER', sessionId: message.sessionId, viewerId, viewerName: message.viewerName, sdp: message.sdp, at: Date.now() })
      } else {
        log.info('viewer left', { session: message.sessionId, reason: message.reason })
        call.send({ type: 'BYE', sessionId: message.sessionId })
      }
    }
  })

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
    link,
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
      await link!.stop()
      await camera.stop()
    }
  }
}
