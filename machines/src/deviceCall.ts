import { assign, enqueueActions, fromCallback, fromPromise, raise, setup, type EventObject } from 'xstate'
import type { Offer, TransportPath } from '@doorbell/core'

/**
 * The device's side of a call. Each offer that arrives is checked by an `admit` actor of its
 * own (the credential must be a live member of the home); an admitted offer becomes a session:
 * one child actor per viewer session (spawned on the admitted offer, stopped when it ends),
 * whose owner (viewer and member) and path live in context. The device supplies the session's
 * implementation (a werift or browser peer connection) and the admission (its DoorGuard).
 * Timestamps and ids come in on events, so the machine stays pure.
 */
export interface DeviceCallInput {
  ringTimeoutMs: number
  maxCallMs: number
  maxViewers: number
}

export interface SessionInfo {
  sessionId: string
  viewerId: string
  viewerName: string
  since: number
}

export interface SessionInput extends SessionInfo {
  sdp: string
}

/** A session as the call knows it: who is in it, the member who owns it, the path its signaling takes. */
export interface CallSession extends SessionInfo {
  /** The member whose grant admitted the offer (null: offered without admission, as the tests do). */
  memberId: string | null
  /** The path the offer came on: its answer goes back the same way. */
  path: TransportPath | null
}

/** An offer being admitted: its viewer (the only one who may withdraw it) and what the session needs. */
export interface Admitting {
  viewerId: string
  sdp: string
  path: TransportPath
  at: number
}

/** What the `admit` actor is given: the offer as it came, and the viewer that sent it. */
export interface AdmitInput {
  viewerId: string
  offer: Offer
}

/** What admission decides: a member (its id and name) or a refusal with the reason to tell the viewer. */
export type Admission =
  | { ok: true, memberId: string, name: string }
  | { ok: false, reason: string, message: string }

/** The `admit` actor of the offer for this session (a session id has no ':', so no session's actor can take this id). */
export const admitActorId = (sessionId: string): string => `admit:${sessionId}`
const sessionOfAdmit = (actorId: string): string | null => actorId.startsWith('admit:') ? actorId.slice('admit:'.length) : null

export interface RingInfo {
  ringId: string
  at: number
  count: number
}

export interface DeviceCallContext extends DeviceCallInput {
  ring: RingInfo | null
  callStartedAt: number | null
  sessions: Record<string, CallSession>
  /** Offers whose credential is being checked, by session id. */
  admitting: Record<string, Admitting>
  answeredBy: Array<{ viewerId: string, viewerName: string }>
  unlocks: Array<{ viewerId: string, at: number }>
  lastRing: { ringId: string, at: number, outcome: 'answered' | 'missed' } | null
}

export type DeviceCallEvent =
  | { type: 'PRESS', ringId: string, at: number }
  /** An offer as it arrived on a path: admitted first (the `admit` actor), then it becomes an OFFER. */
  | { type: 'OFFER_RECEIVED', viewerId: string, offer: Offer, path: TransportPath, at: number }
  /** An admitted offer (`memberId` and `path` absent: offered without admission). */
  | { type: 'OFFER', sessionId: string, viewerId: string, viewerName: string, sdp: string, at: number, memberId?: string, path?: TransportPath }
  /** Admission refused an offer's credential (raised by the machine itself). */
  | { type: 'OFFER_REFUSED', sessionId: string, viewerId: string, path: TransportPath, reason: string, message: string }
  /** A viewer's bye as it arrived on a path: it ends the session only if that viewer owns it. */
  | { type: 'VIEWER_BYE', sessionId: string, viewerId: string, reason: string, path: TransportPath }
  /** The device's own end of a session (or a bye already checked). */
  | { type: 'BYE', sessionId: string }
  /** These members were removed from the home: their sessions end now. */
  | { type: 'REVOKED', memberIds: string[] }
  | { type: 'SESSION_ENDED', sessionId: string, reason: string }
  | { type: 'UNLOCKED', sessionId: string, at: number }
  | { type: 'END_CALL', at: number }

/** What `recordCall` is given: everything the call record needs. */
export interface CallSummary {
  ringId: string | null
  startedAt: number
  /** null: the call ends now, by the device's clock. */
  endedAt: number | null
  outcome: 'answered' | 'missed' | 'live-view'
  answeredBy: Array<{ viewerId: string, viewerName: string }>
  unlocks: Array<{ viewerId: string, at: number }>
}

/** The done and error events of the `admit` actors (spawned children, so their ids vary). */
interface AdmitDone { type: `xstate.done.actor.${string}`, actorId: string, output: Admission }
interface AdmitError { type: `xstate.error.actor.${string}`, actorId: string, error: unknown }
const admitEvent = (event: EventObject): { sessionId: string, result: Admission } | null => {
  const { actorId } = event as Partial<AdmitDone>
  const sessionId = typeof actorId === 'string' ? sessionOfAdmit(actorId) : null
  if (sessionId === null) return null
  if (event.type.startsWith('xstate.done.actor.')) return { sessionId, result: (event as AdmitDone).output }
  const error = (event as AdmitError).error
  return { sessionId, result: { ok: false, reason: 'error', message: `the credential could not be checked: ${error instanceof Error ? error.message : String(error)}` } }
}

const eventTime = (event: DeviceCallEvent | EventObject): number =>
  'at' in event && typeof event.at === 'number' ? event.at : 0

export const deviceCallMachine = setup({
  types: {
    context: {} as DeviceCallContext,
    input: {} as DeviceCallInput,
    events: {} as DeviceCallEvent
  },
  actors: {
    /** Supplied by the device: checks an offer's credential (its DoorGuard). One per offer; stopped if its viewer withdraws it. */
    admit: fromPromise<Admission, AdmitInput>(async () => {
      throw new Error('admit was not provided')
    }),
    /** Supplied by the device: one viewer's peer connection. Sends SESSION_ENDED / UNLOCKED back. */
    session: fromCallback<EventObject, SessionInput>(() => {
      throw new Error('session was not provided')
    })
  },
  actions: {
    /** Supplied by the device: publish a ring event (QoS 1). */
    announceRing: (_, _params: RingInfo) => {},
    /** Supplied by the device: publish the record of a finished call or missed ring. */
    recordCall: (_, _params: CallSummary) => {},
    /** Supplied by the device: tell a viewer its offer was refused (call full). */
    rejectOffer: (_, _params: { sessionId: string, viewerId: string, reason: 'busy' }) => {},
    /** Supplied by the device: tell a viewer its credential was refused (on the path its offer came on). */
    refuseOffer: (_, _params: { sessionId: string, viewerId: string, path: TransportPath, reason: string, message: string }) => {},
    /** Supplied by the device (its log): the session's own viewer left or withdrew its offer. */
    viewerLeft: (_, _params: { sessionId: string, viewerId: string, reason: string, path: TransportPath }) => {},
    /** Supplied by the device: say why a revoked member's session ends (before the session's own bye). */
    sayRevoked: (_, _params: { sessionId: string, viewerId: string }) => {},
    /** Supplied by the device (its log): an offer reused a session id; a bye came from a viewer that does not own the session. */
    ignoreReusedSession: (_, _params: { sessionId: string, viewerId: string, path: TransportPath }) => {},
    ignoreForeignBye: (_, _params: { sessionId: string, viewerId: string, path: TransportPath }) => {},
    admitOffer: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'OFFER_RECEIVED') return
      const { offer, viewerId, path, at } = event
      enqueue.spawnChild('admit', { id: admitActorId(offer.sessionId), input: { viewerId, offer } })
      enqueue.assign({ admitting: { ...context.admitting, [offer.sessionId]: { viewerId, sdp: offer.sdp, path, at } } })
    }),
    /** Forgets a finished admission (its actor is done): the verdict's own action follows. */
    endAdmission: enqueueActions(({ enqueue, context, event }) => {
      const done = admitEvent(event)
      if (done === null) return
      enqueue.stopChild(admitActorId(done.sessionId))
      const pending = context.admitting[done.sessionId]
      if (!pending) return
      const { [done.sessionId]: _checked, ...rest } = context.admitting
      enqueue.assign({ admitting: rest })
      if (done.result.ok) {
        enqueue.raise({ type: 'OFFER', sessionId: done.sessionId, viewerId: pending.viewerId, viewerName: done.result.name, sdp: pending.sdp, at: pending.at, memberId: done.result.memberId, path: pending.path })
      } else {
        enqueue.raise({ type: 'OFFER_REFUSED', sessionId: done.sessionId, viewerId: pending.viewerId, path: pending.path, reason: done.result.reason, message: done.result.message })
      }
    }),
    /** The viewer withdrew its offer while it was being admitted. */
    withdrawOffer: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'VIEWER_BYE' || !(event.sessionId in context.admitting)) return
      const { [event.sessionId]: _withdrawn, ...rest } = context.admitting
      enqueue.stopChild(admitActorId(event.sessionId))
      enqueue.assign({ admitting: rest })
    }),
    endViewersSession: raise(({ event }) => ({ type: 'BYE' as const, sessionId: event.type === 'VIEWER_BYE' ? event.sessionId : '' })),
    newRing: assign({
      ring: ({ event }) => event.type === 'PRESS' ? { ringId: event.ringId, at: event.at, count: 1 } : null
    }),
    reRing: assign({
      // During a live view there is no ring yet: a press then starts one.
      ring: ({ context, event }) => context.ring !== null
        ? { ...context.ring, count: context.ring.count + 1 }
        : event.type === 'PRESS' ? { ringId: event.ringId, at: event.at, count: 1 } : null
    }),
    startCall: assign({ callStartedAt: ({ event }) => eventTime(event), answeredBy: [], unlocks: [] }),
    addSession: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'OFFER') return
      const info: SessionInfo = { sessionId: event.sessionId, viewerId: event.viewerId, viewerName: event.viewerName, since: event.at }
      enqueue.spawnChild('session', { id: event.sessionId, input: { ...info, sdp: event.sdp } })
      const answered = context.answeredBy.some((a) => a.viewerId === event.viewerId)
      enqueue.assign({
        sessions: { ...context.sessions, [event.sessionId]: { ...info, memberId: event.memberId ?? null, path: event.path ?? null } },
        answeredBy: answered ? context.answeredBy : [...context.answeredBy, { viewerId: event.viewerId, viewerName: event.viewerName }]
      })
    }),
    removeSession: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'BYE' && event.type !== 'SESSION_ENDED') return
      const { [event.sessionId]: _gone, ...rest } = context.sessions
      enqueue.stopChild(event.sessionId)
      enqueue.assign({ sessions: rest })
    }),
    endAllSessions: enqueueActions(({ enqueue, context }) => {
      for (const id of Object.keys(context.sessions)) enqueue.stopChild(id)
      enqueue.assign({ sessions: {} })
    }),
    noteUnlock: assign({
      unlocks: ({ context, event }) => {
        if (event.type !== 'UNLOCKED') return context.unlocks
        const session = context.sessions[event.sessionId]
        return session ? [...context.unlocks, { viewerId: session.viewerId, at: event.at }] : context.unlocks
      }
    }),
    ringMissed: assign({
      lastRing: ({ context }) => context.ring && { ringId: context.ring.ringId, at: context.ring.at, outcome: 'missed' as const }
    }),
    ringAnswered: assign({
      lastRing: ({ context }) => context.ring && { ringId: context.ring.ringId, at: context.ring.at, outcome: 'answered' as const }
    }),
    clearCall: assign({ ring: null, callStartedAt: null, answeredBy: [], unlocks: [] })
  },
  guards: {
    /** A session id is used once: an offer must not take over another viewer's call, nor one being admitted. */
    isUnusedSessionId: ({ context, event }) =>
      event.type === 'OFFER_RECEIVED' &&
      !(event.offer.sessionId in context.admitting) &&
      !(event.offer.sessionId in context.sessions),
    isAdmission: ({ event }) => admitEvent(event) !== null,
    /** Only the session's own viewer ends it (session ids are public in the device's state). */
    isOwnersBye: ({ context, event }) => {
      if (event.type !== 'VIEWER_BYE') return false
      const owner = context.admitting[event.sessionId]?.viewerId ?? context.sessions[event.sessionId]?.viewerId
      return owner === undefined || owner === event.viewerId
    },
    hasRoom: ({ context, event }) =>
      event.type === 'OFFER' &&
      !(event.sessionId in context.sessions) &&
      Object.keys(context.sessions).length < context.maxViewers,
    isKnownSession: ({ context, event }) =>
      (event.type === 'BYE' || event.type === 'SESSION_ENDED') && event.sessionId in context.sessions,
    isLastSession: ({ context, event }) =>
      (event.type === 'BYE' || event.type === 'SESSION_ENDED') &&
      event.sessionId in context.sessions &&
      Object.keys(context.sessions).length === 1,
    isNewSessionButFull: ({ context, event }) =>
      event.type === 'OFFER' && !(event.sessionId in context.sessions)
  },
  delays: {
    ringTimeout: ({ context }) => context.ringTimeoutMs,
    maxCall: ({ context }) => context.maxCallMs
  }
}).createMachine({
  id: 'deviceCall',
  context: ({ input }) => ({
    ...input,
    ring: null,
    callStartedAt: null,
    sessions: {},
    admitting: {},
    answeredBy: [],
    unlocks: [],
    lastRing: null
  }),
  // Admission and the owner's bye, in every state: what an admitted offer or a bye does depends on the state.
  on: {
    OFFER_RECEIVED: [
      { guard: 'isUnusedSessionId', actions: 'admitOffer' },
      {
        actions: {
          type: 'ignoreReusedSession',
          params: ({ event }) => ({ sessionId: event.offer.sessionId, viewerId: event.viewerId, path: event.path })
        }
      }
    ],
    // The admission's verdict: an admitted offer goes on as an OFFER; a refused one is told why.
    'xstate.done.actor.*': { guard: 'isAdmission', actions: 'endAdmission' },
    'xstate.error.actor.*': { guard: 'isAdmission', actions: 'endAdmission' },
    VIEWER_BYE: [
      {
        guard: 'isOwnersBye',
        actions: [
          { type: 'viewerLeft', params: ({ event }) => ({ sessionId: event.sessionId, viewerId: event.viewerId, reason: event.reason, path: event.path }) },
          'withdrawOffer',
          'endViewersSession'
        ]
      },
      {
        actions: {
          type: 'ignoreForeignBye',
          params: ({ event }) => ({ sessionId: event.sessionId, viewerId: event.viewerId, path: event.path })
        }
      }
    ],
    OFFER_REFUSED: {
      actions: {
        type: 'refuseOffer',
        params: ({ event }) => ({ sessionId: event.sessionId, viewerId: event.viewerId, path: event.path, reason: event.reason, message: event.message })
      }
    },
    REVOKED: {
      actions: enqueueActions(({ enqueue, context, event }) => {
        const revoked = Object.values(context.sessions).filter((s) => s.memberId !== null && event.memberIds.includes(s.memberId))
        // The reason first; each session's own bye, as the BYE stops it, second.
        for (const s of revoked) enqueue({ type: 'sayRevoked', params: { sessionId: s.sessionId, viewerId: s.viewerId } })
        for (const s of revoked) enqueue.raise({ type: 'BYE', sessionId: s.sessionId })
      })
    }
  },
  initial: 'idle',
  states: {
    idle: {
      entry: 'clearCall',
      on: {
        PRESS: { target: 'ringing', actions: 'newRing' },
        // A live view without a ring ("who is at the door?").
        OFFER: { guard: 'hasRoom', target: 'inCall', actions: ['startCall', 'addSession'] }
      }
    },
    ringing: {
      entry: {
        type: 'announceRing',
        params: ({ context }) => context.ring ?? { ringId: 'none', at: 0, count: 1 }
      },
      after: { ringTimeout: 'missed' },
      on: {
        // A second press re-alerts the same ring; it does not start a new call.
        PRESS: {
          actions: ['reRing', {
            type: 'announceRing',
            params: ({ context }) => context.ring ?? { ringId: 'none', at: 0, count: 1 }
          }]
        },
        OFFER: { guard: 'hasRoom', target: 'inCall', actions: ['ringAnswered', 'startCall', 'addSession'] }
      }
    },
    missed: {
      entry: [
        'ringMissed',
        {
          type: 'recordCall',
          params: ({ context }) => ({
            ringId: context.ring?.ringId ?? null,
            startedAt: context.ring?.at ?? 0,
            endedAt: (context.ring?.at ?? 0) + context.ringTimeoutMs,
            outcome: 'missed' as const,
            answeredBy: [],
            unlocks: []
          })
        }
      ],
      always: 'idle'
    },
    inCall: {
      after: { maxCall: { target: 'idle', actions: 'endAllSessions' } },
      on: {
        OFFER: [
          { guard: 'hasRoom', actions: 'addSession' },
          {
            guard: 'isNewSessionButFull',
            actions: {
              type: 'rejectOffer',
              params: ({ event }) => ({
                sessionId: event.type === 'OFFER' ? event.sessionId : '',
                viewerId: event.type === 'OFFER' ? event.viewerId : '',
                reason: 'busy' as const
              })
            }
          }
        ],
        // The visitor presses again during a call: ring the residents who are not in it yet.
        PRESS: {
          actions: ['reRing', 'ringAnswered', {
            type: 'announceRing',
            params: ({ context }) => context.ring ?? { ringId: 'none', at: 0, count: 1 }
          }]
        },
        UNLOCKED: { actions: 'noteUnlock' },
        BYE: [
          { guard: 'isLastSession', target: 'idle', actions: 'removeSession' },
          { guard: 'isKnownSession', actions: 'removeSession' }
        ],
        SESSION_ENDED: [
          { guard: 'isLastSession', target: 'idle', actions: 'removeSession' },
          { guard: 'isKnownSession', actions: 'removeSession' }
        ],
        END_CALL: { target: 'idle', actions: 'endAllSessions' }
      },
      exit: {
        type: 'recordCall',
        params: ({ context }) => ({
          ringId: context.ring?.ringId ?? null,
          startedAt: context.callStartedAt ?? 0,
          endedAt: null,
          outcome: context.ring === null ? 'live-view' as const : 'answered' as const,
          answeredBy: context.answeredBy,
          unlocks: context.unlocks
        })
      }
    }
  }
})
