import {
  AuditRecord, ClipSettingRequest, ClipUrl, CredentialResponse, DismissRequest, MemberRightsRequest, EventsPage, HomeAssistantBrokerRequest, HomeAssistantBrokerSettings, IceSettings, LivePreviewSettingRequest, StockDoorSettingRequest, StockDoorSettingView, IntegrationCredential, IntegrationDoorRequest, IntegrationRequest, InviteRequest, InviteResponse, Member, PairRequest, PairResponse, RepliesResponse, SignedReplies, ViewerCloudConfig, ZonesResponse,
  PushKeyResponse, PushSubscribeRequest, PushUnsubscribeRequest,
  ApiError as ApiErrorBody, type EventFilter
} from '@doorbell/core'

/**
 * The hub's HTTP API for pairing, members and the audit log (core/src/api.ts): typed fetch
 * wrappers, the same in a browser and in Node. Requests are checked by the core schemas before
 * they are sent, answers parsed by them before anyone sees them.
 */

/** The hub answered with an error status, or did not answer (status 0). `message` is the hub's own `{error}` when it gave one. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor (readonly status: number, message: string, readonly request: string) {
    super(message)
  }
}

/** The hub answered 2xx with a body that is not what the API promises (another server, another version). */
export class MalformedAnswerError extends Error {
  override readonly name = 'MalformedAnswerError'
  constructor (readonly request: string, detail: string) {
    super(`the hub's answer to ${request} has an unexpected shape (${detail})`)
  }
}

/** What the wrappers need of a schema: zod's safeParse, without depending on zod here. */
interface Schema<T> {
  safeParse: (value: unknown) => { success: true, data: T } | { success: false, error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string }> } }
}

type Parsed<T> = { ok: true, value: T } | { ok: false, detail: string }

function parse<T> (schema: Schema<T>, value: unknown, at = ''): Parsed<T> {
  const r = schema.safeParse(value)
  if (r.success) return { ok: true, value: r.data }
  const detail = r.error.issues.slice(0, 2)
    .map((i) => `${[at, ...i.path.map(String)].filter(Boolean).join('.') || '(root)'}: ${i.message}`).join('; ')
  return { ok: false, detail }
}

/** `{ [key]: schema }`: the hub wraps lists and single members in a named field. */
function field<T> (key: string, schema: Schema<T>): (value: unknown) => Parsed<T> {
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, detail: 'not a JSON object' }
    if (!(key in value)) return { ok: false, detail: `no "${key}"` }
    return parse(schema, (value as Record<string, unknown>)[key], key)
  }
}
const whole = <T>(schema: Schema<T>) => (value: unknown): Parsed<T> => parse(schema, value)

export interface HubApiOptions {
  /** The hub's origin, e.g. `https://hub.local:8443`; default '' (the page's own origin; Node needs one). */
  base?: string
  /** The member token from pairing: `Authorization: Bearer <token>` on every call but pairing. */
  token?: string | null
  /** Called when the hub refuses the token (401): the member was removed or its access ended. */
  onUnauthorized?: (error: ApiError) => void
  /** Each request gives up after this long (default 10 s). */
  timeoutMs?: number
  /** Default: the global fetch. */
  fetch?: typeof fetch
}

export interface CallOptions { signal?: AbortSignal }

const DEFAULT_TIMEOUT_MS = 10_000

/** The hub's pairing, members, audit, ICE and zones endpoints. */
export class HubApi {
  private readonly base: string
  private readonly timeoutMs: number

  constructor (private readonly o: HubApiOptions = {}) {
    this.base = (o.base ?? '').replace(/\/+$/, '')
    this.timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /** POST /api/pair: a one-time code for a grant. 401: the code is unknown, used or expired; 429: too many tries. */
  async pair (request: PairRequest, o: CallOptions = {}): Promise<PairResponse> {
    return await this.call('POST', '/api/pair', whole(PairResponse), { body: checked(PairRequest, request, 'pairing request'), auth: false, ...o })
  }

  /** POST /api/invites (owner): a one-time code, its URL and QR. */
  async invite (request: InviteRequest, o: CallOptions = {}): Promise<InviteResponse> {
    return await this.call('POST', '/api/invites', whole(InviteResponse), { body: checked(InviteRequest, request, 'invitation'), ...o })
  }

  /** POST /api/integrations (owner): Home Assistant's MQTT credential, shown once. */
  async createIntegration (request: IntegrationRequest = {}, o: CallOptions = {}): Promise<IntegrationCredential> {
    return await this.call('POST', '/api/integrations', whole(IntegrationCredential), { body: checked(IntegrationRequest, request, 'integration request'), ...o })
  }

  /** PUT /api/integrations/<id>/door (owner): gives or withdraws Home Assistant's door right; the member as it is now. */
  async setIntegrationDoor (memberId: string, door: boolean, o: CallOptions = {}): Promise<Member> {
    return await this.call('PUT', `/api/integrations/${encodeURIComponent(memberId)}/door`, field('member', Member), { body: checked(IntegrationDoorRequest, { door }, 'door right'), ...o })
  }

  /** GET /api/home-assistant/broker (owner): the user's broker for Home Assistant (never its password) and the hub's connection to it. */
  async homeAssistantBroker (o: CallOptions = {}): Promise<HomeAssistantBrokerSettings> {
    return await this.call('GET', '/api/home-assistant/broker', whole(HomeAssistantBrokerSettings), o)
  }

  /** PUT /api/home-assistant/broker (owner): sets or changes it (password, CA: absent keeps, null removes); the hub reconnects at once. */
  async setHomeAssistantBroker (request: HomeAssistantBrokerRequest, o: CallOptions = {}): Promise<HomeAssistantBrokerSettings> {
    return await this.call('PUT', '/api/home-assistant/broker', whole(HomeAssistantBrokerSettings), { body: checked(HomeAssistantBrokerRequest, request, 'broker settings'), ...o })
  }

  /** DELETE /api/home-assistant/broker (owner): no user's broker. */
  async clearHomeAssistantBroker (o: CallOptions = {}): Promise<HomeAssistantBrokerSettings> {
    return await this.call('DELETE', '/api/home-assistant/broker', whole(HomeAssistantBrokerSettings), o)
  }

  /** GET /api/members (owner). */
  async members (o: CallOptions = {}): Promise<Member[]> {
    return await this.call('GET', '/api/members', field('members', Member.array()), o)
  }

  /** DELETE /api/members/<id> (owner): revokes the member; the answer is the member as it is now. */
  async removeMember (memberId: string, o: CallOptions = {}): Promise<Member> {
    return await this.call('DELETE', `/api/members/${encodeURIComponent(memberId)}`, field('member', Member), o)
  }

  /** PUT /api/members/<id>/rights (owner): a person's door and talk rights, without inviting again; the member's older grants are void from now. */
  async setMemberRights (memberId: string, rights: MemberRightsRequest, o: CallOptions = {}): Promise<Member> {
    return await this.call('PUT', `/api/members/${encodeURIComponent(memberId)}/rights`, field('member', Member), { body: checked(MemberRightsRequest, rights, 'rights'), ...o })
  }

  /** GET /api/credential: this screen's grant signed now, and since when its older grants are void. */
  async credential (o: CallOptions = {}): Promise<CredentialResponse> {
    return await this.call('GET', '/api/credential', whole(CredentialResponse), o)
  }

  /** GET /api/devices/stock-settings (owner): each doorbell's settings the owner has set ("accept unsigned OPEN_DOOR from KVS viewers", live preview). */
  async stockSettings (o: CallOptions = {}): Promise<StockDoorSettingView[]> {
    return await this.call('GET', '/api/devices/stock-settings', field('settings', StockDoorSettingView.array()), o)
  }

  /** PUT /api/devices/<id>/stock-setting (owner): the hub signs it and tells the doorbell. */
  async setStockSetting (deviceId: string, acceptUnsignedOpenDoor: boolean, o: CallOptions = {}): Promise<StockDoorSettingView> {
    return await this.call('PUT', `/api/devices/${encodeURIComponent(deviceId)}/stock-setting`, whole(StockDoorSettingView), { body: checked(StockDoorSettingRequest, { acceptUnsignedOpenDoor }, 'stock setting'), ...o })
  }

  /** PUT /api/devices/<id>/live-preview (owner): live preview in the ring banner, from the doorbell's next ring; the hub signs it and tells the doorbell. */
  async setLivePreview (deviceId: string, livePreview: boolean, o: CallOptions = {}): Promise<StockDoorSettingView> {
    return await this.call('PUT', `/api/devices/${encodeURIComponent(deviceId)}/live-preview`, whole(StockDoorSettingView), { body: checked(LivePreviewSettingRequest, { livePreview }, 'live preview setting'), ...o })
  }

  /** PUT /api/devices/<id>/clip (owner): record a clip of each ring, from the doorbell's next ring; the hub signs it and tells the doorbell. */
  async setClip (deviceId: string, clip: boolean, o: CallOptions = {}): Promise<StockDoorSettingView> {
    return await this.call('PUT', `/api/devices/${encodeURIComponent(deviceId)}/clip`, whole(StockDoorSettingView), { body: checked(ClipSettingRequest, { clip }, 'clip setting'), ...o })
  }

  /** GET /api/replies (any member): the owner's quick replies as they stand. */
  async replies (o: CallOptions = {}): Promise<RepliesResponse> {
    return await this.call('GET', '/api/replies', whole(RepliesResponse), o)
  }

  /** PUT /api/replies (owner): the list, signed by the owner's own key (signReplyList). */
  async saveReplies (signed: SignedReplies, o: CallOptions = {}): Promise<RepliesResponse> {
    return await this.call('PUT', '/api/replies', whole(RepliesResponse), { body: checked(SignedReplies, signed, 'quick replies'), ...o })
  }

  /** GET /api/audit (owner): records with seq > `after`, ascending, at most `limit`. */
  async audit (q: { after?: number, limit?: number } = {}, o: CallOptions = {}): Promise<AuditRecord[]> {
    const params = new URLSearchParams({ after: String(q.after ?? 0), limit: String(q.limit ?? 100) })
    return await this.call('GET', `/api/audit?${params.toString()}`, field('records', AuditRecord.array()), o)
  }

  /** GET /api/audit/export (owner): the whole log as a JSON file, kept as the hub sent it. */
  async auditExport (o: CallOptions = {}): Promise<{ blob: Blob, filename: string }> {
    const res = await this.send('GET', '/api/audit/export', { ...o })
    const name = /filename="?([^";]+)"?/i.exec(res.headers.get('Content-Disposition') ?? '')?.[1]
    return { blob: await res.blob(), filename: name ?? `doorbell-audit-${new Date().toISOString().slice(0, 10)}.json` }
  }

  /** GET /api/me (any member): who this token belongs to. 401 when it was revoked or has expired. */
  async me (o: CallOptions = {}): Promise<Member> {
    return await this.call('GET', '/api/me', field('member', Member), o)
  }

  /** GET /api/cloud (any member): the home's cloud path (AWS endpoints, channels), null when it has none. */
  async cloud (o: CallOptions = {}): Promise<ViewerCloudConfig | null> {
    try {
      return await this.call('GET', '/api/cloud', whole(ViewerCloudConfig), o)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null
      throw err
    }
  }

  /**
   * GET /api/ice (any member, devices and camera nodes too): the ICE servers and policy for the
   * next peer connection. TURN credentials in it are fresh and end at `expiresAt`: fetch again
   * for each call rather than keep them.
   */
  async ice (o: CallOptions = {}): Promise<IceSettings> {
    return await this.call('GET', '/api/ice', whole(IceSettings), o)
  }

  /** GET /api/zones (owner: every zone; operator: the zones granted): the live devices in each. 403 for residents and guests. */
  async zones (o: CallOptions = {}): Promise<ZonesResponse> {
    return await this.call('GET', '/api/zones', whole(ZonesResponse), o)
  }

  /** GET /api/events (owner, residents; operators their zones; guests 403): a page of the history, newest first. */
  async events (q: { before?: string, limit?: number, filter?: EventFilter, device?: string } = {}, o: CallOptions = {}): Promise<EventsPage> {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v))
    return await this.call('GET', `/api/events?${params.toString()}`, whole(EventsPage), o)
  }

  /** GET /api/events/<id>/snapshot: the ring's picture (a JPEG). */
  async eventSnapshot (id: number, o: CallOptions = {}): Promise<Blob> {
    return await (await this.send('GET', `/api/events/${id}/snapshot`, o)).blob()
  }

  /**
   * GET /api/events/<id>/clip-url: a short-lived address of the ring's clip, absolute, that a
   * `<video>` plays and seeks with Range requests (it sends no token; the address carries a signed ticket).
   */
  async eventClipUrl (id: number, o: CallOptions = {}): Promise<ClipUrl> {
    const got = await this.call('GET', `/api/events/${id}/clip-url`, whole(ClipUrl), o)
    return { ...got, url: `${this.base}${got.url}` }
  }

  /** POST /api/events/seen: these missed rings (or all of them) were seen by this member, on every screen of theirs. */
  async markSeen (ids: number[] | 'all', o: CallOptions = {}): Promise<{ marked: number, unseen: number }> {
    const body = ids === 'all' ? { all: true } : { ids }
    const read = (v: unknown): Parsed<{ marked: number, unseen: number }> => {
      const r = v as { marked?: unknown, unseen?: unknown }
      return typeof r?.marked === 'number' && typeof r.unseen === 'number' ? { ok: true, value: { marked: r.marked, unseen: r.unseen } } : { ok: false, detail: 'no marked/unseen counts' }
    }
    return await this.call('POST', '/api/events/seen', read, { ...o, body })
  }

  /**
   * POST /api/events/dismissed: this screen dismissed a ring while it rang; nobody answering, the
   * history records it as dismissed by this member; `screen` (this page's hub client id) counts it for this screen only. 404: not a ring of a doorbell this member may see; 409: it was answered.
   */
  async dismissRing (deviceId: string, ringId: string, o: CallOptions & { screen?: string } = {}): Promise<{ outcome: 'ringing' | 'dismissed' }> {
    const { screen, ...call } = o
    const read = (v: unknown): Parsed<{ outcome: 'ringing' | 'dismissed' }> => {
      const r = v as { outcome?: unknown }
      return r?.outcome === 'ringing' || r?.outcome === 'dismissed' ? { ok: true, value: { outcome: r.outcome } } : { ok: false, detail: 'no outcome' }
    }
    return await this.call('POST', '/api/events/dismissed', read, { ...call, body: checked(DismissRequest, { deviceId, ringId, ...(screen !== undefined ? { screen } : {}) }, 'dismissal') })
  }

  /** GET /api/push/key: the hub's VAPID public key (409 when Web Push is off on this hub) and how many screens this member has subscribed. */
  async pushKey (o: CallOptions = {}): Promise<PushKeyResponse> {
    return await this.call('GET', '/api/push/key', whole(PushKeyResponse), o)
  }

  /** POST /api/push/subscriptions: the hub wakes this screen (its push subscription) when a doorbell rings. */
  async subscribePush (subscription: unknown, screen: string, o: CallOptions = {}): Promise<void> {
    await this.send('POST', '/api/push/subscriptions', { ...o, body: checked(PushSubscribeRequest, { subscription, screen }, 'push subscription') })
  }

  /** POST /api/push/unsubscribe: this screen is no longer woken. */
  async unsubscribePush (endpoint: string, o: CallOptions = {}): Promise<void> {
    await this.send('POST', '/api/push/unsubscribe', { ...o, body: checked(PushUnsubscribeRequest, { endpoint }, 'push unsubscription') })
  }

  /** DELETE /api/events/<id> (owner): the event and its picture. */
  async deleteEvent (id: number, o: CallOptions = {}): Promise<void> {
    await this.send('DELETE', `/api/events/${id}`, o)
  }

  private async call<T> (method: string, path: string, read: (value: unknown) => Parsed<T>, o: CallOptions & { body?: unknown, auth?: boolean }): Promise<T> {
    const res = await this.send(method, path, o)
    const what = `${method} ${path.split('?')[0]}`
    const body: unknown = await res.json().catch(() => { throw new MalformedAnswerError(what, 'not JSON') })
    const parsed = read(body)
    if (!parsed.ok) throw new MalformedAnswerError(what, parsed.detail)
    return parsed.value
  }

  /** The request itself: a 2xx response, or an ApiError with the status and the hub's message. */
  private async send (method: string, path: string, o: CallOptions & { body?: unknown, auth?: boolean }): Promise<Response> {
    const what = `${method} ${path.split('?')[0]}`
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (o.body !== undefined) headers['Content-Type'] = 'application/json'
    const auth = o.auth ?? true
    if (auth && this.o.token) headers.Authorization = `Bearer ${this.o.token}`
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout
    let res: Response
    try {
      res = await (this.o.fetch ?? globalThis.fetch)(`${this.base}${path}`, {
        method,
        headers,
        signal,
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {})
      })
    } catch (err) {
      if (o.signal?.aborted) throw err // the caller's own abort: not the hub's fault
      const reason = timeout.aborted ? `no answer within ${Math.round(this.timeoutMs / 1000)} s` : (err as Error).message
      throw new ApiError(0, `cannot reach the hub (${reason})`, what)
    }
    if (res.ok) return res
    const error = new ApiError(res.status, await errorMessage(res), what)
    if (res.status === 401 && auth) this.o.onUnauthorized?.(error)
    throw error
  }
}

/** The hub's `{ error }` when it sent one, else the HTTP status. */
async function errorMessage (res: Response): Promise<string> {
  const text = await res.text().catch(() => '')
  try {
    const body = ApiErrorBody.safeParse(JSON.parse(text))
    if (body.success && body.data.error.trim()) return body.data.error
  } catch { /* not JSON: a proxy's page, say */ }
  return `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`
}

/** Refuses a bad request before it is sent, with what is wrong in it. */
function checked<T> (schema: Schema<T>, value: unknown, what: string): T {
  const parsed = parse(schema, value)
  if (!parsed.ok) throw new TypeError(`invalid ${what}: ${parsed.detail}`)
  return parsed.value
}
