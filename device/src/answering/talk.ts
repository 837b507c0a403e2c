import { createActor, type InspectionEvent } from 'xstate'
import {
  NO_CALL_SESSION, ReplyCommand, TalkCommand, TalkRelease, TalkReply, decode,
  type DoorAttempt, type DoorGuard, type Logger, type Talker, type TalkErrorCode
} from '@doorbell/core'
import { TALK_MAX_MS, TALK_SILENCE_MS, talkLeaseMachine, type TalkHolder } from '@doorbell/machines'
import type { SessionIdentity } from './session'
import { auditFor, idOf, typeOf, type CommandKind, type CommandKinds } from './commands'

export { typeOf }

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
  /** The command kinds this floor takes outside a call (the doorbell: `reply`); absent: none. */
  commands?: CommandKinds
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
    leaseEnded(shown)
    shown = holder?.session ?? null
    o.log.info(holder ? 'talk lease taken' : 'talk lease ended', holder ? { by: holder.name } : { why: snap.context.ended })
    const message: TalkReply = { type: 'talker', talker: talkerOf(holder), ended: holder ? null : snap.context.ended }
    for (const send of screens.values()) send(message)
  })
  const holder = (): TalkHolder | null => actor.getSnapshot().context.holder

  // How long each talk lasted (issue 19's history): the allowed request of the session holding the
  // lease, and when it was taken; when the lease leaves that session, a `lease` record says so.
  let allowed: DoorAttempt | null = null
  const auditTalk = (a: DoorAttempt): void => { if (a.outcome === 'allowed') allowed = a; o.audit(a) }
  const talking = new Map<string, { attempt: DoorAttempt, since: number }>()
  const leaseEnded = (session: string | null): void => {
    const t = session === null ? undefined : talking.get(session)
    if (!t || session === null) return
    talking.delete(session)
    const durationMs = Math.max(0, now() - t.since)
    o.audit({ ...t.attempt, id: `${t.attempt.id}-end`.slice(0, 64), at: now(), message: `${t.attempt.viewerName} stopped talking after ${Math.round(durationMs / 1000)} s`, lease: { attemptId: t.attempt.id, durationMs } })
  }

  /**
   * A quick reply, whichever channel brought it (a call's data channel, or the hub's MQTT outside
   * a call: `commands.reply`): checked like talk (DoorGuard.checkReply), refused while someone
   * else holds the lease, then played holding the lease itself (every screen sees who played it)
   * until it ends. Every attempt, allowed or denied, is audited as kind `reply`.
   */
  const replyKind: CommandKind = {
    async run (raw, ctx) {
      const record = auditFor({ ...o, now }, 'reply', ctx)
      const parsed = decode(ReplyCommand, raw, ctx.sessionId === NO_CALL_SESSION ? `command from ${ctx.viewerName}` : `data channel of ${ctx.viewerName}`, ctx.maxBytes)
      if (!parsed.ok) {
        record('denied', 'malformed', parsed.error.message, null)
        return { ok: false, id: idOf(raw), code: 'invalid-command', reason: 'malformed', message: parsed.error.message }
      }
      const c = parsed.value
      const verdict = await o.guard.checkReply(c, { sessionId: ctx.sessionId, viewerId: ctx.viewerId })
      if (!verdict.ok) {
        ctx.log.warn('reply refused', { viewer: ctx.viewerName, reason: verdict.reason, message: verdict.message })
        record('denied', verdict.reason, verdict.message, verdict.grant)
        return { ok: false, id: c.id, code: 'denied', reason: verdict.reason, message: verdict.message }
      }
      const who = verdict.grant
      const player = o.replies
      if (player?.has(c.reply) !== true) {
        const why = player ? `"${c.reply}" is not one of this doorbell's quick replies` : 'this doorbell plays no quick replies'
        record('denied', 'no-reply', why, who)
        return { ok: false, id: c.id, code: 'no-reply', reason: 'no-reply', message: why }
      }
      const current = holder()
      // The requester's own talk gives way to its reply; anyone else's lease is not taken over.
      if (current !== null && current.session !== ctx.sessionId) {
        record('denied', 'busy', `${current.name} is talking`, who)
        return { ok: false, id: c.id, code: 'busy', reason: 'busy', message: `${current.name} is talking` }
      }
      if (current !== null) actor.send({ type: 'RELEASE', session: current.session })
      // The reply holds the floor under its own key (the command id): no session's release or hang-up ends it.
      const key = c.id
      actor.send({ type: 'REQUEST', holder: { session: key, viewerId: ctx.viewerId, memberId: who.id, name: who.name } })
      // Playing counts as sound: the silence timer never ends a reply midway.
      const sounding = setInterval(() => { actor.send({ type: 'AUDIO', session: key }) }, audioEveryMs)
      const done = (): void => { clearInterval(sounding); actor.send({ type: 'RELEASE', session: key }) }
      const durationMs = player.play(c.reply, done)
      if (durationMs === null) { done(); return { ok: false, id: c.id, code: 'no-reply', reason: 'no-reply', message: `"${c.reply}" is not ready` } }
      ctx.log.info('quick reply played', { by: who.name, reply: c.reply })
      record('allowed', 'ok', `${who.name} played "${c.reply}"`, who)
      return { ok: true, id: c.id, type: 'reply', at: now(), durationMs }
    }
  }

  return {
    mayTalk (sessionId) {
      if (holder()?.session !== sessionId) return false
      const t = now()
      if (t - lastAudio >= audioEveryMs) { lastAudio = t; actor.send({ type: 'AUDIO', session: sessionId }) }
      return true
    },
    commands: { reply: replyKind },
    left (sessionId) { screens.delete(sessionId); actor.send({ type: 'LEFT', session: sessionId, why: 'left' }) },
    lost (sessionId) { actor.send({ type: 'LEFT', session: sessionId, why: 'connection-lost' }) },
    stop () { screens.clear(); actor.stop() },
    session (s) {
      screens.set(s.sessionId, s.send)
      const record = auditFor({ ...o, audit: auditTalk, now }, 'talk', s)
      const nack = (id: string | null, code: TalkErrorCode, message: string, holderName: string | null = null): void => {
        s.send({ type: 'talk-nack', id, error: { code, message: message.slice(0, MESSAGE_MAX) }, holder: holderName })
      }
      /** A quick reply on this call's data channel: the same command kind as outside a call, answered on this channel. */
      const reply = async (raw: string): Promise<void> => {
        const outcome = await replyKind.run(raw, { sessionId: s.sessionId, viewerId: s.viewerId, viewerName: s.viewerName, log: s.log, path: s.path })
        if (outcome.ok) { s.send({ type: 'reply-ack', id: outcome.id, durationMs: outcome.durationMs ?? 0 }); return }
        const code: TalkErrorCode = outcome.code === 'busy' || outcome.code === 'no-reply' || outcome.code === 'no-speaker' || outcome.code === 'denied' ? outcome.code : 'invalid-command'
        nack(outcome.id, code, outcome.message, outcome.code === 'busy' ? holder()?.name ?? null : null)
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
          allowed = null
          record('allowed', 'ok', `${who.name} talked`, who)
          if (allowed !== null && holder()?.session === s.sessionId && !talking.has(s.sessionId)) talking.set(s.sessionId, { attempt: allowed, since: now() })
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
