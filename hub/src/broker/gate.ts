import {
  DEFAULT_DISCOVERY_PREFIX, DEFAULT_ZONE, decodeWord, HomeAssistantStatus, Id, IntegrationEntities, integrationTopics, LockCommand,
  parseIntegrationTopic, parseTopic, ROOT, type Member
} from '@doorbell/core'
import { decodePublished } from './decodedOnce'

/**
 * The broker's gate: who may connect as what, publish what and subscribe to what. Every client
 * signed in with a member id and token (aedes `authenticate`), so each hook below knows the
 * member; there are no anonymous clients. Every payload on our topics is parsed by its schema
 * before the broker stores or forwards it (MQTT-3.3.5-2 lets a server refuse a PUBLISH by
 * closing the connection; aedes does so when the hook returns an error).
 */
export type GateResult = { ok: true } | { ok: false, reason: string }

/** A signed-in client: a member of the home, and which of its devices or screens it is. */
export type Principal =
  | { kind: 'device', member: Member, home: string, deviceId: string }
  | { kind: 'viewer', member: Member, home: string, viewerId: string }
  /** Home Assistant's MQTT sign-in: only the discovery prefix and the integration's own topics. */
  | { kind: 'integration', member: Member, home: string, integrationId: string }

/** A device's zone: the one its invite named; a device paired before zones is in the default zone. */
export function zoneOfDevice (m: Pick<Member, 'zones'>): string {
  return m.zones[0] ?? DEFAULT_ZONE
}

/** Which zones each device is in (from its pairing), for operators. */
export type ZonesOf = (deviceId: string) => readonly string[]

const DEVICE_PREFIX = 'device-'
const VIEWER_PREFIX = 'viewer-'
const INTEGRATION_PREFIX = 'integration-'

/** The client id an integration member must connect with (set in Home Assistant's advanced broker options). */
export const integrationClientId = (subject: string): string => INTEGRATION_PREFIX + subject

const ok: GateResult = { ok: true }
const no = (reason: string): GateResult => ({ ok: false, reason })

/**
 * The client id must be the member's own: a device connects as `device-{deviceId}`, a viewer's
 * tab as `viewer-{viewerId}-{tab}`. Otherwise one member could take over another's persistent
 * session (MQTT-3.1.4-2: a new connection with the same client id ends the old one).
 */
export function principalFor (member: Member, home: string, clientId: string): Principal | null {
  if (member.kind === 'device') {
    return clientId === DEVICE_PREFIX + member.subject ? { kind: 'device', member, home, deviceId: member.subject } : null
  }
  if (member.kind === 'integration') {
    return clientId === integrationClientId(member.subject) ? { kind: 'integration', member, home, integrationId: member.subject } : null
  }
  return clientId.startsWith(`${VIEWER_PREFIX}${member.subject}-`) && Id.safeParse(clientId).success
    ? { kind: 'viewer', member, home, viewerId: member.subject }
    : null
}

/** Which client ids are this member's own (its persistent sessions, for dropping them when it is removed). */
export function sessionsOf (member: Pick<Member, 'kind' | 'subject'>): (clientId: string) => boolean {
  if (member.kind === 'device') return (id) => id === DEVICE_PREFIX + member.subject
  if (member.kind === 'integration') return (id) => id === integrationClientId(member.subject)
  // A screen's own suffix (its tab, its session) has no '-': so `viewer-v1-` never takes member `v1-x`'s sessions.
  const prefix = `${VIEWER_PREFIX}${member.subject}-`
  return (id) => id.startsWith(prefix) && id.length > prefix.length && !id.slice(prefix.length).includes('-')
}

/** May operators of these zones see this device? */
function inZones (who: Principal, deviceId: string, zonesOf: ZonesOf): boolean {
  if (who.kind !== 'viewer' || who.member.role !== 'operator') return true
  const zones = zonesOf(deviceId)
  return who.member.zones.some((z) => zones.includes(z))
}

/**
 * Home Assistant's topics: its status (birth and will) and lock commands, from the integration
 * member only, each payload one of the few words Home Assistant sends; what the hub publishes for
 * it (the discovery prefix, the entities) no client may. Null: not one of these topics.
 */
function mayPublishForHomeAssistant (who: Principal | null, topic: string, payload: Buffer, retain: boolean, prefix: string): GateResult | null {
  if (topic === integrationTopics.status(prefix)) {
    const status = decodeWord(HomeAssistantStatus, payload)
    if (!status.ok) return no(`${topic}: ${status.message}`)
    if (who?.kind !== 'integration') return no('only Home Assistant\'s integration publishes its status')
    return ok
  }
  if (topic === prefix || topic.startsWith(`${prefix}/`)) return no(`only the hub publishes under ${prefix}/`)
  const t = parseIntegrationTopic(topic)
  if (t === null) return null
  if (t.kind === 'ha-entity') return no('only the hub publishes Home Assistant\'s entities')
  const command = decodeWord(LockCommand, payload)
  if (!command.ok) return no(`${topic}: ${command.message}`)
  if (who?.kind !== 'integration') return no('only Home Assistant\'s integration sends lock commands')
  if (t.home !== who.home) return no(`a member of ${who.home} may not publish to home ${t.home}`)
  // A retained command would be replayed to every later subscriber: a command happens once.
  if (retain) return no('a lock command may not be retained')
  return ok
}

export function mayPublish (who: Principal | null, topic: string, payload: Buffer, zonesOf: ZonesOf = () => [], retain = false, discoveryPrefix = DEFAULT_DISCOVERY_PREFIX): GateResult {
  if (topic.startsWith('$SYS')) return no('$SYS topics are reserved for the broker')
  const forHomeAssistant = mayPublishForHomeAssistant(who, topic, payload, retain, discoveryPrefix)
  if (forHomeAssistant !== null) return forHomeAssistant
  if (who?.kind === 'integration') return no('an integration publishes only Home Assistant\'s status and lock commands')
  const decoded = decodePublished(topic, payload)
  if (!decoded.ok) return no(decoded.error.message)
  // No signed-in client behind it (an orphaned will): nothing is taken on trust.
  if (who === null) return no('no signed-in client')
  const { kind, topic: t } = decoded.value
  // Retained messages are replayed to every new subscriber: only a device's own state and presence are.
  if (retain && !(who.kind === 'device' && (kind === 'state' || kind === 'presence'))) return no(`${kind} may not be retained`)
  if (t.home !== who.home) return no(`a member of ${who.home} may not publish to home ${t.home}`)
  if (kind === 'revocations') return no('only the hub publishes the revocation list')
  if (kind === 'replies') return no('only the hub publishes the quick replies (the owner saves them in Home settings)')
  if (kind === 'grants') return no('only the hub publishes the replaced grants (the owner changes rights in Home settings)')
  if (kind === 'inspect') {
    // A device inspects under its device id, a viewer's tab under its client id.
    const mine = who.kind === 'device' ? t.device === who.deviceId : t.device.startsWith(`${VIEWER_PREFIX}${who.viewerId}-`)
    return mine ? ok : no(`may not publish inspection for ${t.device}`)
  }
  if (kind === 'to-device') {
    if (who.kind === 'device') return no('a device does not send offers')
    // The viewer level of the topic binds the session to its owner.
    if (t.viewer !== who.viewerId) return no(`${who.viewerId} may not signal as ${t.viewer}`)
    return inZones(who, t.device, zonesOf) ? ok : no(`${t.device} is not in the operator's zones`)
  }
  if (kind === 'command') {
    // A signed command outside a call: any signed-in screen of the home (the doorbell itself
    // checks signature, grant and right); the viewer level binds the command, and its result,
    // to the sender, as for offers.
    if (who.kind === 'device') return no('a device does not send commands')
    if (t.viewer !== who.viewerId) return no(`${who.viewerId} may not send commands as ${t.viewer}`)
    return inZones(who, t.device, zonesOf) ? ok : no(`${t.device} is not in the operator's zones`)
  }
  // ring, snapshot, state, presence, calls, audit, to-viewer, command-result: only the device itself (a snapshot's
  // JPEG magic and size are checked by its schema above, so a bad one is refused and logged here).
  if (who.kind !== 'device') return no(`only the device may publish ${kind}`)
  if (t.device !== who.deviceId) return no(`device ${who.deviceId} may not publish for device ${t.device}`)
  return ok
}

/**
 * A subscription is allowed when every topic it can match is allowed: each level of the filter
 * must equal the pattern's, or the pattern's is `+` and the filter's is `+` or one id.
 */
function covered (filter: string, pattern: string): boolean {
  const f = filter.split('/')
  const p = pattern.split('/')
  if (f.length !== p.length) return false
  return p.every((level, i) => level === '+' ? f[i] === '+' || Id.safeParse(f[i]).success : f[i] === level)
}

const OPERATOR_EVENTS = new Set(['ring', 'state', 'presence', 'calls'])

/** What a principal may subscribe to, as MQTT filters. */
export function subscribable (who: Principal, devices: () => readonly string[], zonesOf: ZonesOf): string[] {
  const h = `${ROOT}/${who.home}`
  if (who.kind === 'integration') return [integrationTopics.homeEntities(who.home), ...IntegrationEntities.map((e) => `${h}/+/ha/${e}`)]
  if (who.kind === 'device') {
    return [`${h}/${who.deviceId}/session/+/+/to-device`, `${h}/${who.deviceId}/command/+/to-device`, `${h}/revocations`, `${h}/replies`, `${h}/grants`]
  }
  const inbox = `${h}/+/session/${who.viewerId}/+/to-viewer`
  const results = `${h}/+/command/${who.viewerId}/to-viewer`
  // Which members' older grants are void (ids and times only): a screen fetches its new grant when named.
  const grants = `${h}/grants`
  const events = ['ring', 'snapshot', 'state', 'presence', 'calls']
  if (who.member.role === 'operator') {
    // Only the devices of the operator's zones, one by one: no wildcard over the home.
    const seen = devices().filter((d) => inZones(who, d, zonesOf))
    return [inbox, results, grants, ...seen.flatMap((d) => events.map((e) => `${h}/${d}/${e}`))]
  }
  const home = events.map((e) => `${h}/+/${e}`)
  return who.member.role === 'owner' ? [inbox, results, grants, ...home, `${h}/+/inspect`] : [inbox, results, grants, ...home]
}

export function maySubscribe (who: Principal, filter: string, devices: () => readonly string[] = () => [], zonesOf: ZonesOf = () => [], discoveryPrefix = DEFAULT_DISCOVERY_PREFIX): GateResult {
  if (filter.startsWith('$SYS') || filter.startsWith('$share')) return no('$SYS is not open to clients')
  // Home Assistant subscribes to its whole discovery prefix (wildcards included): it holds only this hub's configs.
  if (who.kind === 'integration' && filter.startsWith(`${discoveryPrefix}/`)) return ok
  if (filter.split('/')[0] !== ROOT) return no(`only ${ROOT}/ topics exist here`)
  if (filter.includes('#')) return no('multi-level wildcards are not allowed: subscribe to the topics you need')
  // A concrete topic must be one of ours.
  if (!filter.includes('+') && parseTopic(filter) === null && parseIntegrationTopic(filter)?.kind !== 'ha-entity') return no('not a doorbell topic')
  // An operator subscribes to each device's events one by one: one lookup decides, where listing
  // every subscribable topic would cost the number of devices per SUBSCRIBE (their square in all).
  const own = who.kind === 'viewer' && who.member.role === 'operator' ? parseTopic(filter) : null
  if (own !== null && own.kind !== 'revocations' && own.kind !== 'replies' && own.kind !== 'grants' && own.home === who.home && OPERATOR_EVENTS.has(own.kind)) {
    if (inZones(who, own.device, zonesOf) && devices().includes(own.device)) return ok
  } else if (subscribable(who, devices, zonesOf).some((p) => covered(filter, p))) {
    return ok
  }
  const name = who.kind === 'device' ? `device ${who.deviceId}` : who.kind === 'integration' ? `integration ${who.integrationId}` : `${who.member.role ?? 'viewer'} ${who.viewerId}`
  return no(`${name} may not subscribe to ${filter}`)
}
