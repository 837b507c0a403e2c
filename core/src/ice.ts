import { z } from 'zod'
import { Id } from './ids'

/**
 * ICE servers and the TURN REST scheme (draft-uberti-behave-turn-rest, what coturn's
 * `use-auth-secret` checks): the hub (and a Node device) hold a secret shared with the TURN
 * server and hand out credentials that expire by themselves:
 *
 *   username   = `${expiry unix seconds}:${user}`
 *   credential = base64(HMAC-SHA1(secret, username))
 *
 * No TURN user database, nothing to revoke: a leaked credential dies at its expiry. WebCrypto
 * only, so it runs in Node and in a browser alike (only servers hold the secret).
 */

const TurnUrl = z.string().regex(/^turns?:[^\s]+$/, 'a TURN URL starts with turn: or turns: (turn:host:3478?transport=udp)')
const IceUrl = z.string().regex(/^(stun|stuns|turn|turns):[^\s]+$/, 'an ICE server URL starts with stun:, stuns:, turn: or turns:')

export const IceServer = z.strictObject({
  urls: z.union([IceUrl, z.array(IceUrl).min(1).max(8)]),
  username: z.string().max(256).optional(),
  credential: z.string().max(256).optional()
})
export type IceServer = z.infer<typeof IceServer>

/** TURN with short-lived credentials made from a secret shared with the TURN server (coturn `static-auth-secret`). */
export const TurnRest = z.strictObject({
  urls: z.array(TurnUrl).min(1).max(8),
  /** The secret coturn has as `static-auth-secret`. Keep it out of git: it mints TURN credentials. */
  secret: z.string().min(16, 'the TURN secret is at least 16 characters (openssl rand -hex 32)').max(256),
  /** How long each credential lasts. */
  ttlSeconds: z.number().int().min(60).max(86_400).default(3600)
})
export type TurnRest = z.infer<typeof TurnRest>

/** 'relay': only TURN relays are used (nothing of the peer's addresses is revealed; works through any NAT the relay can reach). */
export const IceTransportPolicy = z.enum(['all', 'relay'])
export type IceTransportPolicy = z.infer<typeof IceTransportPolicy>

/** What a peer connection is made with, as `GET /api/ice` gives it to a member. */
export const IceSettings = z.strictObject({
  /** The config's up to 16 servers, plus the TURN entry made from `turn`. */
  iceServers: z.array(IceServer).max(17),
  iceTransportPolicy: IceTransportPolicy,
  /** When the TURN credentials in it stop working (ms); null without TURN. Fetch again before. */
  expiresAt: z.number().int().nonnegative().nullable()
})
export type IceSettings = z.infer<typeof IceSettings>

/** The ICE part of a hub's or a device's config. */
export const IceConfigFields = {
  /** Empty on a LAN: host candidates only, nothing waits on a public STUN server. */
  iceServers: z.array(IceServer).max(16).default([]),
  /** TURN REST: credentials minted per call from the shared secret. */
  turn: TurnRest.optional(),
  iceTransportPolicy: IceTransportPolicy.default('all')
}

const b64 = (bytes: Uint8Array): string => {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s)
}

/** A TURN REST credential for `user`, valid for `ttlSeconds` from `now` (ms). */
export async function turnRestCredential (secret: string, user: string, ttlSeconds: number, now: number): Promise<{ username: string, credential: string, expiresAt: number }> {
  Id.parse(user)
  const expiry = Math.floor(now / 1000) + ttlSeconds
  const username = `${expiry}:${user}`
  const key = await globalThis.crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign'])
  const mac = new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', key, new TextEncoder().encode(username)))
  return { username, credential: b64(mac), expiresAt: expiry * 1000 }
}

/** The ICE settings for one user now: the static servers, plus TURN with a fresh credential when configured. */
export async function iceSettingsFor (config: { iceServers: IceServer[], turn?: TurnRest | undefined, iceTransportPolicy: IceTransportPolicy }, user: string, now: number): Promise<IceSettings> {
  if (!config.turn) return { iceServers: config.iceServers, iceTransportPolicy: config.iceTransportPolicy, expiresAt: null }
  const c = await turnRestCredential(config.turn.secret, user, config.turn.ttlSeconds, now)
  return {
    iceServers: [...config.iceServers, { urls: config.turn.urls, username: c.username, credential: c.credential }],
    iceTransportPolicy: config.iceTransportPolicy,
    expiresAt: c.expiresAt
  }
}

/** A relay-only policy with no TURN server can never connect: refused where the config is read. */
export function relayNeedsTurn (c: { iceServers: IceServer[], turn?: TurnRest | undefined, iceTransportPolicy: IceTransportPolicy }): boolean {
  if (c.iceTransportPolicy !== 'relay') return true
  if (c.turn) return true
  return c.iceServers.some((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]).some((u) => /^turns?:/.test(u)))
}

/** A peer connection as far as waiting for ICE gathering goes (a browser's RTCPeerConnection, werift's). */
export interface GatheringPeer {
  readonly iceGatheringState: string
  addEventListener: (type: 'icegatheringstatechange', listener: () => void) => void
  removeEventListener: (type: 'icegatheringstatechange', listener: () => void) => void
}

/**
 * Waits for ICE gathering to finish, or the timeout (host candidates on a LAN take
 * milliseconds). Our protocol has no trickle: an offer or answer carries every candidate.
 * The one copy, for the calling side (a viewer) and the answering side (a camera node).
 */
export async function gathered (pc: GatheringPeer, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      if (pc.iceGatheringState !== 'complete') return
      clearTimeout(timer)
      pc.removeEventListener('icegatheringstatechange', done)
      resolve()
    }
    const timer = setTimeout(() => { pc.removeEventListener('icegatheringstatechange', done); resolve() }, timeoutMs)
    pc.addEventListener('icegatheringstatechange', done)
  })
}
