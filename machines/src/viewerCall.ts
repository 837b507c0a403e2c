import { assign, fromCallback, sendTo, setup, spawnChild, stopChild, type EventObject } from 'xstate'
import type { LockState, RingEvent } from '@doorbell/core'
import type { CallActorCommand, CallActorInput, EndReason, ViewerCallContext, ViewerCallEvent, ViewerCallInput } from './viewerCallTypes'

export * from './viewerCallTypes'

/** The newer of two lock reports: a higher version, or any report from a device that restarted. */
const newer = (a: LockState | null, b: LockState | null | undefined): LockState | null =>
  b == null ? a : a === null || b.boot !== a.boot || b.version >= a.version ? b : a

/**
 * The viewer's side of a call with one doorbell. The viewer supplies `call` (its peer
 * connection and signaling) and the alert actions; the machine decides what the resident sees.
 */
export const viewerCallMachine = setup({
  types: {
    context: {} as ViewerCallContext,
    input: {} as ViewerCallInput,
    events: {} as ViewerCallEvent
  },
  actors: {
    /** Supplied by the viewer: offer, answer, media and the data channel of one session. */
    call: fromCallback<EventObject, CallActorInput>(() => {
      throw new Error('call was not provided')
    })
  },
  actions: {
    /** Supplied by the viewer: sound, banner, Notification. */
    alert: (_, _params: { ring: RingEvent | null }) => {},
    /** Supplied by the viewer: stop the sound. */
    silence: () => {},
    takeRing: assign({
      ring: ({ context, event }) => event.type === 'RING' ? event.ring : context.ring,
      endReason: null,
      error: null
    }),
    /** A viewer that joins while the doorbell rings learns of the ring from the retained state. */
    takeRingFromState: assign({
      ring: ({ context, event }) => {
        if (event.type !== 'DEVICE_STATE' || event.state.call.ringId === null) return context.ring
        const s = event.state
        return { type: 'ring' as const, deviceId: s.deviceId, deviceName: s.deviceName, ringId: event.state.call.ringId!, at: s.call.since, count: 1 }
      },
      endReason: null,
      error: null
    }),
    takeDeviceState: assign({
      device: ({ context, event }) => event.type === 'DEVICE_STATE' ? event.state : context.device,
      // While the doorbell is offline a state is its last word before it went (a retained one): not the door now.
      door: ({ context, event }) => event.type === 'DEVICE_STATE' && context.online !== false ? newer(context.door, event.state.lock) : context.door
    }),
    /** Offline: the lock state is unknown until the doorbell itself reports again. */
    takePresence: assign(({ context, event }) => {
      if (event.type !== 'PRESENCE') return {}
      return { online: event.online, door: event.online ? context.door : null, deviceName: event.deviceName ?? context.deviceName }
    }),
    takeReply: assign(({ context, event }) => {
      if (event.type !== 'REPLY') return {}
      const r = event.reply
      if (r.type === 'lock') return { door: newer(context.door, r.lock) }
      if (r.type === 'ack') {
        return {
          door: newer(context.door, r.lock),
          pendingCommand: context.pendingCommand === r.id ? null : context.pendingCommand,
          commandError: null
        }
      }
      return {
        pendingCommand: context.pendingCommand === r.id ? null : context.pendingCommand,
        commandError: r.error.message
      }
    }),
    /** The call actor: spawned (not invoked), so a preview lives on into the call it becomes. */
    spawnCall: spawnChild('call', {
      id: 'call',
      input: ({ context, event }) => ({
        deviceId: context.deviceId,
        // A join after a refused take (REMOTE_BYE) has its session id in context already.
        sessionId: 'sessionId' in event ? event.sessionId : context.sessionId ?? 'none',
        preview: event.type === 'PREVIEW'
      })
    }),
    /** Stops the call actor if there is one (its cleanup sends the doorbell a bye). */
    stopCall: stopChild('call'),
    startPreview: assign({
      sessionId: ({ event }) => event.type === 'PREVIEW' ? event.sessionId : null,
      previewing: true,
      previewedRingId: ({ context }) => context.ring?.ringId ?? null,
      previewNote: null
    }),
    /** The preview ended before Answer (refused over the cap, turned off, answered elsewhere, failed): the snapshot stays. */
    endPreview: assign(({ event }) => ({
      previewing: false,
      sessionId: null,
      previewNote: event.type === 'REMOTE_BYE'
        ? event.message ?? 'The live picture ended'
        : event.type === 'FAILED' ? event.message : 'No live picture'
    })),
    clearPreview: assign({ previewing: false, previewNote: null }),
    takeCall: sendTo('call', (): CallActorCommand => ({ type: 'TAKE_CALL' })),
    keepFallback: assign({ fallbackSessionId: ({ event }) => event.type === 'ANSWER' ? event.sessionId : null }),
    forgetFallback: assign({ fallbackSessionId: null }),
    joinInstead: assign(({ context }) => ({ sessionId: context.fallbackSessionId, fallbackSessionId: null, heldCommand: null })),
    startSession: assign({
      sessionId: ({ event }) => (event.type === 'ANSWER' || event.type === 'WATCH') ? event.sessionId : null,
      endReason: null,
      error: null,
      commandError: null,
      pendingCommand: null,
      heldCommand: null
    }),
    endAs: assign((_, params: { reason: EndReason }) => ({ endReason: params.reason, sessionId: null, pendingCommand: null, heldCommand: null, previewing: false })),
    endFromBye: assign(({ event }) => {
      if (event.type !== 'REMOTE_BYE') return {}
      const reason: EndReason = event.reason === 'busy'
        ? 'busy'
        : event.reason === 'failed' || event.reason === 'rejected' ? 'failed' : 'device-ended'
      return { endReason: reason, error: event.message ?? null, sessionId: null, pendingCommand: null, heldCommand: null, previewing: false }
    }),
    endFailed: assign(({ event }) => ({
      endReason: 'failed' as const,
      error: event.type === 'FAILED' ? event.message : 'no answer from the doorbell',
      sessionId: null,
      pendingCommand: null,
      heldCommand: null,
      previewing: false
    })),
    endRing: assign(({ context, event }) => {
      if (event.type !== 'DEVICE_STATE') return {}
      const last = event.state.lastRing
      const answered = last !== null && last.ringId === context.ring?.ringId && last.outcome === 'answered'
      return { endReason: answered ? 'answered-elsewhere' as const : 'missed' as const, sessionId: null, previewing: false }
    }),
    /** A ring that the doorbell's state already says is over (it came late, queued while this screen was away). */
    takeEndedRing: assign(({ context, event }) => {
      if (event.type !== 'RING') return {}
      const last = context.device?.lastRing
      const answered = last?.ringId === event.ring.ringId && last.outcome === 'answered'
      return { ring: event.ring, endReason: answered ? 'answered-elsewhere' as const : 'missed' as const, error: null }
    }),
    dismiss: assign({ dismissedRingId: ({ context }) => context.ring?.ringId ?? null, sessionId: null, previewing: false }),
    // After notePending: the command sent is the one pending (the held one, if any).
    sendUnlock: sendTo('call', ({ context }): CallActorCommand => ({
      type: 'SEND_COMMAND',
      command: { type: 'unlock', id: context.pendingCommand ?? 'none' }
    })),
    prepareUnlock: sendTo('call', ({ event }): CallActorCommand => ({
      type: 'PREPARE_COMMAND',
      command: { type: 'unlock', id: event.type === 'HOLD_OPEN' ? event.commandId : 'none' }
    })),
    holdUnlock: assign({ heldCommand: ({ event }) => event.type === 'HOLD_OPEN' ? event.commandId : null }),
    dropUnlock: sendTo('call', (): CallActorCommand => ({ type: 'DROP_COMMAND' })),
    releaseUnlock: assign({ heldCommand: null }),
    notePending: assign(({ context, event }) => ({
      pendingCommand: context.heldCommand ?? (event.type === 'UNLOCK' ? event.commandId : null),
      heldCommand: null,
      commandError: null
    })),
    commandTimedOut: assign({ pendingCommand: null, commandError: 'The doorbell did not answer. Try again.' })
  },
  guards: {
    /** The device rings for a ring we have not seen or dismissed. */
    isNewRingInState: ({ context, event }) =>
      event.type === 'DEVICE_STATE' &&
      event.state.call.status === 'ringing' &&
      event.state.call.ringId !== null &&
      event.state.call.ringId !== context.ring?.ringId &&
      event.state.call.ringId !== context.dismissedRingId,
    isRingOver: ({ context, event }) =>
      event.type === 'DEVICE_STATE' &&
      !(event.state.call.status !== 'idle' && event.state.call.ringId === context.ring?.ringId),
    /**
     * A ring to alert for: not dismissed, not one already seen (the same ring can arrive twice when
     * a device sends it on two paths, or late when the hub comes back), and not older than what
     * the device has said since (its state and rings carry the device's own clock).
     */
    isFreshRing: ({ context, event }) => {
      if (event.type !== 'RING') return false
      const r = event.ring
      if (r.ringId === context.dismissedRingId) return false
      if (context.ring?.ringId === r.ringId && r.count <= context.ring.count) return false
      const d = context.device
      return !(d !== null && d.at > r.at && d.call.ringId !== r.ringId)
    },
    /**
     * A ring not seen before that the doorbell's state says is over: its last ring, or the state
     * is newer than the ring and is about another one (or none). Shown as missed, never alerted:
     * a ring pressed during an outage reaches a screen when both are back, often after it ended.
     */
    isRingOverInState: ({ context, event }) => {
      if (event.type !== 'RING') return false
      const r = event.ring
      const d = context.device
      if (d === null || r.ringId === context.dismissedRingId || context.ring?.ringId === r.ringId) return false
      return d.lastRing?.ringId === r.ringId && d.call.ringId !== r.ringId
    },
    /**
     * States can arrive out of order across two paths: an older one never replaces a newer one.
     * Compared within one boot of the device only: a Pi without a clock may come back behind.
     * A camera node has no door, so no boot to compare: its states are ordered by time alone.
     */
    isStaleState: ({ context, event }) =>
      event.type === 'DEVICE_STATE' && context.device !== null &&
      (event.state.lock?.boot ?? null) === (context.device.lock?.boot ?? null) && event.state.at < context.device.at,
    /** A preview for this ring, once: the screen previews, the ring allows it, and no session is up. */
    mayPreview: ({ context, event }) =>
      event.type === 'PREVIEW' && context.preview && context.ring !== null && context.ring.livePreview !== false &&
      context.previewedRingId !== context.ring.ringId && context.sessionId === null,
    /** The preview this screen answered on was ended before the doorbell confirmed: join instead. */
    isTakeRefused: ({ context, event }) => event.type === 'REMOTE_BYE' && event.reason === 'device-ended' && context.fallbackSessionId !== null,
    isPendingReply: ({ context, event }) =>
      event.type === 'REPLY' && event.reply.type !== 'lock' && event.reply.id === context.pendingCommand
  },
  delays: {
    connectTimeout: ({ context }) => context.connectTimeoutMs,
    commandTimeout: ({ context }) => context.commandTimeoutMs
  }
}).createMachine({
  id: 'viewerCall',
  context: ({ input }) => ({
    deviceId: input.deviceId,
    connectTimeoutMs: input.connectTimeoutMs ?? 15_000,
    commandTimeoutMs: input.commandTimeoutMs ?? 5_000,
    ring: null,
    device: null,
    door: null,
    online: null,
    deviceName: null,
    sessionId: null,
    endReason: null,
    error: null,
    pendingCommand: null,
    heldCommand: null,
    commandError: null,
    dismissedRingId: null,
    preview: input.preview ?? false,
    previewing: false,
    previewedRingId: null,
    previewNote: null,
    fallbackSessionId: null
  }),
  initial: 'idle',
  on: {
    DEVICE_STATE: [{ guard: 'isStaleState' }, { actions: 'takeDeviceState' }],
    PRESENCE: { actions: 'takePresence' }
  },
  states: {
    idle: {
      on: {
        RING: [
          { guard: 'isFreshRing', target: 'incoming', actions: 'takeRing' },
          { guard: 'isRingOverInState', target: 'ended', actions: 'takeEndedRing' }
        ],
        DEVICE_STATE: [
          { guard: 'isStaleState' },
          { guard: 'isNewRingInState', target: 'incoming', actions: ['takeDeviceState', 'takeRingFromState'] },
          { actions: 'takeDeviceState' }
        ],
        WATCH: { target: 'active', actions: ['startSession', 'spawnCall'] }
      }
    },
    incoming: {
      entry: [{ type: 'alert', params: ({ context }) => ({ ring: context.ring }) }, 'clearPreview'],
      exit: 'silence',
      on: {
        // A second press re-alerts (the preview, if up, stays); a late re-press of a ring the resident dismissed does not.
        RING: { guard: 'isFreshRing', actions: ['takeRing', 'silence', { type: 'alert', params: ({ context }) => ({ ring: context.ring }) }] },
        ANSWER: { target: 'active', actions: ['startSession', 'spawnCall'] },
        // Dismiss closes the preview on the doorbell (the call actor's bye).
        DISMISS: { target: 'idle', actions: ['stopCall', 'dismiss'] },
        DEVICE_STATE: [
          { guard: 'isStaleState' },
          { guard: 'isNewRingInState', target: 'incoming', reenter: true, actions: ['stopCall', 'takeDeviceState', 'takeRingFromState'] },
          // Missed or answered elsewhere: the preview, if still up, ends with the ring.
          { guard: 'isRingOver', target: 'ended', actions: ['stopCall', 'takeDeviceState', 'endRing'] },
          { actions: 'takeDeviceState' }
        ]
      },
      initial: 'snapshot',
      states: {
        // The snapshot (issue 19) while no live picture is up: before the preview, or when it was refused or ended.
        snapshot: {
          on: { PREVIEW: { guard: 'mayPreview', target: 'preview', actions: ['startPreview', 'spawnCall'] } }
        },
        // Live and muted: video only, nothing sent; Answer opens audio and talk on this connection.
        preview: {
          initial: 'connecting',
          on: {
            REMOTE_BYE: { target: 'snapshot', actions: ['stopCall', 'endPreview'] },
            FAILED: { target: 'snapshot', actions: ['stopCall', 'endPreview'] }
          },
          states: {
            connecting: {
              after: { connectTimeout: { target: '#viewerCall.incoming.snapshot', actions: ['stopCall', 'endPreview'] } },
              on: {
                CONNECTED: 'live',
                ANSWER: { target: '#viewerCall.active.connecting', actions: ['clearPreview', 'keepFallback', 'takeCall'] }
              }
            },
            live: {
              on: { ANSWER: { target: '#viewerCall.active.connected', actions: ['clearPreview', 'keepFallback', 'takeCall'] } }
            }
          }
        }
      }
    },
    active: {
      exit: ['stopCall', 'forgetFallback'],
      initial: 'connecting',
      on: {
        HANGUP: { target: 'ended', actions: { type: 'endAs', params: { reason: 'hung-up' } } },
        CALL_TAKEN: { actions: 'forgetFallback' },
        REMOTE_BYE: [
          // Someone answered a moment earlier and the doorbell ended this preview: join the call on a new session.
          { guard: 'isTakeRefused', target: '.connecting', actions: ['stopCall', 'joinInstead', 'spawnCall'] },
          { target: 'ended', actions: 'endFromBye' }
        ],
        FAILED: { target: 'ended', actions: 'endFailed' },
        REPLY: { actions: 'takeReply' }
      },
      states: {
        connecting: {
          after: { connectTimeout: { target: '#viewerCall.ended', actions: 'endFailed' } },
          on: { CONNECTED: 'connected' }
        },
        connected: {
          initial: 'ready',
          states: {
            ready: {
              on: {
                HOLD_OPEN: { actions: ['holdUnlock', 'prepareUnlock'] },
                RELEASE_OPEN: { actions: ['releaseUnlock', 'dropUnlock'] },
                UNLOCK: { target: 'commandPending', actions: ['notePending', 'sendUnlock'] }
              }
            },
            commandPending: {
              after: { commandTimeout: { target: 'ready', actions: 'commandTimedOut' } },
              on: {
                REPLY: [
                  { guard: 'isPendingReply', target: 'ready', actions: 'takeReply' },
                  { actions: 'takeReply' }
                ]
              }
            }
          }
        }
      }
    },
    ended: {
      on: {
        RING: [
          { guard: 'isFreshRing', target: 'incoming', actions: 'takeRing' },
          { guard: 'isRingOverInState', target: 'ended', reenter: true, actions: 'takeEndedRing' }
        ],
        DEVICE_STATE: [
          { guard: 'isStaleState' },
          { guard: 'isNewRingInState', target: 'incoming', actions: ['takeDeviceState', 'takeRingFromState'] },
          { actions: 'takeDeviceState' }
        ],
        WATCH: { target: 'active', actions: ['startSession', 'spawnCall'] },
        DISMISS: { target: 'idle', actions: 'dismiss' }
      }
    }
  }
})
