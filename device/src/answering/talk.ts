import { createActor, type InspectionEvent } from 'xstate'
import {
  ReplyCommand, TalkCommand, TalkRelease, TalkReply, decode, newId,
  type DoorAttempt, type DoorGuard, type Logger, type Talker, type TalkErrorCode
} from '@doorbell/core'
import { TALK_MAX_MS, TALK_SILENCE_MS, talkLeaseMachine, type TalkHolder } from '@doorbell/machines'
import type { SessionIdentity } from './session'

/**
 * Who may be heard on the device's speaker: the talk lease (machines/src/talkLease.ts) behind
 * the sessions. A viewer is heard only while it holds the lease, which it takes with a signed
 * `talk` command the device checks like open-door (the talk right), keeps with `renew`s, and
 * loses on release, hang-up, connection loss, 2 s of silence or the maximum.
 */
export interface TalkFloor {
  /** Asked for each packet of a viewer's audio: may this session be heard now? */
  mayTalk: (sessionId: string) => boolean
  /** The session ended: its lease, if it held it, ends at once. */
  left: (sessionId: string) => void
  /** The session's connection was lost (ICE): its lease ends at once. */
  lost: (sessionId: string) => void
  /** One session's talk commands, and what it is told of who is talking. */
  session: (s: TalkSessionInput) => TalkSession
  stop: () => void
}

export interface TalkSessionInput extends SessionIdentity {
  /** Sends on the session's control channel (dropped when it is not open). */
  send: (message: TalkReply) => void
}

/** The doorbell's quick replies as the floor plays them (device/src/audio/replies.ts). */
export interface QuickReplyPlayer {
  /** Is this reply rendered and ready to play? */
  has: (text: string) => boolean
  /** Plays it on the speaker and calls `done` at its end; how long it lasts, or null when it is not there. */
  play: (text: string, done: () => void) => number | null
}

export interface TalkSession {
  /** The control channel opened: tell it who is talking, if anyone is. */
  opened: () => void
  /** A talk, renew or talk-release command (the raw text). Never throws. */
  command: (raw: string) => Promise<void>
  stop: () => void
}

export interface TalkLeaseOptions {
  /** Checks every talk, renew and reply command (credential, talk right, signature, freshness, nonce, rate). */
  guard: Pick<DoorGuard, 'checkTalk' | 'checkReply'>
  /** The quick replies this doorbell can play; absent: every reply is refused with no-reply. */
  replies?: QuickReplyPlayer
  /** Where each request to talk, allowed or denied, is recorded (the audit outbox). */
  audit: (attempt: DoorAttempt) => void
  deviceId: string
  log: Logger
  /** The lease's maximum without a renew (device config); 60 s by default. */
  maxMs?: number
  silenceMs?: number
  now?: () => number
  inspect?: (event: InspectionEvent) => void
}

/** The holder's audio packets reach the lease at most this often (50 a second would flood the inspector). */
const AUDIO_EVERY_MS = 250
const MESSAGE_MAX = 300

const talkerOf = (h: TalkHolder | null): Talker | null => h === null ? null : { session: h.session, viewerId: h.viewerId, name: h.name }

/** The doorbell's floor: the talk lease, one for every session of the answering side. */
export function talkLease (o: TalkLeaseOptions): TalkFloor {
  const now = o.now ?? Date.now
  const maxMs = o.maxMs ?? TALK_MAX_MS
  const silenceMs = o.silenceMs ?? TALK_SILENCE_MS
  // Well inside the silence window, so a talking holder is never taken for a silent one.
  const audioEveryMs = Math.min(AUDIO_EVERY_MS, silenceMs / 4)
  const actor = createActor(talkLeaseMachine, { input: { maxMs, silenceMs }, systemId: 'talkLease', ...(o.inspect ? { inspect: o.inspect } : {}) }).start()
  const screens = new Map<string, (m: TalkReply) => void>()
  let lastAudio = 0

  // Every screen in the call is told who is talking whenever it changes (and why a lease ended).
  let shown: string | null = null
  actor.subscribe((snap) => {
    const holder = snap.context.holder
    if ((holder?.session ?? null) === shown) return
    shown = holder?.session ?? null
    o.log.info(holder ? 'talk lease taken' : 'talk lease ended', holder ? { by: holder.name } : { why: snap.context.ended })
    const message: TalkReply = { type: 'talker', talker: talkerOf(holder), ended: holder ? null : snap.context.ended }
    for (const send of screens.values()) send(message)
  })
  const holder = (): TalkHolder | null => actor.getSnapshot().context.holder

  return {
    mayTalk (sessionId) {
      if (holder()?.session !== sessionId) return false
      const t = now()
      if (t - lastAudio >= audioEveryMs) { lastAudio = t; actor.send({ type: 'AUDIO', session: sessionId }) }
      return true
    },
    left (sessionId) { screens.delete(sessionId); actor.send({ type: 'LEFT', session: sessionId, why: 'left' }) },
    lost (sessionId) { actor.send({ type: 'LEFT', session: sessionId, why: 'connection-lost' }) },
    stop () { screens.clear(); actor.stop() },
    session (s) {
      screens.set(s.sessionId, s.send)
      const record = (outcome: DoorAttempt['outcome'], reason: DoorAttempt['reason'], message: string, grant: { id: string, name: string, role: DoorAttempt['role'] } | null, kind: 'talk' | 'reply' = 'talk'): void => {
        o.audit({
          id: newId('a'), kind, deviceId: o.deviceId, at: now(), outcome, reason, message: message.slice(0, MESSAGE_MAX),
          memberId: grant?.id ?? null, viewerId: s.viewerId, viewerName: grant?.name ?? s.viewerName, role: grant?.role ?? null, path: s.path()
        })
      }
      const nack = (id: string | null, code: TalkErrorCode, message: string, holderName: string | null = null): void => {
        s.send({ type: 'talk-nack', id, error: { code, message: message.slice(0, MESSAGE_MAX) }, holder: holderName })
      }
      /**
       * A quick reply: checked like talk, refused while someone else holds the lease; it holds the
       * lease itself while it plays (every screen sees who played it), then lets go.
       */
      const reply = async (raw: string): Promise<void> => {
        const parsed = decode(ReplyCommand, raw, `data channel of ${s.viewerName}`)
        if (!parsed.ok) {
          record('denied', 'malformed', parsed.error.message, null, 'reply')
          nack(idOf(raw), 'invalid-command', parsed.error.message)
          return
        }
        const c = parsed.value
        const verdict = await o.guard.checkReply(c, { sessionId: s.sessionId, viewerId: s.viewerId })
        if (!verdict.ok) {
          s.log.warn('reply refused', { viewer: s.viewerName, reason: verdict.reason, message: verdict.message })
          record('denied', verdict.reason, verdict.message, verdict.grant, 'reply')
          nack(c.id, 'denied', verdict.message)
          return
        }
        const who = verdict.grant
        if (o.replies?.has(c.reply) !== true) {
          const why = o.replies ? `"${c.reply}" is not one of this doorbell's quick replies` : 'this doorbell plays no quick replies'
          record('denied', 'no-reply', why, who, 'reply')
          nack(c.id, 'no-reply', why)
          return
        }
        const current = holder()
        if (current !== null && current.session !== s.sessionId) {
          record('denied', 'busy', `${current.name} is talking`, who, 'reply')
          nack(c.id, 'busy', `${current.name} is talking`, current.name)
          return
        }
        // The reply takes the floor under its own key, so the requester's own talk (if any) ends first.
        if (current !== null) actor.send({ type: 'RELEASE', session: current.session })
        const floorKey = c.id
        actor.send({ type: 'REQUEST', holder: { session: floorKey, viewerId: s.viewerId, memberId: who.id, name: who.name } })
        // Playing counts as sound: the silence timer never ends a reply midway.
        const sounding = setInterval(() => { actor.send({ type: 'AUDIO', session: floorKey }) }, audioEveryMs)
        const durationMs = o.replies.play(c.reply, () => { clearInterval(sounding); actor.send({ type: 'RELEASE', session: floorKey }) })
        if (durationMs === null) { clearInterval(sounding); actor.send({ type: 'RELEASE', session: floorKey }); return }
        s.log.info('quick reply played', { by: who.name, reply: c.reply })
        record('allowed', 'ok', `${who.name} played "${c.reply}"`, who, 'reply')
        s.send({ type: 'reply-ack', id: c.id, durationMs })
      }
      return {
        // Said only when someone is talking: a screen that never sees talk gets no message it does not know.
        opened () { const h = holder(); if (h) s.send({ type: 'talker', talker: talkerOf(h), ended: null }) },
        stop () { screens.delete(s.sessionId) },
        async command (raw) {
          const type = typeOf(raw)
          if (type === 'talk-release') {
            const parsed = decode(TalkRelease, raw, `data channel of ${s.viewerName}`)
            if (!parsed.ok) { nack(null, 'invalid-command', parsed.error.message); return }
            // Needs no signature: it can only end this session's own lease.
            actor.send({ type: 'RELEASE', session: s.sessionId })
            return
          }
          if (type === 'reply') { await reply(raw); return }
          const parsed = decode(TalkCommand, raw, `data channel of ${s.viewerName}`)
          if (!parsed.ok) {
            record('denied', 'malformed', parsed.error.message, null)
            nack(idOf(raw), 'invalid-command', parsed.error.message)
            return
          }
          const c = parsed.value
          // The device's own check first, whatever path carried the call: a forger learns nothing, not even who is talking.
          const verdict = await o.guard.checkTalk(c, { sessionId: s.sessionId, viewerId: s.viewerId })
          if (!verdict.ok) {
            s.log.warn(`${c.type} refused`, { viewer: s.viewerName, reason: verdict.reason, message: verdict.message })
            record('denied', verdict.reason, verdict.message, verdict.grant)
            nack(c.id, 'denied', verdict.message)
            return
          }
          const who = verdict.grant
          const current = holder()
          if (c.type === 'renew') {
            if (current?.session !== s.sessionId) { nack(c.id, 'not-holder', current ? `${current.name} is talking` : 'the talk lease has ended; ask again', current?.name ?? null); return }
            actor.send({ type: 'RENEW', session: s.sessionId })
            s.send({ type: 'talk-ack', id: c.id, leaseMs: maxMs })
            return
          }
          if (current !== null && current.session !== s.sessionId) {
            record('denied', 'busy', `${current.name} is talking`, who)
            nack(c.id, 'busy', `${current.name} is talking`, current.name)
            return
          }
          actor.send({ type: 'REQUEST', holder: { session: s.sessionId, viewerId: s.viewerId, memberId: who.id, name: who.name } })
          record('allowed', 'ok', `${who.name} talked`, who)
          s.send({ type: 'talk-ack', id: c.id, leaseMs: maxMs })
        }
      }
    }
  }
}

/**
 * A device without a speaker (the browser camera node): nobody is heard, and asking to talk
 * is refused with `no-speaker`, so the screen can say why.
 */
export function noSpeaker (): TalkFloor {
  return {
    mayTalk: () => false,
    left: () => {},
    lost: () => {},
    stop: () => {},
    session (s) {
      return {
        opened () {},
        stop () {},
        async command (raw) {
          if (typeOf(raw) === 'talk-release') return
          s.send({ type: 'talk-nack', id: idOf(raw), error: { code: 'no-speaker', message: 'this camera has no speaker: talk is off' }, holder: null })
        }
      }
    }
  }
}

/** The `type` of a command, if it is a JSON object with one. */
export function typeOf (raw: string): string | null {
  try {
    const t = (JSON.parse(raw) as { type?: unknown } | null)?.type
    return typeof t === 'string' ? t : null
  } catch {
    return null
  }
}

function idOf (raw: string): string | null {
  try {
    const id = (JSON.parse(raw) as { id?: unknown }).id
    return typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : null
  } catch {
    return null
  }
}
