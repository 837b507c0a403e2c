import { z } from 'zod'
import { Id } from './ids'
import { DEFAULT_ZONE, DenyReason, PublicKeyText, Role, Signed } from './trust'

/**
 * The hub's HTTP API for pairing, members and the audit log: request and response bodies, parsed
 * on both sides. Every request but pairing carries `Authorization: Bearer <token>`, the token
 * issued at pairing (also the MQTT password, with the member id as user name).
 */

const Millis = z.number().int().nonnegative()
const Name = z.string().trim().min(1).max(64)

/** A one-time code as people type it: 10 characters from an alphabet without look-alikes, dashes allowed. */
export const PairingCode = z.string().trim().toUpperCase()
  .transform((s) => s.replace(/[\s-]/g, ''))
  .pipe(z.string().regex(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$/, 'a pairing code is 10 letters and digits, as printed'))

/** `memberId.secret`: bearer token for the API, password for MQTT. */
export const MemberToken = z.string().regex(/^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{43}$/, 'not a member token')

/** `integration`: Home Assistant's MQTT sign-in (docs/home-assistant.md), made by the owner, revocable like any member. */
export const MemberKind = z.enum(['viewer', 'device', 'integration'])
export type MemberKind = z.infer<typeof MemberKind>

export const PairRequest = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('viewer'),
    code: PairingCode,
    /** The browser's viewer id. */
    id: Id,
    name: Name,
    /** The public half of the key made in the browser (its private half never leaves it). */
    key: PublicKeyText
  }),
  z.strictObject({
    kind: z.literal('device'),
    code: PairingCode,
    id: Id,
    name: Name
  })
])
export type PairRequest = z.input<typeof PairRequest>

export const Member = z.strictObject({
  id: Id,
  kind: MemberKind,
  /** Viewer id, device id, or the integration's own id (its MQTT client id is `integration-{subject}`). */
  subject: Id,
  name: Name,
  /** Null for devices and integrations. */
  role: Role.nullable(),
  door: z.boolean(),
  zones: z.array(Id).max(64),
  /** The talk right as granted (core's `mayTalk` reads it with the role); operators: `talkZones`. */
  talk: z.boolean().optional(),
  talkZones: z.array(Id).max(64).optional(),
  createdAt: Millis,
  expiresAt: Millis.nullable(),
  revokedAt: Millis.nullable()
})
export type Member = z.infer<typeof Member>

export const PairResponse = z.strictObject({
  homeId: Id,
  hubName: Name,
  member: Member,
  token: MemberToken,
  /** The viewer's signed grant (null for a device). */
  credential: Signed.nullable(),
  /** The home's public key: a device pins it and checks every grant against it. */
  homeKey: PublicKeyText
})
export type PairResponse = z.infer<typeof PairResponse>

export const InviteRequest = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('viewer'),
    role: Role.exclude(['owner']),
    /** Ignored for operators (never the door); residents default to yes, guests to no. */
    door: z.boolean().optional(),
    zones: z.array(Id).max(64).default([]),
    /** May talk and play quick replies: residents default to yes, guests to no; ignored for operators (`talkZones`). */
    talk: z.boolean().optional(),
    /** Operators: the zones where they may talk (a subset of `zones`); default none. */
    talkZones: z.array(Id).max(64).optional(),
    /** How long the person's access lasts (a guest's visit); null: until revoked. */
    accessHours: z.number().positive().max(24 * 366).nullable().default(null),
    /** How long the code can be used. */
    codeMinutes: z.number().int().min(1).max(7 * 24 * 60).default(15)
  }).refine((r) => (r.talkZones ?? []).every((zone) => r.zones.includes(zone)), { message: 'talkZones must be among the zones the operator watches', path: ['talkZones'] })
    .refine((r) => r.role === 'operator' || (r.talkZones ?? []).length === 0, { message: 'talkZones are for operators; residents and guests use talk', path: ['talkZones'] }),
  z.strictObject({
    kind: z.literal('device'),
    deviceId: Id,
    /** Every device and camera node is in exactly one zone (`CBD-TRAFFIC-01`); a home's doorbells are in `home`. */
    zones: z.array(Id).length(1, 'a device is in exactly one zone').default([DEFAULT_ZONE]),
    codeMinutes: z.number().int().min(1).max(7 * 24 * 60).default(15)
  })
])
export type InviteRequest = z.input<typeof InviteRequest>

export const InviteResponse = z.strictObject({
  code: z.string(),
  /** Opens the viewer's pairing page with the code filled in. */
  url: z.string(),
  expiresAt: Millis,
  /** The same URL as a QR code (SVG markup). */
  qrSvg: z.string()
})
export type InviteResponse = z.infer<typeof InviteResponse>

export const AuditKind = z.enum(['open-door', 'pairing', 'revocation', 'call-answered', 'invite', 'talk', 'reply', 'traces'])
export type AuditKind = z.infer<typeof AuditKind>

/** One line of the hub's append-only audit log. */
export const AuditRecord = z.strictObject({
  seq: z.number().int().positive(),
  at: Millis,
  kind: AuditKind,
  outcome: z.enum(['allowed', 'denied']),
  /** Why, in a word (a DenyReason for refused doors, 'ok' otherwise). */
  reason: z.string().max(64),
  /** Who did it: a member's name, or what the device knew of the sender. */
  actor: z.string().max(128),
  deviceId: Id.nullable(),
  message: z.string().max(300),
  /** Which path carried it (open-door attempts): the LAN hub, direct, or the cloud. */
  path: z.enum(['lan', 'direct', 'cloud']).nullable().default(null)
})
export type AuditRecord = z.infer<typeof AuditRecord>

/** What a device reports of each open-door attempt, on `doorbell/{home}/{device}/audit` (queued while the hub is away). */
export const DoorAttempt = z.strictObject({
  /** Unique per attempt, so a copy delivered twice is stored once. */
  id: Id,
  /** An open-door attempt, a request to talk (the talk lease), to play a quick reply, or to list or read the kept call traces; absent: open-door. */
  kind: z.enum(['open-door', 'talk', 'reply', 'traces']).default('open-door'),
  deviceId: Id,
  at: Millis,
  outcome: z.enum(['allowed', 'denied']),
  /** `unsigned`: a stock KVS viewer's OPEN_DOOR (refused, or allowed by the doorbell's owner setting); `no-speaker`: talk asked of a device with no speaker; `no-reply`: a quick reply the doorbell does not have. */
  reason: z.union([DenyReason, z.enum(['ok', 'lock-fault', 'busy', 'unsigned', 'no-speaker', 'no-reply', 'no-trace'])]),
  message: z.string().max(300),
  /** From the checked grant when there was one, else what the session claimed. */
  memberId: Id.nullable(),
  viewerId: Id.nullable(),
  viewerName: z.string().max(64),
  role: Role.nullable(),
  path: z.enum(['lan', 'direct', 'cloud']).nullable(),
  /**
   * A talk lease that ended (kind `talk`): which allowed request it ends and how long the talk
   * lasted. A record of its own, so the request is never replaced on the way; the history puts the
   * duration on that request (docs/history.md).
   */
  lease: z.strictObject({ attemptId: Id, durationMs: z.number().int().nonnegative().max(86_400_000) }).optional()
})
export type DoorAttempt = z.input<typeof DoorAttempt>

export const ApiError = z.strictObject({ error: z.string() })

/** `GET /api/zones`: the zones a member may watch and the devices in each (an operator: the zones granted; the owner: all). */
export const ZonesResponse = z.strictObject({
  zones: z.array(z.strictObject({
    zone: Id,
    devices: z.array(z.strictObject({ deviceId: Id, name: Name })).max(1024)
  })).max(256)
})
export type ZonesResponse = z.infer<typeof ZonesResponse>

/**
 * `POST /api/integrations` (owner): a credential for Home Assistant's MQTT integration, and a
 * member with its own key held by the hub, without the door right until the owner grants it.
 */
export const IntegrationRequest = z.strictObject({
  name: Name.default('Home Assistant')
})
export type IntegrationRequest = z.input<typeof IntegrationRequest>

/** `PUT /api/integrations/:id/door` (owner): give or withdraw the integration's door right. */
export const IntegrationDoorRequest = z.strictObject({ door: z.boolean() })
export type IntegrationDoorRequest = z.infer<typeof IntegrationDoorRequest>

/** What Home Assistant's MQTT integration is given: shown once (the hub keeps only a hash of the password). */
export const IntegrationCredential = z.strictObject({
  member: Member,
  /** MQTT user name: the member id. */
  username: Id,
  /** MQTT password: the member token. */
  password: MemberToken,
  /** The client id Home Assistant must use (its advanced broker options): the broker refuses any other. */
  clientId: z.string().regex(/^integration-[A-Za-z0-9_-]{1,64}$/),
  /** Home Assistant's discovery prefix the hub publishes under. */
  discoveryPrefix: z.string().min(1).max(100),
  /** Whether the hub publishes discovery at all (`homeAssistant.enabled` in the hub config). */
  enabled: z.boolean(),
  /** The broker Home Assistant connects to: MQTT over TLS (or plain TCP with tls 'off') on this port. */
  mqttPort: z.number().int().min(0).max(65535),
  tls: z.boolean()
})
export type IntegrationCredential = z.infer<typeof IntegrationCredential>

// ---------------------------------------------------------------- Home Assistant: the user's broker from Home settings

/** A PEM certificate (the user's broker's CA), bounded. */
const CaPem = z.string().max(20_000).regex(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, 'the CA is a PEM certificate (-----BEGIN CERTIFICATE-----)')

/**
 * `PUT /api/home-assistant/broker` (owner): the user's broker for Home Assistant
 * (`homeAssistant.broker`), set from Home settings. `password` and `ca`: absent keeps the one
 * set, null removes it. Checked again against the hub's own `HomeAssistantBroker` schema.
 */
export const HomeAssistantBrokerRequest = z.strictObject({
  url: z.string().max(500),
  username: z.string().min(1).max(200).nullable().optional(),
  password: z.string().min(1).max(500).nullable().optional(),
  ca: CaPem.nullable().optional()
})
export type HomeAssistantBrokerRequest = z.infer<typeof HomeAssistantBrokerRequest>

/** `GET /api/home-assistant/broker` (owner): the broker as set (never its password), and how the hub's connection to it is. */
export const HomeAssistantBrokerSettings = z.strictObject({
  broker: z.strictObject({
    url: z.string(),
    username: z.string().nullable(),
    /** Whether a password is set: the password itself is never sent back. */
    password: z.boolean(),
    /** Whether a CA certificate is set. */
    ca: z.boolean(),
    /** Set in Home settings, or in the hub's config file (until Home settings change it). */
    source: z.enum(['settings', 'config'])
  }).nullable(),
  /** Whether Home Assistant is on in the hub's config (`homeAssistant.enabled`): the broker is used only then. */
  enabled: z.boolean(),
  connection: z.strictObject({
    state: z.enum(['connected', 'connecting', 'off']),
    /** Why it cannot connect, in words (never the password). */
    problem: z.string().max(500).nullable()
  })
})
export type HomeAssistantBrokerSettings = z.infer<typeof HomeAssistantBrokerSettings>
