import { assign, enqueueActions, fromCallback, setup, type EventObject } from 'xstate'

/**
 * The device's side of a call. One child actor per viewer session (spawned on the viewer's
 * offer, stopped when it ends); the device supplies the session's implementation (a werift
 * peer connection). Timestamps and ids come in on events, so the machine stays pure.
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

export interface RingInfo {
  ringId: string
  at: number
  count: number
}

export interface DeviceCallContext extends DeviceCallInput {
  ring: RingInfo | null
  callStartedAt: number | null
  sessions: Record<string, SessionInfo>
  answeredBy: Array<{ viewerId: string, viewerName: string }>
  unlocks: Array<{ viewerId: string, at: number }>
  lastRing: { ringId: string, at: number, outcome: 'answered' | 'missed' } | null
}

export type DeviceCallEvent =
  | { type: 'PRESS', ringId: string, at: number }
  | { type: 'OFFER', sessionId: string, viewerId: string, viewerName: string, sdp: string, at: number }
  | { type: 'BYE', sessionId: string }
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

const eventTime = (event: DeviceCallEvent | EventObject): number =>
  'at' in event && typeof event.at === 'number' ? event.at : 0

export const deviceCallMachine = setup({
  types: {
    context: {} as DeviceCallContext,
    input: {} as DeviceCallInput,
    events: {} as DeviceCallEvent
  },
  actors: {
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
        sessions: { ...context.sessions, [event.sessionId]: info },
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
    answeredBy: [],
    unlocks: [],
    lastRing: null
  }),
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
