import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Member } from '@doorbell/core'
import { sendJson } from '../http'
import { zoneOfDevice } from '../broker/gate'
import type { ApiRoutes } from '../api'
import type { ClipBackend, ClipVideo } from './clipStore'
import type { HistoryBackend } from './backend'
import type { EventScope } from './store'

/** How long a clip's address plays: long enough to watch and seek, short enough to be of no use copied. */
export const CLIP_URL_MS = 10 * 60_000

/**
 * A ring's clip (docs/history.md, "The clip"), for the members who may see the event (the
 * history's rule: owner and residents the home, operators their zones, guests nothing):
 *   GET /api/events/:id/clip-url   (Bearer) a short-lived address of the clip, `{ url, expiresAt }`
 *   GET /api/events/:id/clip       the video, with Range requests (206) so a `<video>` can seek;
 *                                  Bearer, or the address's `?t=` (a `<video>` sends no header)
 * The address names the event and the member and is signed with a key the hub makes at start, or
 * (a cluster: `key`) one derived from the home key, so an address from hub A plays from hub B; the
 * member's role and scope are checked again at every request, so a member removed meanwhile gets 403.
 */
export function clipRoutes (d: { store: () => HistoryBackend, clips: () => ClipBackend, members: () => readonly Member[], now?: () => number, key?: Buffer }): ApiRoutes {
  const key = d.key ?? randomBytes(32)
  const now = d.now ?? Date.now
  const mac = (text: string): Buffer => createHmac('sha256', key).update(text).digest()
  const ticket = (id: number, memberId: string, expiresAt: number): string => {
    const body = `${id}.${memberId}.${expiresAt}`
    return `${body}.${mac(body).toString('base64url')}`
  }
  /** The member a ticket names, if it is this event's, unexpired and signed here. */
  const ticketMember = (raw: string, id: number): Member | null => {
    const m = /^([1-9]\d{0,14})\.([A-Za-z0-9_-]{1,64})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(raw)
    if (!m || Number(m[1]) !== id || Number(m[3]) < now()) return null
    const want = mac(`${m[1]}.${m[2]}.${m[3]}`)
    const got = Buffer.from(m[4]!, 'base64url')
    if (got.length !== want.length || !timingSafeEqual(got, want)) return null
    return d.members().find((x) => x.id === m[2] && x.revokedAt === null && (x.expiresAt === null || x.expiresAt > now())) ?? null
  }
  const scopeOf = (m: Member): EventScope | null => {
    if (m.kind !== 'viewer' || m.role === 'guest' || m.role === null) return null
    if (m.role !== 'operator') return { memberId: m.id, devices: null }
    const zones = new Set(m.zones)
    return { memberId: m.id, devices: d.members().filter((x) => x.kind === 'device' && x.revokedAt === null && zones.has(zoneOfDevice(x))).map((x) => x.subject) }
  }
  const eventId = (request: FastifyRequest): number | null => {
    const raw = (request.params as { id: string }).id
    return /^[1-9]\d{0,14}$/.test(raw) ? Number(raw) : null
  }
  const GUESTS = 'the history is for the home\'s owner, residents and operators; guests see live rings only'

  /** The clip of an event this member may see, or the refusal sent. */
  const clipFor = async (member: Member, request: FastifyRequest, reply: FastifyReply): Promise<{ id: number, video: ClipVideo } | FastifyReply> => {
    const scope = scopeOf(member)
    if (scope === null) return sendJson(reply, 403, { error: GUESTS })
    const id = eventId(request)
    const event = id === null ? null : await d.store().get(id, scope)
    if (id === null || event === null) return sendJson(reply, 404, { error: 'no such event' })
    const video = await d.clips().video(id)
    if (video !== null) return { id, video }
    const state = await d.clips().state(id)
    return sendJson(reply, 404, { error: state !== undefined && 'failed' in state ? `this ring has no clip: ${state.failed}` : 'this event has no clip' })
  }

  return (app, hooks) => {
    app.get('/api/events/:id/clip-url', { onRequest: hooks.signedIn }, async (request, reply) => {
      const found = await clipFor(hooks.memberOf(request), request, reply)
      if (!('video' in found)) return found
      const expiresAt = now() + CLIP_URL_MS
      return sendJson(reply, 200, { url: `/api/events/${found.id}/clip?t=${ticket(found.id, hooks.memberOf(request).id, expiresAt)}`, expiresAt })
    })
    app.get('/api/events/:id/clip', async (request, reply) => {
      const t = (request.query as Record<string, unknown>).t
      let member: Member
      if (typeof t === 'string') {
        const id = eventId(request)
        const m = id === null ? null : ticketMember(t, id)
        if (m === null) return sendJson(reply, 403, { error: 'this clip address is not valid (expired, or of another event): open the clip again' })
        member = m
      } else {
        const refused = await hooks.signedIn(request, reply)
        if (refused !== undefined) return refused
        member = hooks.memberOf(request)
      }
      const found = await clipFor(member, request, reply)
      if (!('video' in found)) return found
      const { video } = found
      const range = parseRange(request.headers.range, video.bytes)
      reply.headers({ 'Content-Type': video.type, 'Accept-Ranges': 'bytes', 'Cache-Control': 'private, max-age=600' })
      if (range === 'unsatisfiable') return reply.code(416).header('Content-Range', `bytes */${video.bytes}`).send()
      if (range === null) return reply.code(200).header('Content-Length', String(video.bytes)).send(video.open())
      return reply.code(206)
        .headers({ 'Content-Range': `bytes ${range.start}-${range.end}/${video.bytes}`, 'Content-Length': String(range.end - range.start + 1) })
        .send(video.open(range))
    })
  }
}

/**
 * RFC 9110 §14: one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) clipped to the file; null
 * for no Range header or one this does not serve as a range (several ranges, other units: the whole
 * file is a valid answer); unsatisfiable when it starts past the end.
 */
export function parseRange (header: string | undefined, size: number): { start: number, end: number } | null | 'unsatisfiable' {
  if (header === undefined) return null
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (m[2] !== '' && Number(m[2]) < start) return null
  if (start >= size) return 'unsatisfiable'
  return { start, end }
}
