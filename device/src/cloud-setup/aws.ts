/**
 * `CloudApi` with the AWS SDK v3: KVS (signaling channel), IoT (thing, certificate, policy, role
 * alias, endpoints) and IAM (role, managed policy). Credentials come from the SDK's default chain
 * (AWS_ACCESS_KEY_ID…, AWS_PROFILE, SSO, instance role). Endpoints: given here, else the SDK's own
 * AWS_ENDPOINT_URL_KINESIS_VIDEO / _IOT / _IAM (or AWS_ENDPOINT_URL), else AWS.
 *
 * Every command passes one middleware that can record it (tests count calls) and, in a dry run,
 * refuses any command that is not a Describe, Get or List before it is sent.
 */
import {
  IAMClient, type IAMClientConfig, CreatePolicyCommand, CreatePolicyVersionCommand, CreateRoleCommand, DeletePolicyCommand, DeletePolicyVersionCommand,
  DeleteRoleCommand, DeleteRolePolicyCommand, DetachGroupPolicyCommand, DetachRolePolicyCommand, DetachUserPolicyCommand,
  GetPolicyCommand, GetPolicyVersionCommand, GetRoleCommand, GetRolePolicyCommand, GetUserCommand, ListEntitiesForPolicyCommand,
  ListPolicyVersionsCommand, PutRolePolicyCommand, UpdateAssumeRolePolicyCommand
} from '@aws-sdk/client-iam'
import {
  IoTClient, AttachPolicyCommand, AttachThingPrincipalCommand, CreateKeysAndCertificateCommand, CreatePolicyCommand as CreateIotPolicyCommand,
  CreatePolicyVersionCommand as CreateIotPolicyVersionCommand, CreateRoleAliasCommand, CreateThingCommand, DeleteCertificateCommand,
  DeletePolicyCommand as DeleteIotPolicyCommand, DeletePolicyVersionCommand as DeleteIotPolicyVersionCommand, DeleteRoleAliasCommand,
  DeleteThingCommand, DescribeCertificateCommand, DescribeEndpointCommand, DescribeRoleAliasCommand, DescribeThingCommand, DetachPolicyCommand,
  DetachThingPrincipalCommand, GetPolicyCommand as GetIotPolicyCommand, ListPolicyVersionsCommand as ListIotPolicyVersionsCommand,
  ListAttachedPoliciesCommand, ListThingPrincipalsCommand, UpdateCertificateCommand, UpdateRoleAliasCommand
} from '@aws-sdk/client-iot'
import { KinesisVideoClient, CreateSignalingChannelCommand, DeleteSignalingChannelCommand, DescribeSignalingChannelCommand } from '@aws-sdk/client-kinesis-video'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { CloudApi, Certificate } from './apply'
import { SetupError } from './errors'
import { parseArn } from './policies'

export type Service = 'kinesisvideo' | 'iot' | 'iam'

export interface AwsOptions {
  region: string
  /** Default: the SDK's default chain (env, profile, SSO, instance role). */
  credentials?: IAMClientConfig['credentials']
  /** Endpoint overrides (stand-ins); undefined: the SDK's env/config, else AWS. */
  endpoints?: Partial<Record<Service, string>>
  /** Refuse every command but Describe*, Get* and List*, before it is sent. */
  readOnly?: boolean
  /** Told every command before it is sent (after the read-only check). */
  onCommand?: (service: Service, command: string) => void
  /** How long to wait between tries when AWS has not caught up with a detach yet (ms). */
  conflictRetryMs?: number
}

/** Commands that only read: what a dry run may send. */
export const isReadCommand = (command: string): boolean => /^(Describe|Get|List)/.test(command)

interface Clients { kvs: KinesisVideoClient, iot: IoTClient, iam: IAMClient }

export function awsClients (o: AwsOptions): Clients {
  const requestHandler = new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 30_000 })
  const common = { region: o.region, requestHandler, maxAttempts: 3, ...(o.credentials !== undefined ? { credentials: o.credentials } : {}) }
  const at = (s: Service): { endpoint?: string } => o.endpoints?.[s] !== undefined ? { endpoint: o.endpoints[s] } : {}
  const clients = {
    kvs: new KinesisVideoClient({ ...common, ...at('kinesisvideo') }),
    iot: new IoTClient({ ...common, ...at('iot') }),
    iam: new IAMClient({ ...common, ...at('iam') })
  }
  const guard = (service: Service) => (next: (args: any) => Promise<any>, context: { commandName?: string }) => async (args: any) => {
    const command = (context.commandName ?? '?').replace(/Command$/, '')
    if (o.readOnly === true && !isReadCommand(command)) throw new SetupError(`dry run: ${service} ${command} would change something and was not sent`)
    o.onCommand?.(service, command)
    return await next(args)
  }
  clients.kvs.middlewareStack.add(guard('kinesisvideo'), { step: 'initialize', name: 'doorbellSetupGuard' })
  clients.iot.middlewareStack.add(guard('iot'), { step: 'initialize', name: 'doorbellSetupGuard' })
  clients.iam.middlewareStack.add(guard('iam'), { step: 'initialize', name: 'doorbellSetupGuard' })
  return clients
}

interface AwsError { name?: string, Code?: string, message?: string, code?: string, $metadata?: { httpStatusCode?: number }, $fault?: string }

const NOT_FOUND = new Set(['ResourceNotFoundException', 'NoSuchEntityException', 'NoSuchEntity', 'NotFoundException'])
const DENIED = new Set(['AccessDeniedException', 'AccessDenied', 'UnauthorizedException', 'UnauthorizedOperation', 'ForbiddenException'])
const BAD_KEYS = new Set(['UnrecognizedClientException', 'InvalidClientTokenId', 'InvalidSignatureException', 'SignatureDoesNotMatch', 'ExpiredToken', 'ExpiredTokenException', 'MissingAuthenticationTokenException', 'IncompleteSignature'])
const CONFLICT = new Set(['DeleteConflictException', 'DeleteConflict', 'CertificateStateException', 'ResourceInUseException', 'VersionConflictException', 'InvalidRequestException'])

const codeOf = (err: unknown): string => (err as AwsError)?.name ?? (err as AwsError)?.Code ?? ''
const isNotFound = (err: unknown): boolean => NOT_FOUND.has(codeOf(err)) || (err as AwsError)?.$metadata?.httpStatusCode === 404

/** What went wrong, said so the person can act on it. AWS service errors and credential and network failures become SetupErrors; anything else (a bug) stays as it is. */
export function explain (err: unknown, service: Service, command: string, endpoint: string | undefined): Error {
  const e = err as AwsError
  const code = codeOf(err)
  const said = e?.message ?? String(err)
  if (err instanceof SetupError) return err
  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(said)) {
    return new SetupError('no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE for a profile in ~/.aws', { cause: err })
  }
  if (DENIED.has(code)) {
    return new SetupError(`access denied: ${service} ${command} (${said}). The credentials in use need the permissions listed in device/src/cloud-setup/README.md`, { cause: err })
  }
  if (BAD_KEYS.has(code)) {
    return new SetupError(`AWS refused the credentials for ${service} ${command} (${code}: ${said}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or AWS_PROFILE`, { cause: err })
  }
  const net = e?.code ?? ''
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN'].includes(net) || code === 'TimeoutError') {
    return new SetupError(`cannot reach ${service}${endpoint !== undefined ? ` at ${endpoint}` : ''} for ${command}: ${net || code} ${said}`.trim(), { cause: err })
  }
  if (e?.$metadata !== undefined || e?.$fault !== undefined) {
    return new SetupError(`${service} ${command} failed: ${code !== '' ? `${code}: ` : ''}${said}`, { cause: err })
  }
  return err instanceof Error ? err : new Error(String(err))
}

/** IAM returns policy documents URL-encoded. */
const decodeIam = (doc: string | undefined): string => doc === undefined ? '' : decodeURIComponent(doc)

export function awsCloud (o: AwsOptions): CloudApi & { destroy: () => void } {
  const { kvs, iot, iam } = awsClients(o)
  const retryMs = o.conflictRetryMs ?? 2000

  async function call<T> (service: Service, command: string, fn: () => Promise<T>): Promise<T> {
    try { return await fn() } catch (err) { throw explain(err, service, command, o.endpoints?.[service]) }
  }
  /** null when AWS says there is no such thing. */
  async function find<T> (service: Service, command: string, fn: () => Promise<T>): Promise<T | null> {
    try { return await fn() } catch (err) {
      if (isNotFound(err)) return null
      throw explain(err, service, command, o.endpoints?.[service])
    }
  }
  /** A delete right after a detach can be refused until AWS catches up: a few more tries. */
  async function patient (service: Service, command: string, fn: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try { await fn(); return } catch (err) {
        if (isNotFound(err)) return
        if (attempt >= 5 || !CONFLICT.has(codeOf(err))) throw explain(err, service, command, o.endpoints?.[service])
        await new Promise((resolve) => setTimeout(resolve, retryMs * attempt))
      }
    }
  }

  async function iotPolicyVersions (name: string): Promise<Array<{ id: string, isDefault: boolean, created: number }>> {
    const r = await call('iot', 'ListPolicyVersions', () => iot.send(new ListIotPolicyVersionsCommand({ policyName: name })))
    return (r.policyVersions ?? []).map((v) => ({ id: v.versionId ?? '', isDefault: v.isDefaultVersion === true, created: v.createDate?.getTime() ?? 0 }))
  }
  async function iamPolicyVersions (arn: string): Promise<Array<{ id: string, isDefault: boolean, created: number }>> {
    const out: Array<{ id: string, isDefault: boolean, created: number }> = []
    let Marker: string | undefined
    do {
      const r = await call('iam', 'ListPolicyVersions', () => iam.send(new ListPolicyVersionsCommand({ PolicyArn: arn, Marker })))
      for (const v of r.Versions ?? []) out.push({ id: v.VersionId ?? '', isDefault: v.IsDefaultVersion === true, created: v.CreateDate?.getTime() ?? 0 })
      Marker = r.IsTruncated === true ? r.Marker : undefined
    } while (Marker !== undefined)
    return out
  }
  const oldestOther = (versions: Array<{ id: string, isDefault: boolean, created: number }>): string | undefined =>
    versions.filter((v) => !v.isDefault).sort((a, b) => a.created - b.created)[0]?.id

  return {
    destroy () { kvs.destroy(); iot.destroy(); iam.destroy() },

    async describeEndpoint (type) {
      const r = await call('iot', 'DescribeEndpoint', () => iot.send(new DescribeEndpointCommand({ endpointType: type })))
      if (r.endpointAddress === undefined || r.endpointAddress === '') throw new SetupError(`iot DescribeEndpoint ${type} returned no address`)
      return r.endpointAddress
    },
    async getCallerAccount () {
      // Without an STS client, IAM GetUser tells an IAM user's ARN; other identities (roles, SSO) cannot ask it.
      try {
        const r = await iam.send(new GetUserCommand({}))
        const p = r.User?.Arn === undefined ? null : parseArn(r.User.Arn)
        return p === null ? null : { partition: p.partition, account: p.account }
      } catch (err) {
        const e = explain(err, 'iam', 'GetUser', o.endpoints?.iam)
        if (/no AWS credentials|refused the credentials|cannot reach/.test(e.message)) throw e
        return null
      }
    },

    async describeChannel (name) {
      const r = await find('kinesisvideo', 'DescribeSignalingChannel', () => kvs.send(new DescribeSignalingChannelCommand({ ChannelName: name })))
      const info = r?.ChannelInfo
      if (info?.ChannelARN === undefined) return null
      return { arn: info.ChannelARN, version: info.Version, status: info.ChannelStatus }
    },
    async createChannel (name) {
      const r = await call('kinesisvideo', 'CreateSignalingChannel', () => kvs.send(new CreateSignalingChannelCommand({ ChannelName: name, ChannelType: 'SINGLE_MASTER' })))
      if (r.ChannelARN === undefined) throw new SetupError('kinesisvideo CreateSignalingChannel returned no ARN')
      return { arn: r.ChannelARN }
    },
    async deleteChannel (arn, version) {
      await patient('kinesisvideo', 'DeleteSignalingChannel', () => kvs.send(new DeleteSignalingChannelCommand({ ChannelARN: arn, CurrentVersion: version })))
    },

    async describeThing (name) {
      const r = await find('iot', 'DescribeThing', () => iot.send(new DescribeThingCommand({ thingName: name })))
      if (r === null) return null
      const arn = r.thingArn ?? ''
      return { arn, attributes: r.attributes ?? {} }
    },
    async createThing (name, attributes) {
      const r = await call('iot', 'CreateThing', () => iot.send(new CreateThingCommand({ thingName: name, attributePayload: { attributes } })))
      return { arn: r.thingArn ?? '' }
    },
    async deleteThing (name) { await patient('iot', 'DeleteThing', () => iot.send(new DeleteThingCommand({ thingName: name }))) },
    async listThingPrincipals (thing) {
      const out: string[] = []
      let nextToken: string | undefined
      do {
        const r = await find('iot', 'ListThingPrincipals', () => iot.send(new ListThingPrincipalsCommand({ thingName: thing, nextToken })))
        out.push(...(r?.principals ?? []))
        nextToken = r?.nextToken ?? undefined
      } while (nextToken !== undefined)
      return out
    },
    async attachThingPrincipal (thing, principal) { await call('iot', 'AttachThingPrincipal', () => iot.send(new AttachThingPrincipalCommand({ thingName: thing, principal }))) },
    async detachThingPrincipal (thing, principal) {
      await find('iot', 'DetachThingPrincipal', () => iot.send(new DetachThingPrincipalCommand({ thingName: thing, principal })))
    },

    async describeCertificate (id) {
      const r = await find('iot', 'DescribeCertificate', () => iot.send(new DescribeCertificateCommand({ certificateId: id })))
      const d = r?.certificateDescription
      if (d?.certificateArn === undefined) return null
      return { id: d.certificateId ?? id, arn: d.certificateArn, status: d.status ?? 'UNKNOWN', pem: d.certificatePem ?? '' }
    },
    async createKeysAndCertificate (): Promise<Certificate & { privateKey: string }> {
      const r = await call('iot', 'CreateKeysAndCertificate', () => iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true })))
      if (r.certificateArn === undefined || r.certificateId === undefined || r.certificatePem === undefined || r.keyPair?.PrivateKey === undefined) {
        throw new SetupError('iot CreateKeysAndCertificate returned no certificate or key')
      }
      return { id: r.certificateId, arn: r.certificateArn, status: 'ACTIVE', pem: r.certificatePem, privateKey: r.keyPair.PrivateKey }
    },
    async deactivateCertificate (id) { await call('iot', 'UpdateCertificate', () => iot.send(new UpdateCertificateCommand({ certificateId: id, newStatus: 'INACTIVE' }))) },
    async deleteCertificate (id) { await patient('iot', 'DeleteCertificate', () => iot.send(new DeleteCertificateCommand({ certificateId: id }))) },

    async getIotPolicy (name) {
      const r = await find('iot', 'GetPolicy', () => iot.send(new GetIotPolicyCommand({ policyName: name })))
      return r === null ? null : { document: r.policyDocument ?? '' }
    },
    async createIotPolicy (name, document) { await call('iot', 'CreatePolicy', () => iot.send(new CreateIotPolicyCommand({ policyName: name, policyDocument: document }))) },
    async updateIotPolicy (name, document) {
      const create = async (): Promise<unknown> => await iot.send(new CreateIotPolicyVersionCommand({ policyName: name, policyDocument: document, setAsDefault: true }))
      try { await create() } catch (err) {
        // Five versions at most: the oldest other one makes room, then once more.
        if (codeOf(err) !== 'VersionsLimitExceededException') throw explain(err, 'iot', 'CreatePolicyVersion', o.endpoints?.iot)
        const old = oldestOther(await iotPolicyVersions(name))
        if (old !== undefined) await call('iot', 'DeletePolicyVersion', () => iot.send(new DeleteIotPolicyVersionCommand({ policyName: name, policyVersionId: old })))
        await call('iot', 'CreatePolicyVersion', create)
      }
    },
    async listAttachedIotPolicies (target) {
      const out: string[] = []
      let marker: string | undefined
      do {
        const r = await find('iot', 'ListAttachedPolicies', () => iot.send(new ListAttachedPoliciesCommand({ target, marker })))
        out.push(...(r?.policies ?? []).map((p) => p.policyName ?? ''))
        marker = r?.nextMarker ?? undefined
      } while (marker !== undefined)
      return out
    },
    async attachIotPolicy (name, target) { await call('iot', 'AttachPolicy', () => iot.send(new AttachPolicyCommand({ policyName: name, target }))) },
    async detachIotPolicy (name, target) {
      await find('iot', 'DetachPolicy', () => iot.send(new DetachPolicyCommand({ policyName: name, target })))
    },
    async deleteIotPolicy (name) {
      const remove = async (): Promise<unknown> => await iot.send(new DeleteIotPolicyCommand({ policyName: name }))
      try { await remove(); return } catch (err) {
        if (isNotFound(err)) return
        if (codeOf(err) !== 'DeleteConflictException') throw explain(err, 'iot', 'DeletePolicy', o.endpoints?.iot)
      }
      // Refused: older versions first (a policy still attached stays refused, and says so).
      for (const v of await iotPolicyVersions(name)) {
        if (!v.isDefault) await call('iot', 'DeletePolicyVersion', () => iot.send(new DeleteIotPolicyVersionCommand({ policyName: name, policyVersionId: v.id })))
      }
      await patient('iot', 'DeletePolicy', remove)
    },

    async describeRoleAlias (alias) {
      const r = await find('iot', 'DescribeRoleAlias', () => iot.send(new DescribeRoleAliasCommand({ roleAlias: alias })))
      const d = r?.roleAliasDescription
      if (d === undefined) return null
      return { arn: d.roleAliasArn ?? '', roleArn: d.roleArn ?? '', durationSeconds: d.credentialDurationSeconds ?? 3600 }
    },
    async createRoleAlias (alias, roleArn, durationSeconds) {
      const r = await call('iot', 'CreateRoleAlias', () => iot.send(new CreateRoleAliasCommand({ roleAlias: alias, roleArn, credentialDurationSeconds: durationSeconds })))
      return { arn: r.roleAliasArn ?? '' }
    },
    async updateRoleAlias (alias, roleArn, durationSeconds) {
      await call('iot', 'UpdateRoleAlias', () => iot.send(new UpdateRoleAliasCommand({ roleAlias: alias, roleArn, credentialDurationSeconds: durationSeconds })))
    },
    async deleteRoleAlias (alias) { await patient('iot', 'DeleteRoleAlias', () => iot.send(new DeleteRoleAliasCommand({ roleAlias: alias }))) },

    async getRole (name) {
      const r = await find('iam', 'GetRole', () => iam.send(new GetRoleCommand({ RoleName: name })))
      if (r?.Role?.Arn === undefined) return null
      return { arn: r.Role.Arn, trust: decodeIam(r.Role.AssumeRolePolicyDocument) }
    },
    async createRole (name, trust, description) {
      const r = await call('iam', 'CreateRole', () => iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trust, Description: description })))
      return { arn: r.Role?.Arn ?? '' }
    },
    async updateRoleTrust (name, trust) { await call('iam', 'UpdateAssumeRolePolicy', () => iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: name, PolicyDocument: trust }))) },
    async getRolePolicy (role, policyName) {
      const r = await find('iam', 'GetRolePolicy', () => iam.send(new GetRolePolicyCommand({ RoleName: role, PolicyName: policyName })))
      return r === null ? null : decodeIam(r.PolicyDocument)
    },
    async putRolePolicy (role, policyName, document) { await call('iam', 'PutRolePolicy', () => iam.send(new PutRolePolicyCommand({ RoleName: role, PolicyName: policyName, PolicyDocument: document }))) },
    async deleteRolePolicy (role, policyName) { await patient('iam', 'DeleteRolePolicy', () => iam.send(new DeleteRolePolicyCommand({ RoleName: role, PolicyName: policyName }))) },
    async deleteRole (name) { await patient('iam', 'DeleteRole', () => iam.send(new DeleteRoleCommand({ RoleName: name }))) },

    async getManagedPolicy (arn) {
      const p = await find('iam', 'GetPolicy', () => iam.send(new GetPolicyCommand({ PolicyArn: arn })))
      const version = p?.Policy?.DefaultVersionId
      if (p === null || version === undefined) return null
      const v = await find('iam', 'GetPolicyVersion', () => iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: version })))
      return { arn: p.Policy?.Arn ?? arn, document: decodeIam(v?.PolicyVersion?.Document) }
    },
    async createManagedPolicy (name, document, description) {
      const r = await call('iam', 'CreatePolicy', () => iam.send(new CreatePolicyCommand({ PolicyName: name, PolicyDocument: document, Description: description })))
      return { arn: r.Policy?.Arn ?? '' }
    },
    async updateManagedPolicy (arn, document) {
      const create = async (): Promise<unknown> => await iam.send(new CreatePolicyVersionCommand({ PolicyArn: arn, PolicyDocument: document, SetAsDefault: true }))
      try { await create() } catch (err) {
        // Five versions at most: the oldest other one makes room, then once more.
        if (!['LimitExceeded', 'LimitExceededException'].includes(codeOf(err))) throw explain(err, 'iam', 'CreatePolicyVersion', o.endpoints?.iam)
        const old = oldestOther(await iamPolicyVersions(arn))
        if (old !== undefined) await call('iam', 'DeletePolicyVersion', () => iam.send(new DeletePolicyVersionCommand({ PolicyArn: arn, VersionId: old })))
        await call('iam', 'CreatePolicyVersion', create)
      }
    },
    async deleteManagedPolicy (arn) {
      const remove = async (): Promise<unknown> => await iam.send(new DeletePolicyCommand({ PolicyArn: arn }))
      try { await remove(); return } catch (err) {
        if (isNotFound(err)) return
        if (!['DeleteConflict', 'DeleteConflictException'].includes(codeOf(err))) throw explain(err, 'iam', 'DeletePolicy', o.endpoints?.iam)
      }
      // Refused: still attached to residents, or older versions. Detach, delete those, then once more.
      let Marker: string | undefined
      do {
        const r = await call('iam', 'ListEntitiesForPolicy', () => iam.send(new ListEntitiesForPolicyCommand({ PolicyArn: arn, Marker })))
        for (const u of r.PolicyUsers ?? []) await call('iam', 'DetachUserPolicy', () => iam.send(new DetachUserPolicyCommand({ PolicyArn: arn, UserName: u.UserName })))
        for (const g of r.PolicyGroups ?? []) await call('iam', 'DetachGroupPolicy', () => iam.send(new DetachGroupPolicyCommand({ PolicyArn: arn, GroupName: g.GroupName })))
        for (const ro of r.PolicyRoles ?? []) await call('iam', 'DetachRolePolicy', () => iam.send(new DetachRolePolicyCommand({ PolicyArn: arn, RoleName: ro.RoleName })))
        Marker = r.IsTruncated === true ? r.Marker : undefined
      } while (Marker !== undefined)
      for (const v of await iamPolicyVersions(arn)) {
        if (!v.isDefault) await call('iam', 'DeletePolicyVersion', () => iam.send(new DeletePolicyVersionCommand({ PolicyArn: arn, VersionId: v.id })))
      }
      await patient('iam', 'DeletePolicy', remove)
    }
  }
}
