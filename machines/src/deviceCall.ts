import { and, assign, enqueueActions, fromCallback, fromPromise, raise, setup, type EventObject } from 'xstate'
import { KVS_MAX_PREVIEWS, type TransportPath } from '@doorbell/core'
import type { Admission, AdmitInput, AnnouncedRing, CallSummary, DeviceCallContext, DeviceCallEvent, DeviceCallInput, OpenAudio, PreviewsEnd, RejectReason, SessionInfo, SessionInput } from './deviceCallTypes'

export * from './deviceCallTypes'

/** The `admit` actor of the offer for this session (a session id has no ':', so no session's actor can take this id). */
export const admitActorId = (sessionId: string): string => `admit:${sessionId}`
const sessionOfAdmit = (actorId: string): string | null => actorId.startsWith('admit:') ? actorId.slice('admit:'.length) : null

const reject = (reason: RejectReason) => ({
  type: 'rejectOffer' as const,
  params: ({ event }: { event: DeviceCallEvent }) => ({
    sessionId: event.type === 'OFFER' ? event.sessionId : '',
    viewerId: event.type === 'OFFER' ? event.viewerId : '',
    reason
  })
})

const endingPreviews = (why: PreviewsEnd['why']) => [
  {
    type: 'endPreviews' as const,
    params: ({ context }: { context: DeviceCallContext }): PreviewsEnd => ({
      previews: Object.values(context.sessions).filter((s) => s.preview).map(({ sessionId, viewerId }) => ({ sessionId, viewerId })),
      why,
      by: context.answeredBy[0]?.viewerName ?? null
    })
  },
  'stopPreviews' as const
]

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

/**
 * The device's side of a call. Each offer that arrives is checked by an `admit` actor of its
 * own (the credential must be a live member of the home); an admitted offer becomes a session:
 * one child actor per viewer session (spawned on the admitted offer, stopped when it ends),
 * whose owner (viewer and member) and path live in context. The device supplies the session's
 * implementation (a werift or browser peer connection) and the admission (its DoorGuard).
 * Timestamps and ids come in on events, so the machine stays pure.
 */
/** The ring to announce, with the ring's preview setting when off. */
const announced = ({ context }: { context: DeviceCallContext }): AnnouncedRing =>
  ({ ...(context.ring ?? { ringId: 'none', at: 0, count: 1 }), ...(context.livePreview ? {} : { livePreview: false as const }) })

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
    announceRing: (_, _params: AnnouncedRing) => {},
    /** Supplied by the device: publish the record of a finished call or missed ring. */
    recordCall: (_, _params: CallSummary) => {},
    /** Supplied by the device: tell a viewer its offer was refused (call full). */
    /**
     * Supplied by the device: tell a viewer its offer was refused: `busy` (over the viewer cap),
     * `preview-off` (the owner turned live preview off), `ring-over` (a preview with no ring, or
     * after the ring was answered), `cloud-full` (a preview on the cloud path over `maxCloudPreviews`:
     * KVS's viewer limit; the screen shows the snapshot, Answer still has a slot).
     */
    rejectOffer: (_, _params: { sessionId: string, viewerId: string, reason: RejectReason }) => {},
    /** Supplied by the device: tell each preview's viewer why it ends (before the session's own bye): the ring was answered (by whom) or missed. */
    endPreviews: (_, _params: PreviewsEnd) => {},
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
      enqueue.assign({ admitting: { ...context.admitting, [offer.sessionId]: { viewerId, sdp: offer.sdp, path, at, preview: offer.preview === true } } })
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
        enqueue.raise({ type: 'OFFER', sessionId: done.sessionId, viewerId: pending.viewerId, viewerName: done.result.name, sdp: pending.sdp, at: pending.at, memberId: done.result.memberId, path: pending.path, preview: pending.preview })
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
      ring: ({ event }) => event.type === 'PRESS' ? { ringId: event.ringId, at: event.at, count: 1 } : null,
      livePreview: ({ context, event }) => event.type === 'PRESS' && event.livePreview !== undefined ? event.livePreview : context.livePreview
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
      const preview = event.preview === true
      enqueue.spawnChild('session', { id: event.sessionId, input: { ...info, sdp: event.sdp, preview } })
      // A preview is not in the call: its viewer joins the call's answerers when it answers.
      const answered = preview || context.answeredBy.some((a) => a.viewerId === event.viewerId)
      enqueue.assign({
        sessions: { ...context.sessions, [event.sessionId]: { ...info, memberId: event.memberId ?? null, path: event.path ?? null, preview } },
        answeredBy: answered ? context.answeredBy : [...context.answeredBy, { viewerId: event.viewerId, viewerName: event.viewerName }]
      })
    }),
    removeSession: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'BYE' && event.type !== 'SESSION_ENDED') return
      const { [event.sessionId]: _gone, ...rest } = context.sessions
      enqueue.stopChild(event.sessionId)
      enqueue.assign({ sessions: rest })
    }),
    /** The preview's viewer answered: its session is the call's from now on, audio both ways. */
    takeCall: enqueueActions(({ enqueue, context, event }) => {
      if (event.type !== 'TAKE_CALL') return
      const session = context.sessions[event.sessionId]
      if (!session) return
      enqueue.assign({
        sessions: { ...context.sessions, [event.sessionId]: { ...session, preview: false, since: event.at } },
        answeredBy: [{ viewerId: session.viewerId, viewerName: session.viewerName }]
      })
      enqueue.sendTo(event.sessionId, { type: 'OPEN_AUDIO' } satisfies OpenAudio)
    }),
    /** The ring is over (answered or missed): every preview still open ends (after `endPreviews` told its viewer why). */
    stopPreviews: enqueueActions(({ enqueue, context }) => {
      const previews = Object.values(context.sessions).filter((s) => s.preview)
      if (previews.length === 0) return
      for (const s of previews) enqueue.stopChild(s.sessionId)
      enqueue.assign({ sessions: Object.fromEntries(Object.entries(context.sessions).filter(([, s]) => !s.preview)) })
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
    isPreviewOffer: ({ event }) => event.type === 'OFFER' && event.preview === true,
    isPreviewOff: ({ context, event }) => event.type === 'OFFER' && event.preview === true && !context.livePreview,
    /** An answer while it rings: the previews end as the call starts, so there is room whenever the cap allows one viewer. */
    isAnswerOffer: ({ context, event }) =>
      event.type === 'OFFER' && event.preview !== true && !(event.sessionId in context.sessions) && context.maxViewers > 0,
    /** A preview over KVS's limit: the cloud path already carries `maxCloudPreviews` sessions. */
    isCloudPreviewOverKvs: ({ context, event }) =>
      event.type === 'OFFER' && event.preview === true && event.path === 'cloud' &&
      !(event.sessionId in context.sessions) &&
      Object.values(context.sessions).filter((s) => s.path === 'cloud').length >= context.maxCloudPreviews,
    isPreviewSession: ({ context, event }) => event.type === 'TAKE_CALL' && context.sessions[event.sessionId]?.preview === true,
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
    livePreview: input.livePreview ?? true,
    maxCloudPreviews: input.maxCloudPreviews ?? KVS_MAX_PREVIEWS,
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
        OFFER: [
          // A preview that came late: the ring is over.
          { guard: 'isPreviewOffer', actions: reject('ring-over') },
          // A live view without a ring ("who is at the door?").
          { guard: 'hasRoom', target: 'inCall', actions: ['startCall', 'addSession'] }
        ]
      }
    },
    ringing: {
      entry: {
        type: 'announceRing',
        params: announced
      },
      // Nobody answered: the previews end with the ring.
      after: { ringTimeout: { target: 'missed', actions: endingPreviews('missed') } },
      on: {
        // A second press re-alerts the same ring; it does not start a new call.
        PRESS: {
          actions: ['reRing', {
            type: 'announceRing',
            params: announced
          }]
        },
        OFFER: [
          { guard: 'isPreviewOff', actions: reject('preview-off') },
          // KVS allows 10 viewers per channel: a cloud preview over its share shows the snapshot.
          { guard: 'isCloudPreviewOverKvs', actions: reject('cloud-full') },
          // A preview counts against the viewer cap: a screen over it shows the snapshot.
          { guard: and(['isPreviewOffer', 'hasRoom']), actions: 'addSession' },
          { guard: and(['isPreviewOffer', 'isNewSessionButFull']), actions: reject('busy') },
          // Answered with a new session (preview off, or a screen over the cap): the previews end.
          { guard: 'isAnswerOffer', target: 'inCall', actions: ['ringAnswered', 'startCall', 'addSession', ...endingPreviews('answered')] }
        ],
        // Answered on a preview: the same session becomes the call; the other previews end.
        TAKE_CALL: { guard: 'isPreviewSession', target: 'inCall', actions: ['ringAnswered', 'startCall', 'takeCall', ...endingPreviews('answered')] },
        BYE: { guard: 'isKnownSession', actions: 'removeSession' },
        SESSION_ENDED: { guard: 'isKnownSession', actions: 'removeSession' }
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
          // The ring was answered: a late preview is told so (its screen offers to join).
          { guard: 'isPreviewOffer', actions: reject('ring-over') },
          { guard: 'hasRoom', actions: 'addSession' },
          { guard: 'isNewSessionButFull', actions: reject('busy') }
        ],
        // The visitor presses again during a call: ring the residents who are not in it yet.
        PRESS: {
          actions: ['reRing', 'ringAnswered', {
            type: 'announceRing',
            params: announced
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
