import { TalkRelease, encode, newId, signReplyCommand, signTalkCommand, type SigningKey, type TalkEnd, type TalkErrorCode, type Talker } from '@doorbell/core'
import type { TalkReply } from '@doorbell/core'
import type { DataChannelLike } from './callSession'

/** The device's answer to a talk or renew command. */
export type TalkAnswer =
  | { ok: true, leaseMs: number }
  | { ok: false, code: TalkErrorCode | 'no-answer', message: string, holder: string | null }

/** The device's answer to a quick reply: playing for `durationMs`, or why not. */
export type ReplyAnswer =
  | { ok: true, durationMs: number }
  | { ok: false, code: TalkErrorCode | 'no-answer', message: string, holder: string | null }

/** Who is talking in the call, as the device last said. */
export interface TalkerView {
  talker: Talker | null
  /** The one talking is this screen. */
  self: boolean
  /** How the last lease ended, when no one is talking. */
  ended: TalkEnd | null
}

/** One call's talk lease, as the call view needs it: signed commands out, the device's answers and "who is talking" in. */
export interface TalkLink {
  request: () => Promise<TalkAnswer>
  renew: () => Promise<TalkAnswer>
  release: () => void
  /** Called at once with what is known, then on every change. */
  onTalker: (listener: (view: TalkerView) => void) => () => void
}

/** Quick replies on the same channel: one of the owner's replies played on the doorbell's speaker (signed like talk). */
export interface ReplyLink {
  reply: (text: string) => Promise<ReplyAnswer>
}

/** No answer from the device by then: the screen says so and sends nothing. */
export const TALK_ANSWER_TIMEOUT_MS = 5000

/**
 * The talk lease's side of one call's data channel: talk and renew are signed for this device,
 * this session, now, once (TalkCommand, checked by the device like open-door); release is not
 * (it can only end this session's own lease). `take` is given every talk message the channel
 * receives and returns whether it was one.
 */
export function talkLink (o: {
  channel: () => DataChannelLike | null
  trust: { credential: string, key: SigningKey }
  homeId: string
  deviceId: string
  sessionId: string
}): TalkLink & ReplyLink & { take: (message: TalkReply) => void, close: () => void } {
  const pending = new Map<string, { resolve: (a: TalkAnswer | ReplyAnswer) => void, timer: ReturnType<typeof setTimeout> }>()
  const listeners = new Set<(view: TalkerView) => void>()
  let view: TalkerView = { talker: null, self: false, ended: null }

  const send = async <A extends TalkAnswer | ReplyAnswer>(type: 'talk' | 'renew' | 'reply', reply = ''): Promise<A> => {
    const channel = o.channel()
    if (channel?.readyState !== 'open') return { ok: false, code: 'no-answer', message: 'the call is not connected', holder: null } as A
    const id = newId('t')
    let command
    try {
      const signing = { credential: o.trust.credential, key: o.trust.key, home: o.homeId, device: o.deviceId, session: o.sessionId, command: id }
      command = type === 'reply' ? await signReplyCommand({ ...signing, reply }) : await signTalkCommand({ type, ...signing })
    } catch (err) {
      return { ok: false, code: 'no-answer', message: `could not sign the request: ${(err as Error).message}`, holder: null } as A
    }
    return await new Promise<A>((resolve) => {
      const timer = setTimeout(() => { pending.delete(id); resolve({ ok: false, code: 'no-answer', message: 'the doorbell did not answer', holder: null } as A) }, TALK_ANSWER_TIMEOUT_MS)
      pending.set(id, { resolve: resolve as (a: TalkAnswer | ReplyAnswer) => void, timer })
      if (channel.readyState !== 'open') { clearTimeout(timer); pending.delete(id); resolve({ ok: false, code: 'no-answer', message: 'the call is not connected', holder: null } as A); return }
      channel.send(JSON.stringify(command))
    })
  }

  const settle = (id: string | null, answer: TalkAnswer | ReplyAnswer): void => {
    const p = id === null ? undefined : pending.get(id)
    if (!p || id === null) return
    clearTimeout(p.timer)
    pending.delete(id)
    p.resolve(answer)
  }

  return {
    request: async () => await send<TalkAnswer>('talk'),
    renew: async () => await send<TalkAnswer>('renew'),
    reply: async (text) => await send<ReplyAnswer>('reply', text),
    release () {
      const channel = o.channel()
      if (channel?.readyState === 'open') channel.send(encode(TalkRelease, { type: 'talk-release', id: newId('t') }))
    },
    onTalker (listener) {
      listeners.add(listener)
      listener(view)
      return () => { listeners.delete(listener) }
    },
    take (m) {
      if (m.type === 'talk-ack') settle(m.id, { ok: true, leaseMs: m.leaseMs })
      else if (m.type === 'talk-nack') settle(m.id, { ok: false, code: m.error.code, message: m.error.message, holder: m.holder })
      else if (m.type === 'reply-ack') settle(m.id, { ok: true, durationMs: m.durationMs })
      else {
        view = { talker: m.talker, self: m.talker?.session === o.sessionId, ended: m.ended }
        for (const l of listeners) l(view)
      }
    },
    close () {
      for (const [id] of pending) settle(id, { ok: false, code: 'no-answer', message: 'the call ended', holder: null })
      view = { talker: null, self: false, ended: null }
      for (const l of listeners) l(view)
      listeners.clear()
    }
  }
}

/** Is this data-channel message about the talk lease? Then it is parsed here, not as a door reply. */
export function isTalkMessage (raw: string): boolean {
  return /^\s*\{\s*"type"\s*:\s*"(talker|talk-ack|talk-nack|reply-ack)"/.test(raw)
}

