import { z } from 'zod'
import { Id } from './ids'

/**
 * Topic layout (MQTT on the LAN hub; the cloud bridge keeps the same tail):
 *
 *   doorbell/{home}/{device}/ring                                   ring events, QoS 1, not retained
 *   doorbell/{home}/{device}/snapshot                               the visitor's picture after a ring, QoS 1
 *   doorbell/{home}/{device}/state                                  device state, QoS 1, retained
 *   doorbell/{home}/{device}/presence                               online/offline, retained, also the will
 *   doorbell/{home}/{device}/calls                                  call records, QoS 1
 *   doorbell/{home}/{device}/kept                                   rings the device kept while the hub was away, QoS 1, hub only
 *   doorbell/{home}/{device}/clip                                   a ring's clip in parts (or why there is none), QoS 1, hub only
 *   doorbell/{home}/{source}/inspect                                inspection batches, QoS 0, only when on
 *   doorbell/{home}/{device}/audit                                  the device's open-door attempts, QoS 1
 *   doorbell/{home}/revocations                                     the home's signed revocation list, retained, hub only
 *   doorbell/{home}/replies                                         the owner's signed quick replies, retained, hub only
 *   doorbell/{home}/grants                                          the home's signed list of replaced grants (grants.ts), retained, hub only
 *   doorbell/{home}/{device}/session/{viewer}/{session}/to-device   signaling, viewer -> device
 *   doorbell/{home}/{device}/session/{viewer}/{session}/to-viewer   signaling, device -> viewer
 *   doorbell/{home}/{device}/command/{viewer}/to-device             a signed command outside a call, member -> device, QoS 1
 *   doorbell/{home}/{device}/command/{viewer}/to-viewer             its result, device -> that member, QoS 1
 *
 * The viewer id is its own topic level so that the broker's ACL can bind a session (and a
 * command and its result) to the client that owns it.
 */
export const ROOT = 'doorbell'

export type DeviceTopicKind = 'ring' | 'snapshot' | 'state' | 'presence' | 'calls' | 'inspect' | 'audit' | 'kept' | 'clip'
export type SessionDirection = 'to-device' | 'to-viewer'
/** A command outside a call (`command`), and its result (`command-result`): commands.ts. */
export type CommandTopicKind = 'command' | 'command-result'

export type ParsedTopic =
  | { kind: DeviceTopicKind, home: string, device: string }
  | { kind: SessionDirection, home: string, device: string, viewer: string, session: string }
  | { kind: CommandTopicKind, home: string, device: string, viewer: string }
  | { kind: 'revocations', home: string }
  | { kind: 'replies', home: string }
  | { kind: 'grants', home: string }

export const topics = {
  ring: (home: string, device: string) => `${ROOT}/${home}/${device}/ring`,
  snapshot: (home: string, device: string) => `${ROOT}/${home}/${device}/snapshot`,
  state: (home: string, device: string) => `${ROOT}/${home}/${device}/state`,
  presence: (home: string, device: string) => `${ROOT}/${home}/${device}/presence`,
  calls: (home: string, device: string) => `${ROOT}/${home}/${device}/calls`,
  audit: (home: string, device: string) => `${ROOT}/${home}/${device}/audit`,
  kept: (home: string, device: string) => `${ROOT}/${home}/${device}/kept`,
  clip: (home: string, device: string) => `${ROOT}/${home}/${device}/clip`,
  revocations: (home: string) => `${ROOT}/${home}/revocations`,
  replies: (home: string) => `${ROOT}/${home}/replies`,
  grants: (home: string) => `${ROOT}/${home}/grants`,
  /** `source` is a device id, or a viewer tab's client id. */
  inspect: (home: string, source: string) => `${ROOT}/${home}/${source}/inspect`,
  /** What the inspector page subscribes to. */
  homeInspection: (home: string) => `${ROOT}/${home}/+/inspect`,
  session: (home: string, device: string, viewer: string, session: string, dir: SessionDirection) =>
    `${ROOT}/${home}/${device}/session/${viewer}/${session}/${dir}`,
  /** A signed command to `device` outside a call, from `viewer` (the broker binds the level to the sender). */
  command: (home: string, device: string, viewer: string) => `${ROOT}/${home}/${device}/command/${viewer}/to-device`,
  /** The device's result of `viewer`'s commands, matched by command id. */
  commandResult: (home: string, device: string, viewer: string) => `${ROOT}/${home}/${device}/command/${viewer}/to-viewer`,
  /** Every command to one device, whoever sends it. */
  commandInbox: (home: string, device: string) => `${ROOT}/${home}/${device}/command/+/to-device`,
  /** Every result addressed to one viewer, whichever device. */
  commandResults: (home: string, viewer: string) => `${ROOT}/${home}/+/command/${viewer}/to-viewer`,

  /** What a viewer subscribes to: every device of its home. */
  homeEvents: (home: string) => [
    `${ROOT}/${home}/+/ring`,
    `${ROOT}/${home}/+/state`,
    `${ROOT}/${home}/+/presence`,
    `${ROOT}/${home}/+/calls`,
    `${ROOT}/${home}/+/snapshot`
  ],
  /** Every answer addressed to one viewer, whichever device or session. */
  viewerInbox: (home: string, viewer: string) => `${ROOT}/${home}/+/session/${viewer}/+/to-viewer`,
  /** Every offer addressed to one device. */
  deviceInbox: (home: string, device: string) => `${ROOT}/${home}/${device}/session/+/+/to-device`
}

const isId = (s: string | undefined): s is string => s !== undefined && Id.safeParse(s).success

/** Parses a concrete topic (no wildcards); null if it is not one of ours. */
export function parseTopic (topic: string): ParsedTopic | null {
  const p = topic.split('/')
  if (p.length === 3 && p[0] === ROOT && isId(p[1]) && p[2] === 'revocations') return { kind: 'revocations', home: p[1] }
  if (p.length === 3 && p[0] === ROOT && isId(p[1]) && p[2] === 'replies') return { kind: 'replies', home: p[1] }
  if (p.length === 3 && p[0] === ROOT && isId(p[1]) && p[2] === 'grants') return { kind: 'grants', home: p[1] }
  if (p[0] !== ROOT || !isId(p[1]) || !isId(p[2])) return null
  const home = p[1]
  const device = p[2]
  if (p.length === 4) {
    const kind = p[3]
    if (kind === 'ring' || kind === 'snapshot' || kind === 'state' || kind === 'presence' || kind === 'calls' || kind === 'inspect' || kind === 'audit' || kind === 'kept' || kind === 'clip') {
      return { kind, home, device }
    }
    return null
  }
  if (p.length === 6 && p[3] === 'command' && isId(p[4])) {
    if (p[5] === 'to-device') return { kind: 'command', home, device, viewer: p[4] }
    if (p[5] === 'to-viewer') return { kind: 'command-result', home, device, viewer: p[4] }
    return null
  }
  if (p.length === 7 && p[3] === 'session' && isId(p[4]) && isId(p[5])) {
    const dir = p[6]
    if (dir === 'to-device' || dir === 'to-viewer') {
      return { kind: dir, home, device, viewer: p[4], session: p[5] }
    }
  }
  return null
}

// ---------------------------------------------------------------- Home Assistant (hub/src/homeAssistant)

/**
 * What the hub's Home Assistant bridge publishes for each doorbell, and the one command it takes,
 * under the device's own topics so that the broker's gate binds them to the home:
 *
 *   doorbell/{home}/{device}/ha/{entity}      the hub's translation for Home Assistant (entities below)
 *   doorbell/{home}/{device}/ha/lock/set      Home Assistant's lock commands, from the integration member only
 *   {prefix}/device/{object}/config           the device-based discovery config, retained, hub only
 *   {prefix}/status                           Home Assistant's birth and will (`online` / `offline`)
 */
export const INTEGRATION_LEVEL = 'ha'
export const IntegrationEntities = ['availability', 'event', 'lock', 'lock-attributes', 'online', 'last-ring', 'last-ring-attributes', 'image'] as const
export type IntegrationEntity = typeof IntegrationEntities[number]
export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant'

export const integrationTopics = {
  entity: (home: string, device: string, entity: IntegrationEntity) => `${ROOT}/${home}/${device}/${INTEGRATION_LEVEL}/${entity}`,
  lockCommand: (home: string, device: string) => `${ROOT}/${home}/${device}/${INTEGRATION_LEVEL}/lock/set`,
  /** Every entity topic of the home, as one filter. */
  homeEntities: (home: string) => `${ROOT}/${home}/+/${INTEGRATION_LEVEL}/+`,
  /** Every lock command of the home, as one filter (what the hub takes from the user's broker). */
  homeLockCommands: (home: string) => `${ROOT}/${home}/+/${INTEGRATION_LEVEL}/lock/set`,
  /**
   * The hub's own availability on the user's broker (its will says offline): every entity is
   * unavailable while the hub is away from that broker. Not under a device: no doorbell has it.
   */
  bridge: (home: string) => `${ROOT}/${home}/${INTEGRATION_LEVEL}-bridge`,
  /** Home Assistant's device-based discovery topic: `<prefix>/device/<object id>/config`. */
  discovery: (prefix: string, objectId: string) => `${prefix}/device/${objectId}/config`,
  status: (prefix: string) => `${prefix}/status`
}

export type ParsedIntegrationTopic =
  | { kind: 'ha-entity', home: string, device: string, entity: IntegrationEntity }
  | { kind: 'ha-lock-command', home: string, device: string }

/** Parses a concrete topic under `doorbell/{home}/{device}/ha/`; null if it is not one. */
export function parseIntegrationTopic (topic: string): ParsedIntegrationTopic | null {
  const p = topic.split('/')
  if (p[0] !== ROOT || !isId(p[1]) || !isId(p[2]) || p[3] !== INTEGRATION_LEVEL) return null
  if (p.length === 6 && p[4] === 'lock' && p[5] === 'set') return { kind: 'ha-lock-command', home: p[1], device: p[2] }
  const entity = p[4] as IntegrationEntity
  if (p.length === 5 && IntegrationEntities.includes(entity)) return { kind: 'ha-entity', home: p[1], device: p[2], entity }
  return null
}

/**
 * What Home Assistant sends: plain words, not JSON. Parsed by the broker's gate before the broker
 * forwards anything, and again by the hub's bridge before it acts.
 */
/** Home Assistant's birth and will on `<prefix>/status` (its defaults). */
export const HomeAssistantStatus = z.enum(['online', 'offline'])
export type HomeAssistantStatus = z.infer<typeof HomeAssistantStatus>

/**
 * The MQTT lock's `payload_lock`, `payload_unlock`, `payload_open` (Home Assistant's defaults).
 * UNLOCK and OPEN both mean one release with auto-relock: the doorbell has no permanent unlock.
 */
export const LockCommand = z.enum(['LOCK', 'UNLOCK', 'OPEN'])
export type LockCommand = z.infer<typeof LockCommand>

/** Longer than any word above, with room: anything longer is refused before it is decoded. */
const MAX_WORD_BYTES = 16
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** A one-word payload by its schema: bounded, UTF-8, exact (no trimming, no case folding). Never throws. */
export function decodeWord<S extends z.ZodType<string>> (schema: S, payload: Uint8Array): { ok: true, value: z.infer<S> } | { ok: false, message: string } {
  if (payload.byteLength > MAX_WORD_BYTES) return { ok: false, message: `a payload of ${payload.byteLength} bytes where one word was expected` }
  let text: string
  try {
    text = strictUtf8.decode(payload)
  } catch {
    return { ok: false, message: 'the payload is not UTF-8' }
  }
  const parsed = schema.safeParse(text)
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, message: `unexpected payload ${JSON.stringify(text)}` }
}
