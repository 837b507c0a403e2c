import { assign, setup } from 'xstate'

/**
 * The talk lease: who may be heard on the device's speaker. One talker at a time; the lease
 * never sticks open: it ends when the holder lets go (`RELEASE`), leaves the call or loses its
 * connection (`LEFT`), sends no audio for `silenceMs`, or at `maxMs` unless renewed (`RENEW`,
 * sent while the button is held; asking again while holding renews too).
 *
 * Pure: the device checks each signed command (DoorGuard.checkTalk) before it sends `REQUEST`
 * or `RENEW` here, tells it of each audio packet of the holder (`AUDIO`, throttled), and reads
 * `context.holder` after each event to answer and to tell every screen who is talking.
 */
export interface TalkHolder {
  session: string
  viewerId: string
  memberId: string
  /** The member's name, as every screen shows it ("Kitchen tablet is talking"). */
  name: string
}

/** How the last lease ended (what the screens are told). */
export type TalkLeaseEnd = 'released' | 'left' | 'connection-lost' | 'silence' | 'max'

export interface TalkLeaseInput {
  /** The most one lease lasts without a renew (device config; 60 s by default). */
  maxMs: number
  /** The holder has sent no audio for this long: the lease ends (2 s). */
  silenceMs?: number
}

export interface TalkLeaseContext {
  maxMs: number
  silenceMs: number
  holder: TalkHolder | null
  ended: TalkLeaseEnd | null
}

export type TalkLeaseEvent =
  | { type: 'REQUEST', holder: TalkHolder }
  | { type: 'RENEW', session: string }
  | { type: 'RELEASE', session: string }
  | { type: 'AUDIO', session: string }
  | { type: 'LEFT', session: string, why: 'left' | 'connection-lost' }

export const TALK_SILENCE_MS = 2000
export const TALK_MAX_MS = 60_000

const sessionOf = (e: TalkLeaseEvent): string => e.type === 'REQUEST' ? e.holder.session : e.session

export const talkLeaseMachine = setup({
  types: {
    context: {} as TalkLeaseContext,
    input: {} as TalkLeaseInput,
    events: {} as TalkLeaseEvent
  },
  guards: {
    /** The event comes from the session holding the lease (anyone else's RENEW, RELEASE or AUDIO changes nothing). */
    fromHolder: ({ context, event }) => context.holder !== null && context.holder.session === sessionOf(event)
  },
  actions: {
    take: assign({ holder: ({ event }) => (event as Extract<TalkLeaseEvent, { type: 'REQUEST' }>).holder, ended: null }),
    free: assign({ holder: null }),
    endedBy: assign({ ended: (_, why: TalkLeaseEnd) => why })
  },
  delays: {
    maxHold: ({ context }) => context.maxMs,
    silence: ({ context }) => context.silenceMs
  }
}).createMachine({
  id: 'talkLease',
  context: ({ input }) => ({ maxMs: input.maxMs, silenceMs: input.silenceMs ?? TALK_SILENCE_MS, holder: null, ended: null }),
  initial: 'free',
  states: {
    free: {
      entry: 'free',
      on: { REQUEST: { target: 'held', actions: 'take' } }
    },
    held: {
      after: { maxHold: { target: 'free', actions: { type: 'endedBy', params: 'max' } } },
      initial: 'sounding',
      states: {
        sounding: {
          after: { silence: { target: '#talkLease.free', actions: { type: 'endedBy', params: 'silence' } } },
          // Restarted by each of the holder's audio packets: only the silence timer (this state's),
          // never the maximum (the parent's; a reenter declared on the parent would restart both).
          on: { AUDIO: { guard: 'fromHolder', target: 'sounding', reenter: true } }
        }
      },
      on: {
        // Another session's REQUEST while held is refused: the lease and its timers are untouched.
        REQUEST: { guard: 'fromHolder', target: 'held', reenter: true },
        RENEW: { guard: 'fromHolder', target: 'held', reenter: true },
        RELEASE: { guard: 'fromHolder', target: 'free', actions: { type: 'endedBy', params: 'released' } },
        LEFT: [
          { guard: ({ context, event }) => context.holder?.session === event.session && event.why === 'connection-lost', target: 'free', actions: { type: 'endedBy', params: 'connection-lost' } },
          { guard: 'fromHolder', target: 'free', actions: { type: 'endedBy', params: 'left' } }
        ]
      }
    }
  }
})
