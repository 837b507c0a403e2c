/**
 * The policy documents of the cloud path, as plain JSON objects made by pure functions, so tests
 * can read exactly what a doorbell and a resident are allowed to do.
 *
 *   device (IoT policy, on its certificate)   connect as its own thing; publish under
 *                                              things/<its thing>/; retain its state and presence;
 *                                              trade its certificate for KVS credentials (role alias)
 *   device (IAM role, via the role alias)      master of its own signaling channel, nothing else
 *   residents (managed IAM policy, per home)   subscribe to and receive the home's doorbells'
 *                                              ring/state/presence/calls/snapshot; viewer of their channels
 */
import type { CloudTopicKind } from '@doorbell/core'

export interface PolicyStatement {
  Sid?: string
  Effect: 'Allow' | 'Deny'
  Action: string | string[]
  /** Absent in a trust policy (the role is the resource). */
  Resource?: string | string[]
  Principal?: Record<string, string | string[]>
  Condition?: Record<string, Record<string, string | string[]>>
}
export interface PolicyDocument { Version: '2012-10-17', Statement: PolicyStatement[] }

/** Where ARNs point: taken from an ARN AWS returned (the partition is `aws`, `aws-cn` or `aws-us-gov`). */
export interface ArnContext { partition: string, region: string, account: string }

/** The IoT policy variable for the connected thing; IoT fills it in only for a certificate attached to that thing. */
export const THING_VARIABLE = '${iot:Connection.Thing.ThingName}'
/** Kinds the device publishes; state and presence are retained (the hub retains them on the LAN too). */
export const DEVICE_PUBLISHES: readonly CloudTopicKind[] = ['ring', 'state', 'presence', 'calls', 'snapshot']
export const DEVICE_RETAINS: readonly CloudTopicKind[] = ['state', 'presence']
export const KVS_MASTER_ACTIONS = ['kinesisvideo:DescribeSignalingChannel', 'kinesisvideo:GetSignalingChannelEndpoint', 'kinesisvideo:GetIceServerConfig', 'kinesisvideo:ConnectAsMaster']
export const KVS_VIEWER_ACTIONS = ['kinesisvideo:DescribeSignalingChannel', 'kinesisvideo:GetSignalingChannelEndpoint', 'kinesisvideo:GetIceServerConfig', 'kinesisvideo:ConnectAsViewer']
/** The IoT credentials provider: what the role trusts. */
export const CREDENTIALS_PROVIDER = 'credentials.iot.amazonaws.com'
/** IAM's limit for a managed policy document (white space not counted). */
export const MANAGED_POLICY_MAX = 6144
/** AWS IoT's limit for a policy document. */
export const IOT_POLICY_MAX = 2048

const iotArn = (c: ArnContext, resource: string): string => `arn:${c.partition}:iot:${c.region}:${c.account}:${resource}`

export const roleArnOf = (c: ArnContext, role: string): string => `arn:${c.partition}:iam::${c.account}:role/${role}`
export const roleAliasArnOf = (c: ArnContext, alias: string): string => iotArn(c, `rolealias/${alias}`)
export const managedPolicyArnOf = (c: ArnContext, policy: string): string => `arn:${c.partition}:iam::${c.account}:policy/${policy}`
/** Any channel of that name, whatever its creation stamp (the ARN's last part). */
export const channelArnPattern = (c: ArnContext, channel: string): string => `arn:${c.partition}:kinesisvideo:${c.region}:${c.account}:channel/${channel}/*`

/**
 * MQTT client ids residents' viewers connect to IoT Core with: `viewer-…` (the viewer makes
 * `viewer-<viewerId>-<random>`, viewer/src/lib/paths/cloud/cloudClient.ts). Thing names start with
 * `doorbell-`, so a viewer can never take a doorbell's client id (IoT Core would disconnect the
 * doorbell). The viewer id is not the home's, so the prefix cannot name the home: residents of two
 * homes in one account could use each other's client ids (and only knock each other off).
 */
export const VIEWER_CLIENT_ID_PREFIX = 'viewer-'

/**
 * The doorbell's IoT policy. iot:Connect only as the thing its certificate is attached to, with
 * that thing's name as client id; iot:Publish on its own five topics (things/<thing>/ring, state,
 * presence, calls, snapshot) and, with `seedRingChannel`, the seed's `doorbell/<channel>/ring`, and nothing else; iot:RetainPublish for state
 * and presence; iot:AssumeRoleWithCertificate on its role alias. The doorbell subscribes to
 * nothing over IoT Core (calls arrive over KVS signaling), so it gets no iot:Subscribe or
 * iot:Receive unless `subscribes` names kinds.
 */
export function deviceIotPolicy (c: ArnContext, roleAliasArn: string, o: { subscribes?: readonly CloudTopicKind[], seedRingChannel?: string } = {}): PolicyDocument {
  const own = (kind: string): string => iotArn(c, `topic/things/${THING_VARIABLE}/${kind}`)
  const statements: PolicyStatement[] = [
    {
      Sid: 'ConnectAsItsThing',
      Effect: 'Allow',
      Action: 'iot:Connect',
      Resource: iotArn(c, `client/${THING_VARIABLE}`),
      Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } }
    },
    { Sid: 'PublishItsOwnTopics', Effect: 'Allow', Action: 'iot:Publish', Resource: DEVICE_PUBLISHES.map(own) },
    { Sid: 'RetainItsStateAndPresence', Effect: 'Allow', Action: 'iot:RetainPublish', Resource: DEVICE_RETAINS.map(own) }
  ]
  // `seedTopics`: its rings also on the seed's topic of its own channel, and no other.
  if (o.seedRingChannel !== undefined) statements.push({ Sid: 'PublishTheSeedsRing', Effect: 'Allow', Action: 'iot:Publish', Resource: iotArn(c, `topic/doorbell/${o.seedRingChannel}/ring`) })
  const subscribes = o.subscribes ?? []
  if (subscribes.length > 0) {
    statements.push(
      { Sid: 'SubscribeUnderItsThing', Effect: 'Allow', Action: 'iot:Subscribe', Resource: subscribes.map((k) => iotArn(c, `topicfilter/things/${THING_VARIABLE}/${k}`)) },
      { Sid: 'ReceiveUnderItsThing', Effect: 'Allow', Action: 'iot:Receive', Resource: subscribes.map(own) }
    )
  }
  statements.push({ Sid: 'KvsCredentialsForItsChannel', Effect: 'Allow', Action: 'iot:AssumeRoleWithCertificate', Resource: roleAliasArn })
  return { Version: '2012-10-17', Statement: statements }
}

/**
 * Who may assume the doorbell's KVS role: the IoT credentials provider. No aws:SourceArn condition:
 * whether the credentials provider sets it could not be checked here (no AWS), and a condition on
 * a key the service leaves out refuses every exchange. A role alias pointing at the role can only
 * be made by someone allowed iam:PassRole on it in this account.
 */
export function kvsRoleTrustPolicy (): PolicyDocument {
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: CREDENTIALS_PROVIDER }, Action: 'sts:AssumeRole' }]
  }
}

/** The role's inline policy: master of this one channel (its exact ARN). */
export function kvsMasterPolicy (channelArn: string): PolicyDocument {
  return { Version: '2012-10-17', Statement: [{ Sid: 'MasterOfItsChannel', Effect: 'Allow', Action: [...KVS_MASTER_ACTIONS], Resource: channelArn }] }
}

export interface HomeDevice { thingName: string, channelName: string }

/**
 * The residents' managed policy for one home: connect with a viewer client id (`viewer-*`),
 * subscribe to and receive ring/state/presence/calls/snapshot of each doorbell, be a viewer of each
 * doorbell's channel. Exact topics while they fit in IAM's 6,144 characters; past that (about
 * seven doorbells) one `things/<thing>/*` per doorbell, which is the same set in practice: the
 * doorbell's own policy lets it publish nowhere else and it publishes only those five.
 * Throws when even that does not fit.
 */
export function viewerPolicy (c: ArnContext, devices: readonly HomeDevice[]): PolicyDocument {
  const kinds: readonly string[] = DEVICE_PUBLISHES
  const exact = build(c, devices, kinds)
  if (policySize(exact) <= MANAGED_POLICY_MAX) return exact
  const compact = build(c, devices, ['*'])
  if (policySize(compact) <= MANAGED_POLICY_MAX) return compact
  throw new RangeError(`the viewer policy for ${devices.length} doorbells is ${policySize(compact)} characters; IAM allows ${MANAGED_POLICY_MAX} (use a second home id for the rest)`)
}

function build (c: ArnContext, devices: readonly HomeDevice[], kinds: readonly string[]): PolicyDocument {
  const topics = (type: 'topic' | 'topicfilter'): string[] => devices.flatMap((d) => kinds.map((k) => iotArn(c, `${type}/things/${d.thingName}/${k}`)))
  return {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'ConnectAsViewer', Effect: 'Allow', Action: 'iot:Connect', Resource: iotArn(c, `client/${VIEWER_CLIENT_ID_PREFIX}*`) },
      { Sid: 'SubscribeToTheDoorbells', Effect: 'Allow', Action: 'iot:Subscribe', Resource: topics('topicfilter') },
      { Sid: 'ReceiveFromTheDoorbells', Effect: 'Allow', Action: 'iot:Receive', Resource: topics('topic') },
      { Sid: 'ViewerOfTheDoorbellsChannels', Effect: 'Allow', Action: [...KVS_VIEWER_ACTIONS], Resource: devices.map((d) => channelArnPattern(c, d.channelName)) }
    ]
  }
}

/** What IAM counts: the document's characters without white space. */
export const policySize = (doc: unknown): number => JSON.stringify(doc).length

/**
 * Whether two policy documents say the same thing: key order, white space, a one-element list
 * against its element and the order of a list of names do not matter. Accepts the JSON text AWS
 * returns (IAM's is URL-encoded: decode it first).
 */
export function samePolicy (a: unknown, b: unknown): boolean {
  return canonical(asJson(a)) === canonical(asJson(b))
}

/** Whether two JSON values are equal, key order aside (config files). */
export function sameJson (a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b))
}

function sortKeys (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
  return v
}

function asJson (doc: unknown): unknown {
  if (typeof doc !== 'string') return doc
  try { return JSON.parse(doc) } catch { return doc }
}

function canonical (v: unknown): string {
  return JSON.stringify(normalise(v))
}

function normalise (v: unknown): unknown {
  if (Array.isArray(v)) {
    const items = v.map(normalise)
    if (items.length === 1) return items[0]
    return items.every((i) => typeof i === 'string') ? [...items as string[]].sort() : items
  }
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, normalise((v as Record<string, unknown>)[k])]))
  }
  return v
}

/** Parses an ARN's partition, region and account (`arn:partition:service:region:account:resource`). */
export function parseArn (arn: string): { partition: string, service: string, region: string, account: string, resource: string } | null {
  const m = /^arn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]*):(\d{12}):(.+)$/.exec(arn)
  if (m === null) return null
  return { partition: m[1]!, service: m[2]!, region: m[3]!, account: m[4]!, resource: m[5]! }
}
