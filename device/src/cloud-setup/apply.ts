/**
 * Reading what exists (`observe`), and carrying a plan out (`apply`), against `CloudApi`: the
 * handful of AWS calls the setup makes, behind an interface so the order of calls can be tested
 * without AWS. `aws.ts` implements it with the AWS SDK v3.
 */
import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { SetupError } from './errors'
import { privateDir, readJson, readText, removeDirIfEmpty, removeFile, writeFileAtomic } from './files'
import { managedPolicyArnOf, parseArn } from './policies'
import {
  FILES, deviceDir, planSetup, planTeardown,
  type CertInfo, type Observed, type Op, type Plan, type SetupRequest, type Step
} from './plan'

export interface Certificate extends CertInfo { pem: string }

/**
 * The AWS calls. Describe/get calls answer null for "does not exist"; every other failure throws
 * (a SetupError when the person can act on it). Calls whose names start with describe, get or
 * list only read.
 */
export interface CloudApi {
  describeEndpoint: (type: 'iot:Data-ATS' | 'iot:CredentialProvider') => Promise<string>
  /** Partition and account of the caller, when the API can tell without a resource (IAM GetUser for an IAM user); null otherwise. */
  getCallerAccount: () => Promise<{ partition: string, account: string } | null>

  describeChannel: (name: string) => Promise<{ arn: string, version?: string, status?: string } | null>
  createChannel: (name: string) => Promise<{ arn: string }>
  deleteChannel: (arn: string, version?: string) => Promise<void>

  describeThing: (name: string) => Promise<{ arn: string, attributes: Record<string, string> } | null>
  createThing: (name: string, attributes: Record<string, string>) => Promise<{ arn: string }>
  deleteThing: (name: string) => Promise<void>
  listThingPrincipals: (thing: string) => Promise<string[]>
  attachThingPrincipal: (thing: string, principal: string) => Promise<void>
  detachThingPrincipal: (thing: string, principal: string) => Promise<void>

  describeCertificate: (id: string) => Promise<Certificate | null>
  createKeysAndCertificate: () => Promise<Certificate & { privateKey: string }>
  deactivateCertificate: (id: string) => Promise<void>
  deleteCertificate: (id: string) => Promise<void>

  getIotPolicy: (name: string) => Promise<{ document: string } | null>
  createIotPolicy: (name: string, document: string) => Promise<void>
  /** A new default version; the oldest other version goes first when five exist. */
  updateIotPolicy: (name: string, document: string) => Promise<void>
  /** Names of the IoT policies attached to a certificate (ARN). */
  listAttachedIotPolicies: (target: string) => Promise<string[]>
  attachIotPolicy: (name: string, target: string) => Promise<void>
  detachIotPolicy: (name: string, target: string) => Promise<void>
  /** With its non-default versions. */
  deleteIotPolicy: (name: string) => Promise<void>

  describeRoleAlias: (alias: string) => Promise<{ arn: string, roleArn: string, durationSeconds: number } | null>
  createRoleAlias: (alias: string, roleArn: string, durationSeconds: number) => Promise<{ arn: string }>
  updateRoleAlias: (alias: string, roleArn: string, durationSeconds: number) => Promise<void>
  deleteRoleAlias: (alias: string) => Promise<void>

  getRole: (name: string) => Promise<{ arn: string, trust: string } | null>
  createRole: (name: string, trust: string, description: string) => Promise<{ arn: string }>
  updateRoleTrust: (name: string, trust: string) => Promise<void>
  getRolePolicy: (role: string, policyName: string) => Promise<string | null>
  putRolePolicy: (role: string, policyName: string, document: string) => Promise<void>
  deleteRolePolicy: (role: string, policyName: string) => Promise<void>
  deleteRole: (name: string) => Promise<void>

  getManagedPolicy: (arn: string) => Promise<{ arn: string, document: string } | null>
  createManagedPolicy: (name: string, document: string, description: string) => Promise<{ arn: string }>
  /** A new default version; the oldest other version goes first when five exist. */
  updateManagedPolicy: (arn: string, document: string) => Promise<void>
  /** Detached from every user, group and role, its non-default versions deleted, then deleted. */
  deleteManagedPolicy: (arn: string) => Promise<void>
}

const samePem = (a: string, b: string): boolean => a.replace(/\r\n/g, '\n').trim() === b.replace(/\r\n/g, '\n').trim()

/** AWS IoT names a certificate by the SHA-256 of its DER form. */
export function certificateIdOf (pem: string): string | null {
  try { return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase() } catch { return null }
}

/** Reads what exists for this doorbell, in AWS and in the output folder. Only read calls. */
export async function observe (api: CloudApi, r: SetupRequest, mode: 'setup' | 'teardown'): Promise<Observed> {
  const n = r.names
  const dir = deviceDir(r)
  const viewerConfig = readJson(join(r.out, FILES.viewerConfig))
  const deviceConfig = readJson(join(dir, FILES.deviceConfig))
  const localFiles = [FILES.cert, FILES.key, FILES.deviceConfig].filter((f) => existsSync(join(dir, f)))

  const endpoints = mode === 'setup'
    ? { iotData: await api.describeEndpoint('iot:Data-ATS'), credentials: await api.describeEndpoint('iot:CredentialProvider') }
    : { iotData: '', credentials: '' }

  const channel = await api.describeChannel(n.channel)
  if (channel?.status === 'DELETING') throw new SetupError(`the signaling channel ${n.channel} is being deleted: run this again in a minute`)
  const thing = await api.describeThing(n.thing)
  const thingCerts: Certificate[] = []
  if (thing !== null) {
    for (const principal of await api.listThingPrincipals(n.thing)) {
      const id = /:cert\/([0-9a-f]+)$/i.exec(principal)?.[1]
      if (id === undefined) continue
      const c = await api.describeCertificate(id)
      if (c !== null) thingCerts.push(c)
    }
  }

  const pem = readText(join(dir, FILES.cert))
  const keyPresent = existsSync(join(dir, FILES.key))
  let localCert: Observed['localCert'] = null
  if (pem !== null && keyPresent) {
    let aws: Certificate | null = thingCerts.find((c) => samePem(c.pem, pem)) ?? null
    const id = certificateIdOf(pem)
    if (aws === null && id !== null) {
      const c = await api.describeCertificate(id)
      if (c !== null && samePem(c.pem, pem)) aws = c
    }
    localCert = { aws: aws === null ? null : { id: aws.id, arn: aws.arn, status: aws.status } }
  } else if (mode === 'teardown' && pem !== null) {
    // The key is gone but the certificate may still be known: teardown removes it all the same.
    const id = certificateIdOf(pem)
    const c = id === null ? null : thingCerts.find((t) => t.id === id) ?? await api.describeCertificate(id)
    if (c !== null && samePem(c.pem, pem)) localCert = { aws: { id: c.id, arn: c.arn, status: c.status } }
  }

  const iotPolicyDoc = await api.getIotPolicy(n.iotPolicy)
  let iotPolicy: Observed['iotPolicy'] = null
  if (iotPolicyDoc !== null) {
    // Which of this doorbell's certificates carry the policy (asked per certificate: ListAttachedPolicies).
    const certArns = new Set(thingCerts.map((c) => c.arn))
    if (localCert?.aws != null) certArns.add(localCert.aws.arn)
    const targets: string[] = []
    for (const arn of certArns) {
      if ((await api.listAttachedIotPolicies(arn)).includes(n.iotPolicy)) targets.push(arn)
    }
    iotPolicy = { document: iotPolicyDoc.document, targets }
  }
  const role = await api.getRole(n.role)
  const rolePolicy = role === null ? null : await api.getRolePolicy(n.role, n.rolePolicy)
  const roleAlias = await api.describeRoleAlias(n.roleAlias)

  let account: Observed['account'] = null
  for (const arn of [channel?.arn, thing?.arn, role?.arn, roleAlias?.arn, ...thingCerts.map((c) => c.arn)]) {
    const p = arn === undefined ? null : parseArn(arn)
    if (p !== null) { account = { partition: p.partition, account: p.account }; break }
  }
  // Nothing of this doorbell exists yet: another doorbell of the home (in the viewer config) has a channel whose ARN tells.
  const others = (viewerConfig as { devices?: Array<{ channelName?: unknown }> } | null)?.devices
  for (const other of Array.isArray(others) ? others : []) {
    if (account !== null || typeof other?.channelName !== 'string' || other.channelName === n.channel) continue
    const p = parseArn((await api.describeChannel(other.channelName))?.arn ?? '')
    if (p !== null) account = { partition: p.partition, account: p.account }
  }
  account ??= await api.getCallerAccount()
  const viewerPolicy = account === null
    ? null
    : await api.getManagedPolicy(managedPolicyArnOf({ ...account, region: r.region }, n.viewerPolicy))

  return {
    account,
    endpoints,
    channel,
    thing,
    thingCerts: thingCerts.map(({ id, arn, status }) => ({ id, arn, status })),
    localCert,
    iotPolicy,
    role,
    rolePolicy,
    roleAlias,
    viewerPolicy,
    viewerConfig,
    deviceConfig,
    localFiles
  }
}

export interface RunOptions {
  mode: 'setup' | 'teardown'
  dryRun: boolean
  /** Told each step as it is done (apply), in order. */
  onApplied?: (step: Step) => void
  /** Told the plan before anything is changed. */
  onPlan?: (plan: Plan) => void
}

/**
 * Observe, plan, and (unless a dry run) apply. When nothing of the doorbell exists yet, the
 * account id is unknown (no STS client here, see README): the signaling channel is made first and
 * its ARN tells the account every other ARN needs, then the rest is planned again.
 */
export async function run (api: CloudApi, r: SetupRequest, o: RunOptions): Promise<{ plan: Plan, applied: Step[] }> {
  const planOf = (observed: Observed): Plan => o.mode === 'setup' ? planSetup(r, observed) : planTeardown(r, observed)
  let plan = planOf(await observe(api, r, o.mode))
  o.onPlan?.(plan)
  if (o.dryRun) return { plan, applied: [] }
  const applied: Step[] = []
  const ctx: ApplyContext = { api, newCertArn: undefined }
  if (o.mode === 'setup' && !plan.complete) {
    const first = plan.steps[0]!
    if (first.op?.kind !== 'createChannel') throw new SetupError('the account id could not be found (no ARN came back)')
    await step(ctx, first, applied, o.onApplied)
    plan = planOf(await observe(api, r, o.mode))
    if (!plan.complete) throw new SetupError(`the account id could not be found in the channel's ARN`)
  }
  for (const s of plan.steps) {
    if (s.op !== undefined) await step(ctx, s, applied, o.onApplied)
  }
  return { plan, applied }
}

interface ApplyContext { api: CloudApi, newCertArn: string | undefined }

async function step (ctx: ApplyContext, s: Step, applied: Step[], onApplied?: (step: Step) => void): Promise<void> {
  try {
    await execute(ctx, s.op!)
  } catch (err) {
    const done = applied.length === 0 ? 'nothing was changed before it' : `${applied.length} change${applied.length === 1 ? ' was' : 's were'} made before it`
    const message = `${s.state} ${s.what} ${s.name} failed: ${(err as Error).message}\n(${done}; each step checks what exists first, so running the command again carries on from here.)`
    throw new SetupError(message, { cause: err })
  }
  applied.push(s)
  onApplied?.(s)
}

async function execute (ctx: ApplyContext, op: Op): Promise<void> {
  const api = ctx.api
  const json = (doc: unknown): string => JSON.stringify(doc)
  switch (op.kind) {
    case 'createChannel': await api.createChannel(op.name); return
    case 'createThing': await api.createThing(op.name, op.attributes); return
    case 'createCertificate': {
      const c = await api.createKeysAndCertificate()
      // Kept at once: AWS never shows the private key again, so a failure further on must not lose it.
      try {
        privateDir(join(op.keyFile, '..'))
        writeFileAtomic(op.keyFile, c.privateKey, 0o600)
        writeFileAtomic(op.certFile, c.pem, 0o600)
      } catch (err) {
        await api.deactivateCertificate(c.id).then(() => api.deleteCertificate(c.id)).catch(() => {})
        throw err
      }
      await api.attachThingPrincipal(op.thing, c.arn)
      ctx.newCertArn = c.arn
      return
    }
    case 'attachCertificate': await api.attachThingPrincipal(op.thing, op.certArn); return
    case 'createRole': await api.createRole(op.name, json(op.trust), op.description); return
    case 'updateRoleTrust': await api.updateRoleTrust(op.name, json(op.trust)); return
    case 'putRolePolicy': await api.putRolePolicy(op.role, op.policyName, json(op.document)); return
    case 'createRoleAlias': await api.createRoleAlias(op.alias, op.roleArn, op.durationSeconds); return
    case 'updateRoleAlias': await api.updateRoleAlias(op.alias, op.roleArn, op.durationSeconds); return
    case 'createIotPolicy': await api.createIotPolicy(op.name, json(op.document)); return
    case 'updateIotPolicy': await api.updateIotPolicy(op.name, json(op.document)); return
    case 'attachIotPolicy': {
      const target = op.certArn === 'new' ? ctx.newCertArn : op.certArn
      if (target === undefined) throw new Error('no certificate was made to attach the policy to')
      await api.attachIotPolicy(op.name, target)
      return
    }
    case 'createViewerPolicy': await api.createManagedPolicy(op.name, json(op.document), op.description); return
    case 'updateViewerPolicy': await api.updateManagedPolicy(op.arn, json(op.document)); return
    case 'writeFile': writeFileAtomic(op.path, op.content, op.mode); return
    case 'detachIotPolicy': await api.detachIotPolicy(op.name, op.certArn); return
    case 'detachCertificate': await api.detachThingPrincipal(op.thing, op.certArn); return
    case 'deactivateCertificate': await api.deactivateCertificate(op.certId); return
    case 'deleteCertificate': await api.deleteCertificate(op.certId); return
    case 'deleteThing': await api.deleteThing(op.name); return
    case 'deleteIotPolicy': await api.deleteIotPolicy(op.name); return
    case 'deleteRoleAlias': await api.deleteRoleAlias(op.alias); return
    case 'deleteRolePolicy': await api.deleteRolePolicy(op.role, op.policyName); return
    case 'deleteRole': await api.deleteRole(op.name); return
    case 'deleteChannel': await api.deleteChannel(op.arn); return
    case 'deleteViewerPolicy': await api.deleteManagedPolicy(op.arn); return
    case 'removeFile': removeFile(op.path); return
    case 'removeDir': removeDirIfEmpty(op.path); return // a folder holding files of someone else's stays
  }
}

