/**
 * The plan: what a doorbell's cloud resources should be, against what AWS and the output folder
 * hold now, as an ordered list of steps. Pure: `observe` (apply.ts) reads, this decides, `apply`
 * carries the steps out. A dry run prints the plan and stops.
 */
import { join, relative } from 'node:path'
import type { z } from 'zod'
import { DeviceCloudConfig, Id, ViewerCloudConfig, type CloudDevice } from '@doorbell/core'
import { SetupError } from './errors'
import type { ResourceNames } from './names'
import { thingOf } from './names'
import {
  deviceIotPolicy, kvsMasterPolicy, kvsRoleTrustPolicy, managedPolicyArnOf, roleAliasArnOf, roleArnOf,
  sameJson, samePolicy, viewerPolicy, IOT_POLICY_MAX, policySize, type ArnContext, type PolicyDocument
} from './policies'

/** Seconds the KVS credentials got with the certificate last (the device renews them). */
export const CREDENTIAL_DURATION_SECONDS = 3600
/** Attributes on the thing, so a name that two homes' ids could both make is caught. */
export const THING_ATTRIBUTES = (n: ResourceNames): Record<string, string> => ({ doorbellHome: n.home, doorbellDevice: n.device })
/** Stands for the account id in a dry run on an account where nothing exists yet. */
export const UNKNOWN_ACCOUNT = '<account>'

export const FILES = {
  cert: 'certificate.pem',
  key: 'private-key.pem',
  deviceConfig: 'device-cloud.json',
  viewerConfig: 'viewer-cloud.json'
} as const

/** What the person asked for. */
export interface SetupRequest {
  names: ResourceNames
  region: string
  /** The output folder, absolute. */
  out: string
  /** KVS control-plane override (stand-ins), https:// with no path; written to both configs. */
  kvsEndpoint?: string
  /** CA bundle the device should trust for IoT Core and KVS (stand-ins), absolute. */
  caFile?: string
  /** IoT WebSocket URL override for viewers (stand-ins). */
  iotWssUrl?: string
  /** Rings also on the seed's `doorbell/<channel>/ring`: the policy allows it, the device config says `seedTopics`. */
  seedTopics?: boolean
}

export interface CertInfo { id: string, arn: string, status: string }

/** What exists now, as read by `observe`. null: absent. */
export interface Observed {
  /** Partition and account, from any ARN AWS returned; null when nothing told them yet. */
  account: { partition: string, account: string } | null
  endpoints: { iotData: string, credentials: string }
  channel: { arn: string, version?: string } | null
  thing: { arn: string, attributes: Record<string, string> } | null
  /** Certificates attached to the thing. */
  thingCerts: CertInfo[]
  /** The certificate and key in the output folder (null: either file missing), and which certificate that is in AWS (null: unknown there). */
  localCert: { aws: CertInfo | null } | null
  /** targets: which of the doorbell's certificates (ARNs) carry it. */
  iotPolicy: { document: string, targets: string[] } | null
  role: { arn: string, trust: string } | null
  /** The role's inline policy document (decoded JSON text). */
  rolePolicy: string | null
  roleAlias: { arn: string, roleArn: string, durationSeconds: number } | null
  viewerPolicy: { arn: string, document: string } | null
  /** The files now in the output folder (parsed JSON; a file that is not JSON is an error before this). */
  viewerConfig: unknown
  deviceConfig: unknown
  /** Which of this device's files exist (for teardown). */
  localFiles: string[]
}

export type Op =
  | { kind: 'createChannel', name: string }
  | { kind: 'createThing', name: string, attributes: Record<string, string> }
  | { kind: 'createCertificate', thing: string, certFile: string, keyFile: string }
  | { kind: 'attachCertificate', thing: string, certArn: string }
  | { kind: 'createRole', name: string, trust: PolicyDocument, description: string }
  | { kind: 'updateRoleTrust', name: string, trust: PolicyDocument }
  | { kind: 'putRolePolicy', role: string, policyName: string, document: PolicyDocument }
  | { kind: 'createRoleAlias', alias: string, roleArn: string, durationSeconds: number }
  | { kind: 'updateRoleAlias', alias: string, roleArn: string, durationSeconds: number }
  | { kind: 'createIotPolicy', name: string, document: PolicyDocument }
  | { kind: 'updateIotPolicy', name: string, document: PolicyDocument }
  /** certArn 'new': the certificate a createCertificate step of this plan made. */
  | { kind: 'attachIotPolicy', name: string, certArn: string }
  | { kind: 'createViewerPolicy', name: string, document: PolicyDocument, description: string }
  | { kind: 'updateViewerPolicy', arn: string, document: PolicyDocument }
  | { kind: 'writeFile', path: string, content: string, mode: number }
  | { kind: 'detachIotPolicy', name: string, certArn: string }
  | { kind: 'detachCertificate', thing: string, certArn: string }
  | { kind: 'deactivateCertificate', certId: string }
  | { kind: 'deleteCertificate', certId: string }
  | { kind: 'deleteThing', name: string }
  | { kind: 'deleteIotPolicy', name: string }
  | { kind: 'deleteRoleAlias', alias: string }
  | { kind: 'deleteRolePolicy', role: string, policyName: string }
  | { kind: 'deleteRole', name: string }
  | { kind: 'deleteChannel', arn: string, name: string }
  | { kind: 'deleteViewerPolicy', arn: string }
  | { kind: 'removeFile', path: string }
  | { kind: 'removeDir', path: string }

export type StepState = 'create' | 'update' | 'exists' | 'write' | 'unchanged' | 'delete' | 'absent' | 'remove' | 'keep'

export interface Step {
  state: StepState
  /** What kind of thing, in words: "KVS signaling channel". */
  what: string
  name: string
  /** Why an update, or what a create involves. */
  why?: string
  /** What apply does; none for exists/unchanged/absent/keep. */
  op?: Op
}

export interface Plan {
  mode: 'setup' | 'teardown'
  request: SetupRequest
  steps: Step[]
  /** Things the person should know (a certificate held elsewhere, a placeholder account). */
  notes: string[]
  /** The device's cloud config as it will be (setup). */
  deviceConfig?: z.input<typeof DeviceCloudConfig>
  /** The viewer config as it will be; null after a teardown that removed the last doorbell; undefined when a teardown had none to rewrite. */
  viewerConfig?: z.input<typeof ViewerCloudConfig> | null
  viewerPolicyArn?: string
  /** Whether every ARN in the plan is known (false in a dry run before anything exists). */
  complete: boolean
}

/** Whether apply would change anything. */
export const changes = (plan: Plan): Step[] => plan.steps.filter((s) => s.op !== undefined)

export const deviceDir = (r: SetupRequest): string => join(r.out, r.names.device)

function arnContext (r: SetupRequest, o: Observed): ArnContext {
  return { partition: o.account?.partition ?? 'aws', region: r.region, account: o.account?.account ?? UNKNOWN_ACCOUNT }
}

/** The steps that make the doorbell's resources what they should be. Throws SetupError when they cannot be (a name taken by another home, a viewer config of another home or region). */
export function planSetup (r: SetupRequest, o: Observed): Plan {
  const n = r.names
  const ctx = arnContext(r, o)
  const steps: Step[] = []
  const notes: string[] = []
  const complete = o.account !== null
  if (!complete) notes.push('The account id is not known until the first resource exists (a run makes the channel first and reads it from its ARN); policy ARNs show <account> until then.')

  // 1. The signaling channel: the device is its master.
  const channelArn = o.channel?.arn ?? `arn:${ctx.partition}:kinesisvideo:${r.region}:${ctx.account}:channel/${n.channel}/<created>`
  steps.push(o.channel === null
    ? { state: 'create', what: 'KVS signaling channel', name: n.channel, why: 'SINGLE_MASTER', op: { kind: 'createChannel', name: n.channel } }
    : { state: 'exists', what: 'KVS signaling channel', name: n.channel })

  // 2. The thing, its certificate and key.
  const attributes = THING_ATTRIBUTES(n)
  if (o.thing === null) {
    steps.push({ state: 'create', what: 'IoT thing', name: n.thing, op: { kind: 'createThing', name: n.thing, attributes } })
  } else {
    const a = o.thing.attributes
    if ((a.doorbellHome !== undefined && a.doorbellHome !== n.home) || (a.doorbellDevice !== undefined && a.doorbellDevice !== n.device)) {
      throw new SetupError(`the IoT thing ${n.thing} belongs to device ${a.doorbellDevice ?? '?'} of home ${a.doorbellHome ?? '?'}, not ${n.device} of ${n.home} (the names run together): pick ids that do not`)
    }
    steps.push({ state: 'exists', what: 'IoT thing', name: n.thing })
  }
  const dir = deviceDir(r)
  const certFile = join(dir, FILES.cert)
  const keyFile = join(dir, FILES.key)
  const attachedArns = new Set(o.thingCerts.map((c) => c.arn))
  const local = o.localCert?.aws ?? null
  let certArn: string
  if (local !== null && local.status === 'ACTIVE' && attachedArns.has(local.arn)) {
    certArn = local.arn
    steps.push({ state: 'exists', what: 'certificate and key', name: local.id, why: `in ${show(dir)}, attached to the thing` })
  } else if (local !== null && local.status === 'ACTIVE') {
    certArn = local.arn
    steps.push({ state: 'update', what: 'certificate and key', name: local.id, why: `in ${show(dir)}, not attached to the thing: attach it`, op: { kind: 'attachCertificate', thing: n.thing, certArn: local.arn } })
  } else {
    certArn = 'new'
    const why = o.localCert === null
      ? `new keys (CreateKeysAndCertificate), kept in ${show(dir)} (0600), attached to the thing`
      : `the one in ${show(dir)} is ${local === null ? 'unknown to AWS' : local.status.toLowerCase()}: new keys replace it`
    steps.push({ state: 'create', what: 'certificate and key', name: n.thing, why, op: { kind: 'createCertificate', thing: n.thing, certFile, keyFile } })
  }
  for (const c of o.thingCerts) {
    if (c.arn !== certArn) notes.push(`Certificate ${c.id} (${c.status.toLowerCase()}) is attached to ${n.thing} but not held in ${show(dir)} (another copy of this doorbell?): left as it is; --teardown removes it.`)
  }

  // 4. The KVS role (made before the IoT policy, which names its alias).
  const roleArn = o.role?.arn ?? roleArnOf(ctx, n.role)
  const roleAliasArn = o.roleAlias?.arn ?? roleAliasArnOf(ctx, n.roleAlias)
  const trust = kvsRoleTrustPolicy()
  if (o.role === null) {
    steps.push({ state: 'create', what: 'IAM role', name: n.role, why: `trusted by the IoT credentials provider`, op: { kind: 'createRole', name: n.role, trust, description: `KVS master of ${n.channel}, for doorbell ${n.device} of home ${n.home} (via IoT role alias ${n.roleAlias})` } })
  } else if (!samePolicy(o.role.trust, trust)) {
    steps.push({ state: 'update', what: 'IAM role trust policy', name: n.role, why: 'trust policy differs: UpdateAssumeRolePolicy', op: { kind: 'updateRoleTrust', name: n.role, trust } })
  } else {
    steps.push({ state: 'exists', what: 'IAM role', name: n.role })
  }
  const master = kvsMasterPolicy(channelArn)
  if (o.role === null || o.rolePolicy === null) {
    steps.push({ state: 'create', what: 'inline role policy', name: `${n.role}/${n.rolePolicy}`, why: 'KVS master of this channel only', op: { kind: 'putRolePolicy', role: n.role, policyName: n.rolePolicy, document: master } })
  } else if (!samePolicy(o.rolePolicy, master)) {
    steps.push({ state: 'update', what: 'inline role policy', name: `${n.role}/${n.rolePolicy}`, why: 'document differs: PutRolePolicy', op: { kind: 'putRolePolicy', role: n.role, policyName: n.rolePolicy, document: master } })
  } else {
    steps.push({ state: 'exists', what: 'inline role policy', name: `${n.role}/${n.rolePolicy}` })
  }
  if (o.roleAlias === null) {
    steps.push({ state: 'create', what: 'IoT role alias', name: n.roleAlias, why: `→ ${n.role}, ${CREDENTIAL_DURATION_SECONDS} s`, op: { kind: 'createRoleAlias', alias: n.roleAlias, roleArn, durationSeconds: CREDENTIAL_DURATION_SECONDS } })
  } else if (o.roleAlias.roleArn !== roleArn || o.roleAlias.durationSeconds !== CREDENTIAL_DURATION_SECONDS) {
    steps.push({ state: 'update', what: 'IoT role alias', name: n.roleAlias, why: `points at ${o.roleAlias.roleArn} for ${o.roleAlias.durationSeconds} s: UpdateRoleAlias`, op: { kind: 'updateRoleAlias', alias: n.roleAlias, roleArn, durationSeconds: CREDENTIAL_DURATION_SECONDS } })
  } else {
    steps.push({ state: 'exists', what: 'IoT role alias', name: n.roleAlias })
  }

  // 3. The thing's IoT policy, on its certificate.
  const iotDoc = deviceIotPolicy(ctx, roleAliasArn, r.seedTopics === true ? { seedRingChannel: n.channel } : {})
  if (policySize(iotDoc) > IOT_POLICY_MAX) throw new SetupError(`the IoT policy would be ${policySize(iotDoc)} characters; AWS IoT allows ${IOT_POLICY_MAX}`)
  if (o.iotPolicy === null) {
    steps.push({ state: 'create', what: 'IoT policy', name: n.iotPolicy, why: 'connect as its thing, publish under it, KVS credentials', op: { kind: 'createIotPolicy', name: n.iotPolicy, document: iotDoc } })
  } else if (!samePolicy(o.iotPolicy.document, iotDoc)) {
    steps.push({ state: 'update', what: 'IoT policy', name: n.iotPolicy, why: 'document differs: CreatePolicyVersion (new default)', op: { kind: 'updateIotPolicy', name: n.iotPolicy, document: iotDoc } })
  } else {
    steps.push({ state: 'exists', what: 'IoT policy', name: n.iotPolicy })
  }
  if (certArn !== 'new' && o.iotPolicy !== null && o.iotPolicy.targets.includes(certArn)) {
    steps.push({ state: 'exists', what: 'IoT policy attachment', name: `${n.iotPolicy} → certificate` })
  } else {
    steps.push({ state: 'create', what: 'IoT policy attachment', name: `${n.iotPolicy} → certificate`, op: { kind: 'attachIotPolicy', name: n.iotPolicy, certArn } })
  }

  // 5. The residents' policy, over every doorbell of the home set up so far.
  const device: CloudDevice = { deviceId: n.device, thingName: n.thing, channelName: n.channel }
  const existingViewer = readViewerConfig(r, o.viewerConfig)
  // Doorbells the residents' policy covers that the viewer config lost (a new --out, another machine) stay in both.
  const recovered = devicesInPolicy(o.viewerPolicy?.document, n.home).filter((d) => d.deviceId !== n.device && existingViewer?.devices.some((e) => e.deviceId === d.deviceId) !== true)
  if (recovered.length > 0) notes.push(`The residents' policy covers ${recovered.map((d) => d.deviceId).join(', ')}, which ${show(join(r.out, FILES.viewerConfig))} did not list: kept, and added to it.`)
  const devices = upsert([...existingViewer?.devices ?? [], ...recovered], device)
  const viewerArn = o.viewerPolicy?.arn ?? managedPolicyArnOf(ctx, n.viewerPolicy)
  let viewerDoc: PolicyDocument
  try {
    viewerDoc = viewerPolicy(ctx, devices)
  } catch (err) {
    throw new SetupError((err as Error).message)
  }
  if (o.viewerPolicy === null) {
    steps.push({ state: 'create', what: 'IAM managed policy (residents)', name: n.viewerPolicy, why: `${devices.length} doorbell${devices.length === 1 ? '' : 's'} of home ${n.home}`, op: { kind: 'createViewerPolicy', name: n.viewerPolicy, document: viewerDoc, description: `Residents of doorbell home ${n.home}: ring events and KVS viewer of its doorbells` } })
  } else if (!samePolicy(o.viewerPolicy.document, viewerDoc)) {
    steps.push({ state: 'update', what: 'IAM managed policy (residents)', name: n.viewerPolicy, why: `now ${devices.length} doorbell${devices.length === 1 ? '' : 's'}: CreatePolicyVersion (new default)`, op: { kind: 'updateViewerPolicy', arn: viewerArn, document: viewerDoc } })
  } else {
    steps.push({ state: 'exists', what: 'IAM managed policy (residents)', name: n.viewerPolicy })
  }

  // 6. The two config files, checked by their schemas, written last.
  const deviceConfig = checked(DeviceCloudConfig, {
    region: r.region,
    thingName: n.thing,
    iotEndpoint: o.endpoints.iotData,
    certFile,
    keyFile,
    ...(r.caFile !== undefined ? { caFile: r.caFile } : {}),
    credentialsEndpoint: o.endpoints.credentials,
    roleAlias: n.roleAlias,
    channelName: n.channel,
    ...(r.kvsEndpoint !== undefined ? { kvsEndpoint: r.kvsEndpoint } : {}),
    ...(r.seedTopics === true ? { seedTopics: true } : {})
  }, 'the device config')
  const iotWssUrl = r.iotWssUrl ?? existingViewer?.iotWssUrl
  const viewerConfig = checked(ViewerCloudConfig, {
    region: r.region,
    iotEndpoint: o.endpoints.iotData,
    ...(iotWssUrl !== undefined ? { iotWssUrl } : {}),
    ...(r.kvsEndpoint !== undefined ? { kvsEndpoint: r.kvsEndpoint } : {}),
    devices
  }, 'the viewer config')
  steps.push(fileStep(join(dir, FILES.deviceConfig), deviceConfig, o.deviceConfig, 0o600, 'device config'))
  steps.push(fileStep(join(r.out, FILES.viewerConfig), viewerConfig, o.viewerConfig, 0o644, 'viewer config'))

  return { mode: 'setup', request: r, steps, notes, deviceConfig, viewerConfig, viewerPolicyArn: viewerArn, complete }
}

/** The steps that remove what setup made, in an order AWS accepts. */
export function planTeardown (r: SetupRequest, o: Observed): Plan {
  const n = r.names
  const ctx = arnContext(r, o)
  const steps: Step[] = []
  const notes: string[] = []

  // Certificates: the thing's, and the local one if AWS knows it but it is attached elsewhere or nowhere.
  const certs = [...o.thingCerts]
  const local = o.localCert?.aws ?? null
  if (local !== null && !certs.some((c) => c.arn === local.arn)) certs.push(local)
  if (o.thing !== null) {
    const a = o.thing.attributes
    if ((a.doorbellHome !== undefined && a.doorbellHome !== n.home) || (a.doorbellDevice !== undefined && a.doorbellDevice !== n.device)) {
      throw new SetupError(`the IoT thing ${n.thing} belongs to device ${a.doorbellDevice ?? '?'} of home ${a.doorbellHome ?? '?'}, not ${n.device} of ${n.home}: nothing removed`)
    }
  }
  if (certs.length === 0) steps.push({ state: 'absent', what: 'certificate', name: n.thing })
  for (const c of certs) {
    if (o.iotPolicy?.targets.includes(c.arn) === true) steps.push({ state: 'delete', what: 'IoT policy attachment', name: `${n.iotPolicy} → ${c.id}`, op: { kind: 'detachIotPolicy', name: n.iotPolicy, certArn: c.arn } })
    if (o.thing !== null && o.thingCerts.some((t) => t.arn === c.arn)) steps.push({ state: 'delete', what: 'thing principal', name: `${n.thing} → ${c.id}`, op: { kind: 'detachCertificate', thing: n.thing, certArn: c.arn } })
    if (c.status === 'ACTIVE') steps.push({ state: 'update', what: 'certificate', name: c.id, why: 'set INACTIVE', op: { kind: 'deactivateCertificate', certId: c.id } })
    steps.push({ state: 'delete', what: 'certificate', name: c.id, op: { kind: 'deleteCertificate', certId: c.id } })
  }
  steps.push(o.thing === null
    ? { state: 'absent', what: 'IoT thing', name: n.thing }
    : { state: 'delete', what: 'IoT thing', name: n.thing, op: { kind: 'deleteThing', name: n.thing } })
  steps.push(o.iotPolicy === null
    ? { state: 'absent', what: 'IoT policy', name: n.iotPolicy }
    : { state: 'delete', what: 'IoT policy', name: n.iotPolicy, why: 'with its older versions', op: { kind: 'deleteIotPolicy', name: n.iotPolicy } })
  steps.push(o.roleAlias === null
    ? { state: 'absent', what: 'IoT role alias', name: n.roleAlias }
    : { state: 'delete', what: 'IoT role alias', name: n.roleAlias, op: { kind: 'deleteRoleAlias', alias: n.roleAlias } })
  if (o.role !== null && o.rolePolicy !== null) {
    steps.push({ state: 'delete', what: 'inline role policy', name: `${n.role}/${n.rolePolicy}`, op: { kind: 'deleteRolePolicy', role: n.role, policyName: n.rolePolicy } })
  } else {
    steps.push({ state: 'absent', what: 'inline role policy', name: `${n.role}/${n.rolePolicy}` })
  }
  steps.push(o.role === null
    ? { state: 'absent', what: 'IAM role', name: n.role }
    : { state: 'delete', what: 'IAM role', name: n.role, op: { kind: 'deleteRole', name: n.role } })
  steps.push(o.channel === null
    ? { state: 'absent', what: 'KVS signaling channel', name: n.channel }
    : { state: 'delete', what: 'KVS signaling channel', name: n.channel, op: { kind: 'deleteChannel', arn: o.channel.arn, name: n.channel } })

  // The residents' policy goes with the home's last doorbell; until then it loses this one.
  const existingViewer = readViewerConfig(r, o.viewerConfig)
  const listed = (existingViewer?.devices ?? []).filter((d) => d.deviceId !== n.device)
  // A doorbell the residents' policy covers counts even when the viewer config here lost it: the policy stays for it.
  const remaining = [...listed, ...devicesInPolicy(o.viewerPolicy?.document, n.home).filter((d) => d.deviceId !== n.device && !listed.some((l) => l.deviceId === d.deviceId))]
  const viewerPath = join(r.out, FILES.viewerConfig)
  let viewerConfig: z.input<typeof ViewerCloudConfig> | null | undefined = null
  if (remaining.length === 0) {
    steps.push(o.viewerPolicy === null
      ? { state: 'absent', what: 'IAM managed policy (residents)', name: n.viewerPolicy }
      : { state: 'delete', what: 'IAM managed policy (residents)', name: n.viewerPolicy, why: 'no other doorbell of the home is left: detached from residents, older versions deleted', op: { kind: 'deleteViewerPolicy', arn: o.viewerPolicy.arn } })
  } else {
    const doc = viewerPolicy(ctx, remaining)
    const others = `${remaining.length} other doorbell${remaining.length === 1 ? '' : 's'} remain${remaining.length === 1 ? 's' : ''}`
    if (o.viewerPolicy === null) {
      notes.push(`The residents' policy ${n.viewerPolicy} does not exist, though ${others}: run the setup of one of them to make it.`)
      steps.push({ state: 'absent', what: 'IAM managed policy (residents)', name: n.viewerPolicy })
    } else if (samePolicy(o.viewerPolicy.document, doc)) {
      steps.push({ state: 'keep', what: 'IAM managed policy (residents)', name: n.viewerPolicy, why: others })
    } else {
      steps.push({ state: 'update', what: 'IAM managed policy (residents)', name: n.viewerPolicy, why: `${others}: new version without this one`, op: { kind: 'updateViewerPolicy', arn: o.viewerPolicy.arn, document: doc } })
    }
    // Without a viewer config here there is none to rewrite (it needs the IoT endpoint, which a teardown does not ask for).
    viewerConfig = existingViewer === null ? undefined : checked(ViewerCloudConfig, { ...existingViewer, devices: remaining }, 'the viewer config')
  }

  // Local files last.
  const dir = deviceDir(r)
  for (const f of o.localFiles) steps.push({ state: 'remove', what: 'file', name: show(join(dir, f)), op: { kind: 'removeFile', path: join(dir, f) } })
  if (o.localFiles.length > 0) steps.push({ state: 'remove', what: 'folder', name: show(dir), op: { kind: 'removeDir', path: dir } })
  if (viewerConfig === null) {
    if (existingViewer !== null) steps.push({ state: 'remove', what: 'viewer config', name: show(viewerPath), op: { kind: 'removeFile', path: viewerPath } })
  } else if (viewerConfig !== undefined && !sameJson(viewerConfig, o.viewerConfig)) {
    steps.push({ state: 'write', what: 'viewer config', name: show(viewerPath), why: `without ${n.device}`, op: { kind: 'writeFile', path: viewerPath, content: jsonText(viewerConfig), mode: 0o644 } })
  }
  return { mode: 'teardown', request: r, steps, notes, viewerConfig, viewerPolicyArn: o.viewerPolicy?.arn ?? managedPolicyArnOf(ctx, n.viewerPolicy), complete: o.account !== null }
}

/** The viewer config now in the output folder, checked: of this region, and only this home's doorbells. */
function readViewerConfig (r: SetupRequest, input: unknown): ViewerCloudConfig | null {
  if (input === null || input === undefined) return null
  const path = show(join(r.out, FILES.viewerConfig))
  const parsed = ViewerCloudConfig.safeParse(input)
  if (!parsed.success) throw new SetupError(`${path} is not a viewer config (${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}): fix or remove it`)
  if (parsed.data.region !== r.region) throw new SetupError(`${path} is for region ${parsed.data.region}, not ${r.region}: the doorbells of one home share a region (use --region ${parsed.data.region}, or another --out)`)
  const foreign = parsed.data.devices.filter((d) => d.thingName !== thingOf(r.names.home, d.deviceId))
  if (foreign.length > 0) throw new SetupError(`${path} lists ${foreign.map((d) => d.thingName).join(', ')}, not doorbells of home ${r.names.home}: use one --out folder per home`)
  return parsed.data
}

function upsert (devices: readonly CloudDevice[], device: CloudDevice): CloudDevice[] {
  const at = devices.findIndex((d) => d.deviceId === device.deviceId)
  if (at < 0) return [...devices, device]
  return devices.map((d, i) => i === at ? device : d)
}

/** The doorbells of `home` a residents' policy document covers (its things' topics; channel = thing by our names). */
export function devicesInPolicy (document: string | undefined, home: string): CloudDevice[] {
  if (document === undefined) return []
  const prefix = `doorbell-${home}-`
  const things = new Set([...document.matchAll(/topic(?:filter)?\/things\/([a-zA-Z0-9:_-]+)\//g)].map((m) => m[1]!))
  return [...things]
    .filter((t) => t.startsWith(prefix) && Id.safeParse(t.slice(prefix.length)).success)
    .map((t) => ({ deviceId: t.slice(prefix.length), thingName: t, channelName: t }))
}

function checked<O, I> (schema: z.ZodType<O, I>, value: I, what: string): I {
  const r = schema.safeParse(value)
  if (!r.success) throw new SetupError(`${what} would not be valid: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`)
  // The value as given, without defaults filled in: that is what is written and pasted.
  return value
}

function fileStep (path: string, value: unknown, existing: unknown, mode: number, what: string): Step {
  if (sameJson(value, existing)) return { state: 'unchanged', what, name: show(path) }
  return { state: 'write', what, name: show(path), op: { kind: 'writeFile', path, content: jsonText(value), mode } }
}

export const jsonText = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'

/** A path as the person typed it, more or less: relative to the working folder when inside it. */
export function show (path: string): string {
  const rel = relative(process.cwd(), path)
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel
}

const MARK: Record<StepState, string> = {
  create: '+ create', update: '~ update', exists: '= exists', write: '+ write', unchanged: '= same',
  delete: '- delete', absent: '· absent', remove: '- remove', keep: '= keep'
}

/** The plan as lines for the terminal; with `documents`, each policy that would be written. */
export function formatPlan (plan: Plan, o: { documents?: boolean, dryRun?: boolean } = {}): string {
  const r = plan.request
  const lines: string[] = []
  const verb = plan.mode === 'setup' ? 'Cloud setup' : 'Cloud teardown'
  lines.push(`${verb} of doorbell ${r.names.device} of home ${r.names.home} in ${r.region}${o.dryRun === true ? ' (dry run: nothing is changed)' : ''}:`)
  const width = Math.max(...plan.steps.map((s) => s.what.length))
  for (const s of plan.steps) {
    lines.push(`  ${MARK[s.state].padEnd(8)}  ${s.what.padEnd(width)}  ${s.name}${s.why !== undefined ? `  (${s.why})` : ''}`)
    if (o.documents === true && s.op !== undefined) {
      const doc = documentOf(s.op)
      if (doc !== undefined) lines.push(...JSON.stringify(doc, null, 2).split('\n').map((l) => `      ${l}`))
    }
  }
  const n = changes(plan).length
  lines.push(n === 0 ? 'Nothing to change.' : `${n} change${n === 1 ? '' : 's'}${o.dryRun === true ? ' would be made' : ''}.`)
  for (const note of plan.notes) lines.push(`Note: ${note}`)
  return lines.join('\n')
}

function documentOf (op: Op): unknown {
  switch (op.kind) {
    case 'createRole': case 'updateRoleTrust': return op.trust
    case 'putRolePolicy': case 'createIotPolicy': case 'updateIotPolicy': case 'createViewerPolicy': case 'updateViewerPolicy': return op.document
    default: return undefined
  }
}

