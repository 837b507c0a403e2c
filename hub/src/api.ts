import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { IntegrationDoorRequest, IntegrationRequest, InviteRequest, PairRequest, iceSettingsFor, type HubConfig, type Logger, type Member, type ZonesResponse } from '@doorbell/core'
import { clientAddressOf, publicOrigin, rateLimited, sendCaCertificate, sendJson, sendRateLimited, type ZodBodies } from './http'
import { localLimiter, type LimiterFactory } from './rateLimit'
import { integrationClientId, zoneOfDevice } from './broker/gate'
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
  /** The port the broker's MQTT listener got (the config's may be 0). */
  mqttPort?: () => number
  log: Logger
  now?: () => number
  /**
   * Where a request came from, for rate limits (`clientAddressOf`: behind a trusted proxy, its
   * X-Real-IP). The hub passes the one its MQTT WebSocket sign-ins use; by default one of its own.
   */
  addressOf?: (req: IncomingMessage) => string
  /** More member routes (the history's), with the API's own sign-in hooks. */
  routes?: ApiRoutes[]
  /** Where the pairing and sign-in limits come from (a cluster shares them between hubs); plain ones by default. */
  limiter?: LimiterFactory
}

/** The API's sign-in hooks, for routes added from another folder. */
export interface ApiHooks {
  signedIn: Hook
  ownerOnly: Hook
  memberOf: (request: FastifyRequest) => Member
}
export type ApiRoutes = (app: FastifyInstance, hooks: ApiHooks) => void

const STATUS: Record<TrustError['code'], number> = { forbidden: 403, 'bad-code': 401, 'last-owner': 409, 'not-found': 404, 'bad-rights': 400 }
const MEMBER_ID = /^[A-Za-z0-9_-]{1,64}$/

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

/**
 * The hub's HTTP API, a Fastify plugin: public `/api/info`, `/healthz`, `/ca.crt`, pairing; the
 * rest needs `Authorization: Bearer <token>` (member routes) and the owner role (members, invites,
 * audit). Sign-in, the owner check and the pairing limit are onRequest hooks, so they answer
 * before a body is read; bodies are parsed by the schemas in core/src/api.ts. Pairing and sign-in
 * are rate-limited per address: a code is 50 bits, a token 256.
 */
export function createApi (d: ApiDeps): FastifyPluginAsync {
  const now = d.now ?? Date.now
  const remoteOf = d.addressOf ?? clientAddressOf({ trustProxy: d.config.trustProxy, log: d.log })
  const limiter = d.limiter ?? localLimiter
  const pairing = limiter('pairing', { burst: 10, refillMs: 30_000, now })
  // Failed bearer sign-ins only: a member's own requests never count.
  const signInLimit = limiter('api-sign-in', { burst: 20, refillMs: 1000, now })
  const members = new WeakMap<FastifyRequest, Member>()
  const memberOf = (request: FastifyRequest): Member => {
    const m = members.get(request)
    if (m === undefined) throw new Error('a member route without its sign-in hook')
    return m
  }

  /** The member behind the bearer token, or 401 (429 while the address has too many failures). */
  const signedIn: Hook = async (request, reply) => {
    const address = remoteOf(request.raw)
    if (!signInLimit.allows(address)) return sendRateLimited(reply, 5)
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
    const found = token ? d.trust.memberByToken(token) : null
    // An integration's credential is Home Assistant's MQTT sign-in, nothing more.
    if (found?.kind === 'integration') return sendJson(reply, 403, { error: 'an integration credential signs in to the broker only' })
    if (found) { members.set(request, found); return undefined }
    signInLimit.take(address)
    return sendJson(reply, 401, { error: token ? 'this screen is no longer a member of the home (removed or expired): pair it again' : 'sign in first: Authorization: Bearer <token>' })
  }
  const ownerOnly: Hook = async (request, reply) => {
    const refused = await signedIn(request, reply)
    if (refused !== undefined) return refused
    if (memberOf(request).role !== 'owner') return sendJson(reply, 403, { error: 'only the owner of the home may do this' })
    return undefined
  }
  // Invite URLs point where the owner's browser reached the hub: behind a trusted proxy, the proxy's origin.
  const baseUrl = (request: FastifyRequest): string => {
    const reached = { tls: d.config.tls !== 'off', trustProxy: d.config.trustProxy }
    return `${publicOrigin(request.raw, reached) ?? `${reached.tls ? 'https' : 'http'}://localhost:${d.config.httpPort}`}/`
  }
  // The invite names the CA a doorbell must find at the hub. Behind a proxy the device talks to
  // the proxy, whose certificate is not the home CA's: no `ca=`, so the device trusts its own
  // CA store (device/src/trust/pairing.ts), as for a hub with given TLS files.
  const caParam = (): string => d.tls && !d.config.trustProxy ? `&ca=${d.tls.fingerprint}` : ''

  return async (plain: FastifyInstance) => {
    const app = plain.withTypeProvider<ZodBodies>()
    app.setErrorHandler(async (err, _request, reply) => {
      if (err instanceof TrustError) return sendJson(reply, STATUS[err.code], { error: err.message })
      // A cluster's PostgreSQL is down (hub/src/cluster/): closed, with a reason and a hint to retry.
      if ((err as Error).name === 'ClusterStoreError') return sendJson(reply, 503, { error: `the home's members cannot be checked now (${(err as Error).message}); try again shortly` })
      // The body's refusals (400, 413, 415) are the web server's to word.
      if (typeof (err as { statusCode?: unknown }).statusCode === 'number' && (err as { statusCode: number }).statusCode < 500) throw err
      d.log.error('API request failed', { error: (err as Error).message })
      return sendJson(reply, 500, { error: 'the hub could not do that; see its log' })
    })

    app.get('/api/info', async (_request, reply) => {
      const paired = d.trust.members().some((m) => m.role === 'owner' && m.revokedAt === null)
      return sendJson(reply, 200, {
        homeId: d.config.homeId,
        hubName: d.config.hubName,
        mqttPath: d.mqttPath,
        inspect: d.config.inspect,
        paired,
        caFingerprint: d.tls?.fingerprint ?? null
      })
    })
    app.all('/healthz', async (_request, reply) => sendJson(reply, 200, { ok: true, clients: d.clients() }))
    app.get('/ca.crt', async (_request, reply) => {
      if (!d.tls) return sendJson(reply, 404, { error: 'this hub has no local certificate authority (TLS is off or uses given files)' })
      return sendCaCertificate(reply, d.tls.caDer, d.tls.fingerprint)
    })

    app.post('/api/pair', { onRequest: rateLimited(pairing, remoteOf), schema: { body: PairRequest } }, async (request, reply) => {
      const paired = await d.trust.pair(request.body)
      d.log.info('paired', { member: paired.member.id, kind: paired.member.kind, role: paired.member.role, name: paired.member.name })
      return sendJson(reply, 200, paired)
    })
    app.get('/api/me', { onRequest: signedIn }, async (request, reply) => sendJson(reply, 200, { member: memberOf(request) }))
    app.get('/api/cloud', { onRequest: signedIn }, async (_request, reply) => {
      // Not secret, but a member's business: which AWS endpoints and channels this home uses.
      if (!d.config.cloud) return sendJson(reply, 404, { error: 'this home has no cloud path set up (npm run cloud-setup --workspace device)' })
      return sendJson(reply, 200, d.config.cloud)
    })
    app.get('/api/ice', { onRequest: signedIn }, async (request, reply) => {
      // Every member makes peer connections (a viewer, a browser camera node, a Node device); TURN
      // credentials are minted per request and name the member (coturn logs who relayed).
      return sendJson(reply, 200, await iceSettingsFor(d.config, memberOf(request).id, now()))
    })
    app.get('/api/zones', { onRequest: signedIn }, async (request, reply) => {
      const m = memberOf(request)
      if (m.role !== 'owner' && m.role !== 'operator') {
        return sendJson(reply, 403, { error: 'zones are for the owner and operators: residents and guests see their home\'s doorbells without them' })
      }
      return sendJson(reply, 200, zonesFor(m, d.trust.members(), now()))
    })
    app.get('/api/devices', { onRequest: signedIn }, async (request, reply) => {
      const m = memberOf(request)
      if (m.kind === 'device') return sendJson(reply, 403, { error: 'devices do not list other devices' })
      const mesh = d.mesh()
      // Operators learn only their zones' devices (their addresses would let them dial the others directly).
      const zones = m.role === 'operator' ? new Set(m.zones) : null
      const zoneOf = new Map(d.trust.members().filter((x) => x.kind === 'device' && x.revokedAt === null).map((x) => [x.subject, zoneOfDevice(x)]))
      const devices = (mesh?.devices() ?? []).filter((x) => zones === null || zones.has(zoneOf.get(x.deviceId) ?? ''))
      return sendJson(reply, 200, { devices, peers: zones === null ? mesh?.peers().length ?? 0 : devices.length })
    })
    app.post('/api/invites', { onRequest: ownerOnly, schema: { body: InviteRequest } }, async (request, reply) => {
      return sendJson(reply, 200, await d.trust.invite(memberOf(request), request.body, baseUrl(request), caParam()))
    })
    app.post('/api/integrations', { onRequest: ownerOnly, schema: { body: IntegrationRequest } }, async (request, reply) => {
      const { member, token } = await d.trust.createIntegration(memberOf(request), request.body.name ?? 'Home Assistant')
      return sendJson(reply, 200, {
        member,
        username: member.id,
        password: token,
        clientId: integrationClientId(member.subject),
        discoveryPrefix: d.config.homeAssistant.discoveryPrefix,
        enabled: d.config.homeAssistant.enabled,
        mqttPort: d.mqttPort?.() ?? d.config.mqttPort,
        tls: d.config.tls !== 'off'
      })
    })
    app.get('/api/members', { onRequest: ownerOnly }, async (_request, reply) => sendJson(reply, 200, { members: d.trust.members() }))
    // A malformed member id is no endpoint at all: 404 before the sign-in, as it always was.
    const memberId: Hook = async (request, reply) => MEMBER_ID.test((request.params as { id: string }).id)
      ? undefined
      : sendJson(reply, 404, { error: `no such endpoint: ${request.method} ${new URL(request.url, 'http://hub').pathname}` })
    app.delete('/api/members/:id', { onRequest: [memberId, ownerOnly] }, async (request, reply) => {
      const { id } = request.params as { id: string }
      return sendJson(reply, 200, { member: (await d.trust.revoke(memberOf(request), id)).member })
    })
    app.put('/api/integrations/:id/door', { onRequest: [memberId, ownerOnly], schema: { body: IntegrationDoorRequest } }, async (request, reply) => {
      const { id } = request.params as { id: string }
      return sendJson(reply, 200, { member: await d.trust.setIntegrationDoor(memberOf(request), id, request.body.door) })
    })
    app.get('/api/audit', { onRequest: ownerOnly }, async (request, reply) => {
      const query = new URL(request.url, 'http://hub').searchParams
      const after = Number(query.get('after') ?? 0)
      const limit = Number(query.get('limit') ?? 200)
      if (!Number.isInteger(after) || after < 0 || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
        return sendJson(reply, 400, { error: 'after is a sequence number (0 or more) and limit 1-1000' })
      }
      return sendJson(reply, 200, { records: d.trust.audit.list({ afterSeq: after, limit }) })
    })
    app.get('/api/audit/export', { onRequest: ownerOnly }, async (_request, reply) => {
      const day = new Date(now()).toISOString().slice(0, 10)
      reply.header('Content-Disposition', `attachment; filename="doorbell-audit-${d.config.homeId}-${day}.json"`)
      return sendJson(reply, 200, { homeId: d.config.homeId, exportedAt: now(), records: d.trust.audit.all() })
    })
    for (const routes of d.routes ?? []) routes(app, { signedIn, ownerOnly, memberOf })
  }
}

/**
 * The zones `viewer` may watch with the live devices in each, sorted by zone, then device name.
 * An operator: exactly the zones granted (a granted zone without devices yet is listed empty), as
 * the broker's gate enforces them. The owner: every zone a live device is in or a live member is
 * granted.
 */
export function zonesFor (viewer: Member, members: readonly Member[], now: number): ZonesResponse {
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
