import { createActor, fromPromise, type Actor, type AnyActorLogic, type InspectionEvent } from 'xstate'
import {
  KVS_MAX_PREVIEWS,
  type DeviceState, type DeviceTransport, type DoorGuard, type LockState, type Logger, type SignalToDevice, type SignalToViewer, type TransportPath
} from '@doorbell/core'
import { deviceCallMachine, type Admission, type AdmitInput } from './deviceCall'
import { callStatusOf, participantsOf } from './describe'

/**
 * The answering side of the call, shared by every device that answers: a doorbell in Node
 * (werift) and a camera node in a browser (RTCPeerConnection). It owns what does not depend
 * on the media stack: the call machine (which admits each offer with the guard, and keeps
 * each session's owner and the path its offer came on: its answer goes back the same way),
 * the transports it listens and publishes on, the state published on every path, and ending
 * a revoked member's calls. The device supplies the session actor (its peer connection).
 *
 * Platform-free: no Node and no DOM imports.
 */

/** How a session actor talks back to its viewer. */
export interface SessionRouting {
  /** Sends to the viewer of this session on the path its offer came on (a bye goes every way). */
  signal: (viewerId: string, sessionId: string, message: SignalToViewer) => void
  /** Which path carries this session's signaling (for the audit record). */
  pathOf: (sessionId: string) => TransportPath | null
}

export interface AnsweringOptions {
  deviceId: string
  deviceName: string
  ringTimeoutMs: number
  maxCallMs: number
  maxViewers: number
  /**
   * The owner's setting: screens may watch the visitor live while it rings (default true). A
   * function is read at each new ring (the owner's signed setting may change between rings).
   */
  livePreview?: boolean | (() => boolean)
  /** Previews on the cloud path at most (default `KVS_MAX_PREVIEWS`: KVS's 10 viewers, one kept for Answer). */
  maxCloudPreviews?: number
  guard: Pick<DoorGuard, 'admit' | 'isRevoked'>
  /** The session actor (`fromCallback<EventObject, SessionInput>`), made with the routing above. */
  session: (routing: SessionRouting) => AnyActorLogic
  /** The door's state; null: this device has no door (a camera node). */
  lock: () => LockState | null
  log: Logger
  /** The machines' inspection (the /inspector page), when on. */
  inspect?: (event: InspectionEvent) => void
  now?: () => number
}

export interface Answering {
  call: Actor<typeof deviceCallMachine>
  /** Takes offers and byes from this path, and publishes on it from now on (its current state at once). */
  attach: (transport: DeviceTransport) => void
  /** Stops listening to a path and publishing on it (a replaced hub link). */
  detach: (transport: DeviceTransport) => void
  transports: () => DeviceTransport[]
  /** A press of the button. */
  ring: (ringId: string) => void
  state: () => DeviceState
  /**
   * Publishes the state on every path if what it says changed (the lock moved, say). `lock`: the
   * lock's state it was told of (the lock tells its listeners a turn later, when it may have moved on).
   */
  publishState: (lock?: LockState | null) => void
  /** Ends now, on every path, the calls of members the guard now holds as revoked. */
  endRevokedSessions: () => void
  /** How many sessions are being admitted or are live (for tests and the camera node's page). */
  sessions: () => number
  stop: () => void
}

export function startAnswering (o: AnsweringOptions): Answering {
  const log = o.log
  const now = o.now ?? Date.now
  const attached: DeviceTransport[] = []
  const unsubscribe = new Map<DeviceTransport, () => void>()
  // Filled in below: the routing reads the call's own context (who owns a session, which path it came on).
  let call: Actor<typeof deviceCallMachine> | null = null
  const sessionOf = (sessionId: string) => call?.getSnapshot().context.sessions[sessionId]
  const on = (path: TransportPath | null): DeviceTransport[] => path === null ? [...attached] : attached.filter((t) => t.path === path)

  const signal = (viewerId: string, sessionId: string, message: SignalToViewer): void => {
    // A bye goes every way: the viewer may have moved from one path to another during the call.
    const path = message.type === 'bye' ? null : sessionOf(sessionId)?.path ?? null
    for (const t of on(path)) t.sendToViewer(viewerId, sessionId, message)
  }
  const routing: SessionRouting = { signal, pathOf: (sessionId) => sessionOf(sessionId)?.path ?? null }

  const machine = deviceCallMachine.provide({
    actors: {
      session: o.session(routing) as never,
      // No picture for strangers: the offer's credential must be a live member of this home.
      admit: fromPromise<Admission, AdmitInput>(async ({ input }) => {
        const admitted = await o.guard.admit(input.offer.credential, input.viewerId, { proof: input.offer.proof, session: input.offer.sessionId })
        // A revocation taken while the proof was being checked wins: no picture for a removed member.
        if (admitted.ok && o.guard.isRevoked(admitted.grant.id)) {
          return { ok: false, reason: 'revoked', message: `${admitted.grant.name} has been removed from this home` }
        }
        return admitted.ok
          ? { ok: true, memberId: admitted.grant.id, name: admitted.grant.name }
          : { ok: false, reason: admitted.reason, message: admitted.message }
      })
    },
    actions: {
      announceRing: (_, ring) => {
        log.info('ring', { ringId: ring.ringId, count: ring.count })
        // Screens skip a preview the owner turned off (the machine refuses one anyway).
        const preview = ring.livePreview === false ? { livePreview: false as const } : {}
        for (const t of attached) t.publishRing({ type: 'ring', deviceId: o.deviceId, deviceName: o.deviceName, ringId: ring.ringId, at: ring.at, count: ring.count, ...preview })
      },
      recordCall: (_, summary) => {
        log.info('call recorded', { outcome: summary.outcome, answeredBy: summary.answeredBy.map((a) => a.viewerName), unlocks: summary.unlocks.length })
        for (const t of attached) t.publishCall({ deviceId: o.deviceId, ...summary, endedAt: summary.endedAt ?? now() })
      },
      rejectOffer: (_, { sessionId, viewerId, reason }) => {
        if (reason === 'busy') {
          log.warn('offer refused: the call is full', { viewer: viewerId, max: o.maxViewers })
          signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'busy', message: `over the cap: ${o.deviceName} already has ${o.maxViewers} viewers` })
        } else if (reason === 'cloud-full') {
          // Not an error: the screen keeps the snapshot, and Answer still finds a KVS slot.
          log.info('preview refused: the cloud path has its share of KVS viewers', { viewer: viewerId, max: o.maxCloudPreviews ?? KVS_MAX_PREVIEWS })
          signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'busy', message: `Live preview unavailable away from home: ${o.maxCloudPreviews ?? KVS_MAX_PREVIEWS} screens are already watching (Answer still works)` })
        } else if (reason === 'preview-off') {
          log.info('preview refused: live preview is off', { viewer: viewerId })
          signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'rejected', message: `live preview is off for ${o.deviceName}` })
        } else {
          log.info('preview refused: not ringing', { viewer: viewerId })
          signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'device-ended', message: 'the ring is over' })
        }
      },
      endPreviews: (_, { previews, why, by }) => {
        const message = why === 'missed' ? 'The ring was missed' : `Answered on ${by ?? 'another screen'}`
        for (const p of previews) signal(p.viewerId, p.sessionId, { type: 'bye', sessionId: p.sessionId, reason: 'device-ended', message })
      },
      refuseOffer: (_, { sessionId, viewerId, path, reason, message }) => {
        log.warn('offer refused', { viewer: viewerId, reason, message, path })
        for (const t of on(path)) t.sendToViewer(viewerId, sessionId, { type: 'bye', sessionId, reason: 'rejected', message: message.slice(0, 300) })
      },
      sayRevoked: (_, { sessionId, viewerId }) => {
        log.warn('ending the call of a removed member', { session: sessionId, viewer: viewerId })
        signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'rejected', message: 'you have been removed from this home' })
      },
      viewerLeft: (_, { sessionId, reason, path }) => { log.info('viewer left', { session: sessionId, reason, path }) },
      ignoreReusedSession: (_, { sessionId, path }) => { log.warn('offer refused: the session exists', { session: sessionId, path }) },
      ignoreForeignBye: (_, { sessionId, viewerId, path }) => { log.warn('ignored a bye from another viewer', { session: sessionId, from: viewerId, path }) }
    }
  })
  const actor = call = createActor(machine, {
    input: { ringTimeoutMs: o.ringTimeoutMs, maxCallMs: o.maxCallMs, maxViewers: o.maxViewers, ...(o.livePreview === false ? { livePreview: false } : {}), ...(o.maxCloudPreviews !== undefined ? { maxCloudPreviews: o.maxCloudPreviews } : {}) },
    id: 'deviceCall',
    systemId: 'deviceCall',
    ...(o.inspect ? { inspect: o.inspect } : {})
  })

  const state = (lock: LockState | null = o.lock()): DeviceState => {
    const snap = actor.getSnapshot()
    return {
      deviceId: o.deviceId,
      deviceName: o.deviceName,
      call: {
        status: callStatusOf(snap),
        ringId: snap.context.ring?.ringId ?? null,
        since: snap.context.callStartedAt ?? snap.context.ring?.at ?? 0
      },
      participants: participantsOf(snap),
      lock,
      lastRing: snap.context.lastRing,
      at: now()
    }
  }

  // The retained state is published whenever what it says changes (not its timestamp).
  let lastPublished = ''
  // The lock's state as last told (it tells its listeners a turn after it moves): a call's change
  // in between publishes that one, not a newer one that its own report would then take back.
  let toldLock: LockState | null | undefined
  const publishState = (lock?: LockState | null): void => {
    if (lock !== undefined) toldLock = lock
    const s = state(toldLock === undefined ? o.lock() : toldLock)
    const key = JSON.stringify({ ...s, at: 0 })
    if (key === lastPublished) return
    lastPublished = key
    for (const t of attached) t.publishState(s)
  }

  // The machine decides (a session id is used once; only its owner ends a session): this only says where it came from.
  const onSignal = (from: DeviceTransport) => (viewerId: string, message: SignalToDevice): void => {
    if (message.type === 'offer') {
      log.info('offer', { viewer: message.viewerName, session: message.sessionId, path: from.path })
      actor.send({ type: 'OFFER_RECEIVED', viewerId, offer: message, path: from.path, at: now() })
    } else {
      actor.send({ type: 'VIEWER_BYE', sessionId: message.sessionId, viewerId, reason: message.reason, path: from.path })
    }
  }

  actor.subscribe(() => { publishState() })
  actor.start()

  return {
    call: actor,
    attach (t) {
      if (unsubscribe.has(t)) return
      attached.push(t)
      unsubscribe.set(t, t.onSignal(onSignal(t)))
      t.publishState(state())
    },
    detach (t) {
      unsubscribe.get(t)?.()
      unsubscribe.delete(t)
      const i = attached.indexOf(t)
      if (i >= 0) attached.splice(i, 1)
    },
    transports: () => [...attached],
    ring (ringId) {
      const livePreview = o.livePreview
      actor.send({ type: 'PRESS', ringId, at: now(), ...(typeof livePreview === 'function' ? { livePreview: livePreview() } : {}) })
    },
    state,
    publishState,
    endRevokedSessions () {
      const members = new Set(Object.values(actor.getSnapshot().context.sessions).flatMap((s) => s.memberId === null ? [] : [s.memberId]))
      const memberIds = [...members].filter((id) => o.guard.isRevoked(id))
      if (memberIds.length > 0) actor.send({ type: 'REVOKED', memberIds })
    },
    sessions: () => {
      const { admitting, sessions } = actor.getSnapshot().context
      return Object.keys(admitting).length + Object.keys(sessions).length
    },
    stop () {
      for (const off of unsubscribe.values()) off()
      unsubscribe.clear()
      actor.stop()
    }
  }
}
