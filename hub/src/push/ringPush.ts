import type { AedesPublishPacket, Client } from 'aedes'
import { type Logger, type Member, type RingEvent, type RingPush } from '@doorbell/core'
import { decodePublished } from '../broker/decodedOnce'
import { zoneOfDevice } from '../broker/gate'
import { sendPush, type PushResult } from './send'
import type { PushSubscriptionStore } from './subscriptions'
import { pushThumbnail } from './thumbnail'
import type { VapidKeys } from './vapid'

/** How long a ring's push waits for its picture (the doorbell sends it ~0.1-0.4 s after the ring). */
export const PICTURE_WAIT_MS = 1500

export interface RingPushDeps {
  subscriptions: PushSubscriptionStore
  keys: VapidKeys
  members: () => readonly Member[]
  log: Logger
  contact?: string
  allowLoopback: boolean
  now?: () => number
  /** Each ring's pushes, once all were answered (tests, logs). */
  onSent?: (ring: RingEvent, results: PushResult[]) => void
}

/** May this member see this doorbell's rings live? The broker's rule: operators their zones, every other viewer role the home. */
export function mayBeWoken (m: Member, device: Member | undefined, now: number): boolean {
  if (m.kind !== 'viewer' || m.role === null || m.revokedAt !== null || (m.expiresAt !== null && m.expiresAt <= now)) return false
  if (m.role !== 'operator') return true
  return device !== undefined && m.zones.includes(zoneOfDevice(device))
}

/**
 * A listener of the broker's publishes (after the gate): on a doorbell's first ring event, waits
 * for its picture (up to PICTURE_WAIT_MS), then sends every screen subscribed by a member who may
 * see that doorbell one encrypted push with the ring and a small copy of the picture. A push
 * service's 404 or 410 means the screen unsubscribed: its subscription is deleted.
 */
export function ringPusher (d: RingPushDeps): { listener: (packet: AedesPublishPacket, client: Client | null) => void, stop: () => void } {
  const now = d.now ?? Date.now
  const waiting = new Map<string, { ring: RingEvent, timer: NodeJS.Timeout }>()

  const push = async (ring: RingEvent, picture: Buffer | null): Promise<void> => {
    // No screen subscribed (a home whose screens stay open, or no internet): nothing more to look at.
    const subscribed = d.subscriptions.all()
    if (subscribed.length === 0) return
    const members = d.members()
    const device = members.find((m) => m.kind === 'device' && m.subject === ring.deviceId)
    const allowed = new Set(members.filter((m) => mayBeWoken(m, device, now())).map((m) => m.id))
    const subs = subscribed.filter((s) => allowed.has(s.memberId))
    if (subs.length === 0) return
    // A cluster: the first hub to claim the ring pushes it, so each screen gets it once.
    if (d.subscriptions.claimRing && !d.subscriptions.claimRing(`${ring.deviceId}/${ring.ringId}`, now())) {
      d.log.info('ring pushed by another hub', { device: ring.deviceId, ringId: ring.ringId })
      return
    }
    const jpeg = picture === null ? null : pushThumbnail(picture)
    const message: RingPush = { v: 1, kind: 'ring', deviceId: ring.deviceId, deviceName: ring.deviceName, ringId: ring.ringId, at: ring.at, jpeg }
    const payload = Buffer.from(JSON.stringify(message))
    const results = await Promise.all(subs.map(async (s) => await sendPush(s, payload, { keys: d.keys, now: now(), allowLoopback: d.allowLoopback, ...(d.contact ? { contact: d.contact } : {}) })))
    for (const r of results) {
      if (r.status === 404 || r.status === 410) {
        d.subscriptions.removeEndpoint(r.endpoint)
        d.log.info('a screen\'s push subscription is gone (the push service said so): deleted', { status: r.status, endpoint: originOf(r.endpoint) })
      } else if (r.status === null || r.status >= 300) {
        d.log.warn('a ring\'s push was not taken', { status: r.status, error: r.error ?? null, endpoint: originOf(r.endpoint), ringId: ring.ringId })
      }
    }
    d.log.info('ring pushed', { device: ring.deviceId, ringId: ring.ringId, screens: results.length, accepted: results.filter((r) => r.status !== null && r.status < 300).length, picture: jpeg !== null })
    d.onSent?.(ring, results)
  }

  const fire = (key: string, picture: Buffer | null): void => {
    const w = waiting.get(key)
    if (!w) return
    clearTimeout(w.timer)
    waiting.delete(key)
    push(w.ring, picture).catch((err: Error) => { d.log.error('could not push a ring', { error: err.message }) })
  }

  const listener = (packet: AedesPublishPacket, client: Client | null): void => {
    if (!client) return
    const kind = packet.topic.slice(packet.topic.lastIndexOf('/') + 1)
    if (kind !== 'ring' && kind !== 'snapshot') return
    const decoded = decodePublished(packet.topic, packet.payload as Buffer)
    if (!decoded.ok) return
    const m = decoded.value
    if (m.kind === 'ring') {
      // A second press of the same ring re-alerts open pages; a closed one was woken already.
      if (m.payload.count !== 1) return
      const key = `${m.payload.deviceId}/${m.payload.ringId}`
      if (waiting.has(key)) return
      const timer = setTimeout(() => { fire(key, null) }, PICTURE_WAIT_MS)
      timer.unref()
      waiting.set(key, { ring: m.payload, timer })
    }
    if (m.kind === 'snapshot') {
      const key = `${m.payload.deviceId}/${m.payload.ringId}`
      if (!waiting.has(key)) return // the push went already (a second picture, or none came in time)
      fire(key, m.payload.jpeg === null ? null : Buffer.from(m.payload.jpeg, 'base64'))
    }
  }

  return {
    listener,
    stop: () => {
      for (const w of waiting.values()) clearTimeout(w.timer)
      waiting.clear()
    }
  }
}

/** Logs name the push service, not the screen's secret URL. */
const originOf = (endpoint: string): string => { try { return new URL(endpoint).origin } catch { return '?' } }
