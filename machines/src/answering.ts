import { createActor, type Actor, type AnyActorLogic, type InspectionEvent } from 'xstate'
import type {
  DeviceState, DeviceTransport, DoorGuard, LockState, Logger, SignalToDevice, SignalToViewer, TransportPath
} from '@doorbell/core'
import { deviceCallMachine } from './deviceCall'
import { callStatusOf, participantsOf } from './describe'

/**
 * The answering side of the call, shared by every device that answers: a doorbell in Node
 * (werift) and a camera node in a browser (RTCPeerConnection). It owns what does not depend
 * on the media stack: the call machine, admission of each offer (the credential must be a
 * live member of the home), which path each session's offer came on (its answer goes back
 * the same way), who may end a session, the state published on every path, and ending a
 * revoked member's calls. The device supplies the session actor (its peer connection).
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
  /** Publishes the state on every path if what it says changed (the lock moved, say). */
  publishState: () => void
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
  /** Which path each session's offer came on: its answer goes back the same way. */
  const sessionPaths = new Map<string, DeviceTransport>()
  /** The member behind each session, so a revocation ends its calls at once. */
  const sessionMembers = new Map<string, { memberId: string, viewerId: string }>()
  /** Offers whose credential is being checked. */
  const admitting = new Set<string>()

  const signal = (viewerId: string, sessionId: string, message: SignalToViewer): void => {
    const path = sessionPaths.get(sessionId)
    // A bye goes every way: the viewer may have moved from one path to another during the call.
    for (const t of message.type === 'bye' || !path ? [...attached] : [path]) t.sendToViewer(viewerId, sessionId, message)
    if (message.type === 'bye') { sessionPaths.delete(sessionId); sessionMembers.delete(sessionId) }
  }
  const routing: SessionRouting = { signal, pathOf: (sessionId) => sessionPaths.get(sessionId)?.path ?? null }

  const machine = deviceCallMachine.provide({
    actors: { session: o.session(routing) as never },
    actions: {
      announceRing: (_, ring) => {
        log.info('ring', { ringId: ring.ringId, count: ring.count })
        for (const t of attached) t.publishRing({ type: 'ring', deviceId: o.deviceId, deviceName: o.deviceName, ...ring })
      },
      recordCall: (_, summary) => {
        log.info('call recorded', { outcome: summary.outcome, answeredBy: summary.answeredBy.map((a) => a.viewerName), unlocks: summary.unlocks.length })
        for (const t of attached) t.publishCall({ deviceId: o.deviceId, ...summary, endedAt: summary.endedAt ?? now() })
      },
      rejectOffer: (_, { sessionId, viewerId }) => {
        log.warn('offer refused: the call is full', { viewer: viewerId, max: o.maxViewers })
        signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'busy', message: `${o.deviceName} already has ${o.maxViewers} viewers` })
      }
    }
  })
  const call = createActor(machine, {
    input: { ringTimeoutMs: o.ringTimeoutMs, maxCallMs: o.maxCallMs, maxViewers: o.maxViewers },
    id: 'deviceCall',
    systemId: 'deviceCall',
    ...(o.inspect ? { inspect: o.inspect } : {})
  })

  const state = (): DeviceState => {
    const snap = call.getSnapshot()
    return {
      deviceId: o.deviceId,
      deviceName: o.deviceName,
      call: {
        status: callStatusOf(snap),
        ringId: snap.context.ring?.ringId ?? null,
        since: snap.context.callStartedAt ?? snap.context.ring?.at ?? 0
      },
      participants: participantsOf(snap),
      lock: o.lock(),
      lastRing: snap.context.lastRing,
      at: now()
    }
  }

  // The retained state is published whenever what it says changes (not its timestamp).
  let lastPublished = ''
  const publishState = (): void => {
    const s = state()
    const key = JSON.stringify({ ...s, at: 0 })
    if (key === lastPublished) return
    lastPublished = key
    for (const t of attached) t.publishState(s)
  }

  const onSignal = (from: DeviceTransport) => (viewerId: string, message: SignalToDevice): void => {
    if (message.type === 'offer') {
      // A session id is used once: a second offer must not take over another viewer's call.
      if (admitting.has(message.sessionId) || sessionMembers.has(message.sessionId)) {
        log.warn('offer refused: the session exists', { session: message.sessionId, path: from.path })
        return
      }
      // No picture for strangers: the offer's credential must be a live member of this home, and
      // its proof signed by the credential's key for this session.
      admitting.add(message.sessionId)
      void o.guard.admit(message.credential, viewerId, { proof: message.proof, session: message.sessionId }).then((admitted) => {
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
        call.send({ type: 'OFFER', sessionId: message.sessionId, viewerId, viewerName: admitted.grant.name, sdp: message.sdp, at: now() })
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

  call.subscribe(publishState)
  call.start()

  return {
    call,
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
    ring (ringId) { call.send({ type: 'PRESS', ringId, at: now() }) },
    state,
    publishState,
    endRevokedSessions () {
      for (const [sessionId, who] of sessionMembers) {
        if (!o.guard.isRevoked(who.memberId)) continue
        log.warn('ending the call of a removed member', { session: sessionId, member: who.memberId })
        // The reason first: the session's own "device-ended" bye, sent as the machine stops it, comes second.
        signal(who.viewerId, sessionId, { type: 'bye', sessionId, reason: 'rejected', message: 'you have been removed from this home' })
        call.send({ type: 'BYE', sessionId })
      }
    },
    sessions: () => admitting.size + sessionMembers.size,
    stop () {
      for (const off of unsubscribe.values()) off()
      unsubscribe.clear()
      call.stop()
    }
  }
}
