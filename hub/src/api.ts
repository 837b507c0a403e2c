import type { IncomingMessage, ServerResponse } from 'node:http'
import { InviteRequest, PairRequest, iceSettingsFor, type HubConfig, type Logger, type Member, type ZonesResponse } from '@doorbell/core'
import { clientAddressOf, publicOrigin, readJsonBody, sendCaCertificate, sendJson, sendRateLimited, type ApiRoute } from './http'
import { RateLimiter } from './rateLimit'
import { zoneOfDevice } from './gate'
import { TrustError, type Trust } from './trust/trust'
import type { LocalTls } from './tls/localCa'
import type { HubMesh } from './mesh/registry'

export interface ApiDeps {
  config: HubConfig
  trust: Trust
  tls: LocalTls | null
  mesh: () => HubMesh | null
  clients: () => number
  mqttPath: string
  log: Logger
  now?: () => number
  /**
   * Where a request came from, for rate limits (`clientAddressOf`: behind a trusted proxy, its
   * X-Real-IP). The hub passes the one its MQTT WebSocket sign-ins use; by default one of its own.
   */
  addressOf?: (req: IncomingMessage) => string
}

const STATUS: Record<TrustError['code'], number> = { forbidden: 403, 'bad-code': 401, 'last-owner': 409, 'not-found': 404 }

/**
 * The hub's HTTP API: public `/api/info`, `/healthz`, `/ca.crt`, pairing; the rest needs
 * `Authorization: Bearer <token>` (member routes) and the owner role (members, invites, audit).
 * Pairing and sign-in are rate-limited per address: a code is 50 bits, a token 256.
 */
export function createApi (d: ApiDeps): ApiRoute {
  const now = d.now ?? Date.now
  const remoteOf = d.addressOf ?? clientAddressOf({ trustProxy: d.config.trustProxy, log: d.log })
  const pairing = new RateLimiter({ burst: 10, refillMs: 30_000, now })
  // Failed bearer sign-ins only: a member's own requests never count.
  const signIn = new RateLimiter({ burst: 20, refillMs: 1000, now })

  /** The member behind the bearer token, or the reply already sent (401, 429). */
  const member = (req: IncomingMessage, res: ServerResponse): Member | null => {
    const header = req.headers.authorization ?? ''
    const token = /^Bearer (\S+)$/.exec(header)?.[1]
    if (!signIn.allows(remoteOf(req))) { sendRateLimited(res, 5); return null }
    const found = token ? d.trust.memberByToken(token) : null
    if (found) return found
    signIn.take(remoteOf(req))
    sendJson(res, 401, { error: token ? 'this screen is no longer a member of the home (removed or expired): pair it again' : 'sign in first: Authorization: Bearer <token>' })
    return null
  }
  const owner = (req: IncomingMessage, res: ServerResponse): Member | null => {
    const m = member(req, res)
    if (m && m.role !== 'owner') { sendJson(res, 403, { error: 'only the owner of the home may do this' }); return null }
    return m
  }
  // Invite URLs point where the owner's browser reached the hub: behind a trusted proxy, the proxy's origin.
  const baseUrl = (req: IncomingMessage): string => {
    const reached = { tls: d.config.tls !== 'off', trustProxy: d.config.trustProxy }
    return `${publicOrigin(req, reached) ?? `${reached.tls ? 'https' : 'http'}://localhost:${d.config.httpPort}`}/`
  }
  // The invite names the CA a doorbell must find at the hub. Behind a proxy the device talks to
  // the proxy, whose certificate is not the home CA's: no `ca=`, so the device trusts its own
  // CA store (device/src/trust/pairing.ts), as for a hub with given TLS files.
  const caParam = (): string => d.tls && !d.config.trustProxy ? `&ca=${d.tls.fingerprint}` : ''
  const failed = (res: ServerResponse, err: unknown): void => {
    if (err instanceof TrustError) { sendJson(res, STATUS[err.code], { error: err.message }); return }
    d.log.error('API request failed', { error: (err as Error).message })
    sendJson(res, 500, { error: 'the hub could not do that; see its log' })
  }
  const run = (res: ServerResponse, work: () => Promise<void>): true => {
    work().catch((err: unknown) => { failed(res, err) })
    return true
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub')
    const path = url.pathname
    const method = req.method ?? 'GET'

    if (path === '/api/info' && method === 'GET') {
      const paired = d.trust.members().some((m) => m.role === 'owner' && m.revokedAt === null)
      sendJson(res, 200, {
        homeId: d.config.homeId,
        hubName: d.config.hubName,
        mqttPath: d.mqttPath,
        inspect: d.config.inspect,
        paired,
        caFingerprint: d.tls?.fingerprint ?? null
      })
      return true
    }
    if (path === '/healthz') {
      sendJson(res, 200, { ok: true, clients: d.clients() })
      return true
    }
    if (path === '/ca.crt' && method === 'GET') {
      if (!d.tls) { sendJson(res, 404, { error: 'this hub has no local certificate authority (TLS is off or uses given files)' }); return true }
      sendCaCertificate(res, d.tls.caDer, d.tls.fingerprint)
      return true
    }
    if (!path.startsWith('/api/')) return false

    if (path === '/api/pair' && method === 'POST') {
      const limited = pairing.take(remoteOf(req))
      if (!limited.ok) { sendRateLimited(res, limited.retryAfterSeconds); return true }
      return run(res, async () => {
        const body = await readJsonBody(req, PairRequest)
        if (!body.ok) { sendJson(res, body.status, { error: body.error }); return }
        const paired = await d.trust.pair(body.value)
        d.log.info('paired', { member: paired.member.id, kind: paired.member.kind, role: paired.member.role, name: paired.member.name })
        sendJson(res, 200, paired)
      })
    }
    if (path === '/api/me' && method === 'GET') {
      const m = member(req, res)
      if (m) sendJson(res, 200, { member: m })
      return true
    }
    if (path === '/api/cloud' && method === 'GET') {
      // Not secret, but a member's business: which AWS endpoints and channels this home uses.
      if (!member(req, res)) return true
      if (!d.config.cloud) sendJson(res, 404, { error: 'this home has no cloud path set up (npm run cloud-setup --workspace device)' })
      else sendJson(res, 200, d.config.cloud)
      return true
    }
    if (path === '/api/ice' && method === 'GET') {
      // Every member makes peer connections (a viewer, a browser camera node, a Node device); TURN
      // credentials are minted per request and name the member (coturn logs who relayed).
      const m = member(req, res)
      if (!m) return true
      return run(res, async () => { sendJson(res, 200, await iceSettingsFor(d.config, m.id, now())) })
    }
    if (path === '/api/zones' && method === 'GET') {
      const m = member(req, res)
      if (!m) return true
      if (m.role !== 'owner' && m.role !== 'operator') {
        sendJson(res, 403, { error: 'zones are for the owner and operators: residents and guests see their home\'s doorbells without them' })
        return true
      }
      sendJson(res, 200, zonesFor(m, d.trust.members(), now()))
      return true
    }
    if (path === '/api/devices' && method === 'GET') {
      const m = member(req, res)
      if (!m) return true
      if (m.kind === 'device') { sendJson(res, 403, { error: 'devices do not list other devices' }); return true }
      const mesh = d.mesh()
      // Operators learn only their zones' devices (their addresses would let them dial the others directly).
      const zones = m.role === 'operator' ? new Set(m.zones) : null
      const zoneOf = new Map(d.trust.members().filter((x) => x.kind === 'device' && x.revokedAt === null).map((x) => [x.subject, zoneOfDevice(x)]))
      const devices = (mesh?.devices() ?? []).filter((x) => zones === null || zones.has(zoneOf.get(x.deviceId) ?? ''))
      sendJson(res, 200, { devices, peers: zones === null ? mesh?.peers().length ?? 0 : devices.length })
      return true
    }
    if (path === '/api/invites' && method === 'POST') {
      const by = owner(req, res)
      if (!by) return true
      return run(res, async () => {
        const body = await readJsonBody(req, InviteRequest)
        if (!body.ok) { sendJson(res, body.status, { error: body.error }); return }
        sendJson(res, 200, await d.trust.invite(by, body.value, baseUrl(req), caParam()))
      })
    }
    if (path === '/api/members' && method === 'GET') {
      if (owner(req, res)) sendJson(res, 200, { members: d.trust.members() })
      return true
    }
    const target = /^\/api\/members\/([A-Za-z0-9_-]{1,64})$/.exec(path)?.[1]
    if (target && method === 'DELETE') {
      const by = owner(req, res)
      if (!by) return true
      return run(res, async () => { sendJson(res, 200, { member: (await d.trust.revoke(by, target)).member }) })
    }
    if (path === '/api/audit' && method === 'GET') {
      if (!owner(req, res)) return true
      const after = Number(url.searchParams.get('after') ?? 0)
      const limit = Number(url.searchParams.get('limit') ?? 200)
      if (!Number.isInteger(after) || after < 0 || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
        sendJson(res, 400, { error: 'after is a sequence number (0 or more) and limit 1-1000' })
        return true
      }
      sendJson(res, 200, { records: d.trust.audit.list({ afterSeq: after, limit }) })
      return true
    }
    if (path === '/api/audit/export' && method === 'GET') {
      if (!owner(req, res)) return true
      const day = new Date(now()).toISOString().slice(0, 10)
      res.setHeader('Content-Disposition', `attachment; filename="doorbell-audit-${d.config.homeId}-${day}.json"`)
      sendJson(res, 200, { homeId: d.config.homeId, exportedAt: now(), records: d.trust.audit.all() })
      return true
    }
    sendJson(res, 404, { error: `no such endpoint: ${method} ${path}` })
    return true
  }
}

/**
 * The zones `viewer` may watch with the live devices in each, sorted by zone, then device name.
 * An operator: exactly the zones granted (a granted zone without devices yet is listed empty), as
 * the broker's gate enforces them. The owner: every zone a live device is in or a live member is
 * granted.
 */
export function zonesFor (viewer: Member, members: Member[], now: number): ZonesResponse {
  const live = members.filter((m) => m.revokedAt === null && (m.expiresAt === null || m.expiresAt > now))
  const shown = viewer.role === 'owner' ? live.flatMap((m) => m.kind === 'device' ? [zoneOfDevice(m)] : m.zones) : viewer.zones
  const byZone = new Map<string, Array<{ deviceId: string, name: string }>>(shown.map((zone) => [zone, []]))
  // A device is in exactly one zone (its invite says which; the default zone before zones existed).
  for (const m of live) if (m.kind === 'device') byZone.get(zoneOfDevice(m))?.push({ deviceId: m.subject, name: m.name })
  const byId = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
  return {
    zones: [...byZone.entries()]
      .sort(([a], [b]) => byId(a, b))
      .map(([zone, devices]) => ({ zone, devices: devices.sort((a, b) => a.name.localeCompare(b.name, 'en') || byId(a.deviceId, b.deviceId)) }))
  }
}
