import { randomUUID } from 'node:crypto'
import type { RawRequest, Reply } from './http'
import { isPolicyDocument } from './controlIot'
import { iamId, isoSeconds, type IamPolicy, type IamPolicyVersion, type IamPrincipal, type IamRole, type IotState } from './state'

/**
 * The IAM subset a setup command needs, in IAM's own protocol (awsQuery, as @aws-sdk/client-iam
 * sends it): POST / with a form body `Action=...&Version=2010-05-08&...`, answered in XML,
 * `<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata/></ActionResponse>`, errors as
 * `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>` with the
 * awsQueryError codes the SDK maps to its exception classes (NoSuchEntity, EntityAlreadyExists,
 * DeleteConflict, MalformedPolicyDocument, InvalidInput, LimitExceeded).
 *
 * As AWS does, policy documents come back URL-encoded (Role.AssumeRolePolicyDocument,
 * GetRolePolicy's PolicyDocument, GetPolicyVersion's Document); the SDK does not decode them.
 *
 * Managed policies keep up to 5 versions (v1, v2, ...; a number is never given twice); one is the
 * default. Users and groups exist only as far as attaching managed policies goes: the state makes
 * them (addIamUser / addIamGroup), the control plane attaches, detaches and lists them.
 */

const NS = 'https://iam.amazonaws.com/doc/2010-05-08/'
const NAME = /^[\w+=,.@-]{1,64}$/
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/
const PATH = /^\/(?:[\x21-\x7e]*\/)?$/
/** AWS's quotas: versions per managed policy, managed policies attached per role, user or group (the default). */
const MAX_POLICY_VERSIONS = 5
const MAX_ATTACHED_POLICIES = 10

type Params = URLSearchParams
type Action = (p: Params) => Reply

export class IamControlPlane {
  private readonly actions: Record<string, Action> = {
    GetRole: (p) => this.getRole(p),
    CreateRole: (p) => this.createRole(p),
    DeleteRole: (p) => this.deleteRole(p),
    PutRolePolicy: (p) => this.putRolePolicy(p),
    GetRolePolicy: (p) => this.getRolePolicy(p),
    DeleteRolePolicy: (p) => this.deleteRolePolicy(p),
    UpdateAssumeRolePolicy: (p) => this.updateAssumeRolePolicy(p),
    AttachRolePolicy: (p) => this.attachRolePolicy(p),
    DetachRolePolicy: (p) => this.detachRolePolicy(p),
    AttachUserPolicy: (p) => this.attachPrincipalPolicy(p, 'User'),
    DetachUserPolicy: (p) => this.detachPrincipalPolicy(p, 'User'),
    AttachGroupPolicy: (p) => this.attachPrincipalPolicy(p, 'Group'),
    DetachGroupPolicy: (p) => this.detachPrincipalPolicy(p, 'Group'),
    CreatePolicy: (p) => this.createPolicy(p),
    GetPolicy: (p) => this.getPolicy(p),
    DeletePolicy: (p) => this.deletePolicy(p),
    CreatePolicyVersion: (p) => this.createPolicyVersion(p),
    GetPolicyVersion: (p) => this.getPolicyVersion(p),
    ListPolicyVersions: (p) => this.listPolicyVersions(p),
    DeletePolicyVersion: (p) => this.deletePolicyVersion(p),
    SetDefaultPolicyVersion: (p) => this.setDefaultPolicyVersion(p),
    ListEntitiesForPolicy: (p) => this.listEntitiesForPolicy(p)
  }

  constructor (private readonly state: IotState) {}

  handle (req: RawRequest): Reply {
    if (req.method !== 'POST') return iamError(400, 'InvalidAction', 'IAM is called with POST here.')
    const params = new URLSearchParams(req.body.toString('utf8'))
    const action = params.get('Action') ?? ''
    if (params.get('Version') !== '2010-05-08') return iamError(400, 'InvalidParameterValue', 'Version must be 2010-05-08.')
    const handler = this.actions[action]
    if (handler === undefined) return iamError(400, 'InvalidAction', `The IAM stand-in does not implement the action ${action}.`)
    return handler(params)
  }

  private getRole (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    return ok('GetRole', `<Role>${roleXml(role)}</Role>`)
  }

  private createRole (p: Params): Reply {
    const name = p.get('RoleName') ?? ''
    if (!NAME.test(name)) return invalidInput(`RoleName ${name} is not valid.`)
    const path = p.get('Path') ?? '/'
    if (!PATH.test(path)) return invalidInput(`Path ${path} is not valid: it must begin and end with /.`)
    const trust = p.get('AssumeRolePolicyDocument') ?? ''
    if (!isPolicyDocument(trust)) return iamError(400, 'MalformedPolicyDocument', 'The AssumeRolePolicyDocument is not a JSON policy with a Statement.')
    const maxSession = Number(p.get('MaxSessionDuration') ?? 3600)
    if (!Number.isInteger(maxSession) || maxSession < 3600 || maxSession > 43_200) return invalidInput('MaxSessionDuration must be from 3600 to 43200.')
    if (this.state.roles.has(name)) return iamError(409, 'EntityAlreadyExists', `Role with name ${name} already exists.`)
    const role: IamRole = {
      name,
      path,
      id: iamId('AROA'),
      arn: this.state.iamArn(`role${path}${name}`),
      assumeRolePolicyDocument: trust,
      description: p.get('Description') ?? undefined,
      maxSessionDuration: maxSession,
      createdAt: Date.now(),
      inlinePolicies: new Map(),
      attachedPolicies: new Set()
    }
    this.state.roles.set(name, role)
    return ok('CreateRole', `<Role>${roleXml(role)}</Role>`)
  }

  private deleteRole (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    if (role.inlinePolicies.size > 0) return iamError(409, 'DeleteConflict', 'Cannot delete entity, must delete policies first.')
    if (role.attachedPolicies.size > 0) return iamError(409, 'DeleteConflict', 'Cannot delete entity, must detach all policies first.')
    this.state.roles.delete(role.name)
    return ok('DeleteRole')
  }

  private putRolePolicy (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    const name = p.get('PolicyName') ?? ''
    if (!POLICY_NAME.test(name)) return invalidInput(`PolicyName ${name} is not valid.`)
    const document = p.get('PolicyDocument') ?? ''
    if (!isPolicyDocument(document)) return iamError(400, 'MalformedPolicyDocument', 'The policy document is not a JSON policy with a Statement.')
    role.inlinePolicies.set(name, document)
    return ok('PutRolePolicy')
  }

  private getRolePolicy (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    const name = p.get('PolicyName') ?? ''
    const document = role.inlinePolicies.get(name)
    if (document === undefined) return iamError(404, 'NoSuchEntity', `The role policy with name ${name} cannot be found.`)
    return ok('GetRolePolicy', `<RoleName>${xml(role.name)}</RoleName><PolicyName>${xml(name)}</PolicyName><PolicyDocument>${xml(encodeURIComponent(document))}</PolicyDocument>`)
  }

  private deleteRolePolicy (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    const name = p.get('PolicyName') ?? ''
    if (!role.inlinePolicies.delete(name)) return iamError(404, 'NoSuchEntity', `The role policy with name ${name} cannot be found.`)
    return ok('DeleteRolePolicy')
  }

  private updateAssumeRolePolicy (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    const trust = p.get('PolicyDocument') ?? ''
    if (!isPolicyDocument(trust)) return iamError(400, 'MalformedPolicyDocument', 'The trust policy document is not a JSON policy with a Statement.')
    role.assumeRolePolicyDocument = trust
    return ok('UpdateAssumeRolePolicy')
  }

  private attachRolePolicy (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    return attach('AttachRolePolicy', role, this.state.iamPolicies.get(p.get('PolicyArn') ?? ''), p.get('PolicyArn'))
  }

  private detachRolePolicy (p: Params): Reply {
    const role = this.state.roles.get(p.get('RoleName') ?? '')
    if (role === undefined) return noSuchRole(p.get('RoleName'))
    return detach('DetachRolePolicy', role, p.get('PolicyArn'), this.state.iamPolicies)
  }

  private attachPrincipalPolicy (p: Params, kind: 'User' | 'Group'): Reply {
    const name = p.get(`${kind}Name`) ?? ''
    const principal = (kind === 'User' ? this.state.iamUsers : this.state.iamGroups).get(name)
    if (principal === undefined) return noSuchPrincipal(kind, name)
    return attach(`Attach${kind}Policy`, principal, this.state.iamPolicies.get(p.get('PolicyArn') ?? ''), p.get('PolicyArn'))
  }

  private detachPrincipalPolicy (p: Params, kind: 'User' | 'Group'): Reply {
    const name = p.get(`${kind}Name`) ?? ''
    const principal = (kind === 'User' ? this.state.iamUsers : this.state.iamGroups).get(name)
    if (principal === undefined) return noSuchPrincipal(kind, name)
    return detach(`Detach${kind}Policy`, principal, p.get('PolicyArn'), this.state.iamPolicies)
  }

  private createPolicy (p: Params): Reply {
    const name = p.get('PolicyName') ?? ''
    if (!POLICY_NAME.test(name)) return invalidInput(`PolicyName ${name} is not valid.`)
    const path = p.get('Path') ?? '/'
    if (!PATH.test(path)) return invalidInput(`Path ${path} is not valid: it must begin and end with /.`)
    const document = p.get('PolicyDocument') ?? ''
    if (!isPolicyDocument(document)) return iamError(400, 'MalformedPolicyDocument', 'The policy document is not a JSON policy with a Statement.')
    const arn = this.state.iamArn(`policy${path}${name}`)
    // Managed policy names are unique in the account whatever their path.
    if ([...this.state.iamPolicies.values()].some((other) => other.name === name)) {
      return iamError(409, 'EntityAlreadyExists', `A policy called ${name} already exists. Duplicate names are not allowed.`)
    }
    const now = Date.now()
    const policy: IamPolicy = {
      name,
      path,
      id: iamId('ANPA'),
      arn,
      description: p.get('Description') ?? undefined,
      createdAt: now,
      updatedAt: now,
      versions: new Map([['v1', { id: 'v1', document, createdAt: now }]]),
      defaultVersionId: 'v1',
      lastVersion: 1,
      attachedTo: new Set()
    }
    this.state.iamPolicies.set(arn, policy)
    return ok('CreatePolicy', `<Policy>${policyXml(policy)}</Policy>`)
  }

  private getPolicy (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    return ok('GetPolicy', `<Policy>${policyXml(policy)}</Policy>`)
  }

  private deletePolicy (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    if (policy.attachedTo.size > 0) return iamError(409, 'DeleteConflict', 'Cannot delete a policy attached to entities.')
    if (policy.versions.size > 1) {
      return iamError(409, 'DeleteConflict', 'This policy has more than one version. Before you delete a policy, you must delete the policy\'s versions. The default version is deleted with the policy.')
    }
    this.state.iamPolicies.delete(policy.arn)
    return ok('DeletePolicy')
  }

  private createPolicyVersion (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    const document = p.get('PolicyDocument') ?? ''
    if (!isPolicyDocument(document)) return iamError(400, 'MalformedPolicyDocument', 'The policy document is not a JSON policy with a Statement.')
    if (policy.versions.size >= MAX_POLICY_VERSIONS) {
      return iamError(409, 'LimitExceeded', `A managed policy can have up to ${MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version.`)
    }
    const now = Date.now()
    const version: IamPolicyVersion = { id: `v${++policy.lastVersion}`, document, createdAt: now }
    policy.versions.set(version.id, version)
    policy.updatedAt = now
    if (p.get('SetAsDefault') === 'true') policy.defaultVersionId = version.id
    return ok('CreatePolicyVersion', `<PolicyVersion>${versionXml(policy, version, false)}</PolicyVersion>`)
  }

  private getPolicyVersion (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    const version = policy.versions.get(p.get('VersionId') ?? '')
    if (version === undefined) return noSuchVersion(policy, p.get('VersionId'))
    return ok('GetPolicyVersion', `<PolicyVersion>${versionXml(policy, version, true)}</PolicyVersion>`)
  }

  private listPolicyVersions (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    // Newest first, without their documents, as AWS lists them.
    const all = [...policy.versions.values()].sort((a, b) => versionNumber(b.id) - versionNumber(a.id))
    const page = paginate(all, p)
    if (typeof page === 'string') return invalidInput(page)
    return ok('ListPolicyVersions', `<Versions>${page.items.map((v) => `<member>${versionXml(policy, v, false)}</member>`).join('')}</Versions>${page.tail}`)
  }

  private deletePolicyVersion (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    const version = policy.versions.get(p.get('VersionId') ?? '')
    if (version === undefined) return noSuchVersion(policy, p.get('VersionId'))
    if (version.id === policy.defaultVersionId) return iamError(409, 'DeleteConflict', 'Cannot delete the default version of a policy.')
    policy.versions.delete(version.id)
    return ok('DeletePolicyVersion')
  }

  private setDefaultPolicyVersion (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    const version = policy.versions.get(p.get('VersionId') ?? '')
    if (version === undefined) return noSuchVersion(policy, p.get('VersionId'))
    policy.defaultVersionId = version.id
    return ok('SetDefaultPolicyVersion')
  }

  private listEntitiesForPolicy (p: Params): Reply {
    const policy = this.state.iamPolicies.get(p.get('PolicyArn') ?? '')
    if (policy === undefined) return noSuchPolicy(p.get('PolicyArn'))
    const filter = p.get('EntityFilter')
    if (filter !== null && !['User', 'Role', 'Group', 'LocalManagedPolicy', 'AWSManagedPolicy'].includes(filter)) {
      return iamError(400, 'ValidationError', `1 validation error detected: Value '${filter}' at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [LocalManagedPolicy, Role, AWSManagedPolicy, User, Group]`)
    }
    const usage = p.get('PolicyUsageFilter')
    if (usage !== null && usage !== 'PermissionsPolicy' && usage !== 'PermissionsBoundary') {
      return iamError(400, 'ValidationError', `1 validation error detected: Value '${usage}' at 'policyUsageFilter' failed to satisfy constraint: Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]`)
    }
    const prefix = p.get('PathPrefix') ?? '/'
    // Permissions boundaries are not modelled: nothing uses the policy as one.
    const wanted = (kind: string, entity: { path: string, attachedPolicies: Set<string> }): boolean =>
      (filter === null || filter === kind) && usage !== 'PermissionsBoundary' && entity.path.startsWith(prefix) && entity.attachedPolicies.has(policy.arn)
    const byName = <T extends { name: string }>(a: T, b: T): number => a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    const entities = [
      ...[...this.state.iamGroups.values()].filter((g) => wanted('Group', g)).sort(byName).map((g) => ({ kind: 'Group' as const, xml: `<GroupName>${xml(g.name)}</GroupName><GroupId>${g.id}</GroupId>` })),
      ...[...this.state.iamUsers.values()].filter((u) => wanted('User', u)).sort(byName).map((u) => ({ kind: 'User' as const, xml: `<UserName>${xml(u.name)}</UserName><UserId>${u.id}</UserId>` })),
      ...[...this.state.roles.values()].filter((r) => wanted('Role', r)).sort(byName).map((r) => ({ kind: 'Role' as const, xml: `<RoleName>${xml(r.name)}</RoleName><RoleId>${r.id}</RoleId>` }))
    ]
    const page = paginate(entities, p)
    if (typeof page === 'string') return invalidInput(page)
    const list = (kind: 'Group' | 'User' | 'Role'): string =>
      `<Policy${kind}s>${page.items.filter((e) => e.kind === kind).map((e) => `<member>${e.xml}</member>`).join('')}</Policy${kind}s>`
    return ok('ListEntitiesForPolicy', list('Group') + list('User') + list('Role') + page.tail)
  }
}

/** IAM's answer to a request whose signature failed, with the codes IAM uses for them. */
export function iamAuthError (status: number, code: string, message: string): Reply {
  const iamCode: Record<string, string> = {
    UnrecognizedClientException: 'InvalidClientTokenId',
    InvalidSignatureException: 'SignatureDoesNotMatch',
    ExpiredTokenException: 'ExpiredToken',
    MissingAuthenticationTokenException: 'MissingAuthenticationToken',
    IncompleteSignatureException: 'IncompleteSignature'
  }
  return iamError(status, iamCode[code] ?? code, message)
}

function roleXml (role: IamRole): string {
  return `<Path>${xml(role.path)}</Path><RoleName>${xml(role.name)}</RoleName><RoleId>${role.id}</RoleId><Arn>${xml(role.arn)}</Arn>` +
    `<CreateDate>${isoSeconds(role.createdAt)}</CreateDate>` +
    `<AssumeRolePolicyDocument>${xml(encodeURIComponent(role.assumeRolePolicyDocument))}</AssumeRolePolicyDocument>` +
    (role.description !== undefined ? `<Description>${xml(role.description)}</Description>` : '') +
    `<MaxSessionDuration>${role.maxSessionDuration}</MaxSessionDuration><RoleLastUsed/>`
}

function policyXml (policy: IamPolicy): string {
  return `<PolicyName>${xml(policy.name)}</PolicyName><DefaultVersionId>${policy.defaultVersionId}</DefaultVersionId><PolicyId>${policy.id}</PolicyId>` +
    `<Path>${xml(policy.path)}</Path><Arn>${xml(policy.arn)}</Arn><AttachmentCount>${policy.attachedTo.size}</AttachmentCount>` +
    '<PermissionsBoundaryUsageCount>0</PermissionsBoundaryUsageCount><IsAttachable>true</IsAttachable>' +
    (policy.description !== undefined ? `<Description>${xml(policy.description)}</Description>` : '') +
    `<CreateDate>${isoSeconds(policy.createdAt)}</CreateDate><UpdateDate>${isoSeconds(policy.updatedAt)}</UpdateDate>`
}

/** A PolicyVersion's members; the document (URL-encoded, as AWS sends it) only for GetPolicyVersion. */
function versionXml (policy: IamPolicy, version: IamPolicyVersion, withDocument: boolean): string {
  return (withDocument ? `<Document>${xml(encodeURIComponent(version.document))}</Document>` : '') +
    `<VersionId>${version.id}</VersionId><IsDefaultVersion>${String(version.id === policy.defaultVersionId)}</IsDefaultVersion>` +
    `<CreateDate>${isoSeconds(version.createdAt)}</CreateDate>`
}

function versionNumber (id: string): number { return Number(id.slice(1)) }

/** Attaches a managed policy to a role, user or group, within AWS's default quota per entity. */
function attach (action: string, entity: IamRole | IamPrincipal, policy: IamPolicy | undefined, arn: string | null): Reply {
  if (policy === undefined) return noSuchPolicy(arn)
  if (!entity.attachedPolicies.has(policy.arn) && entity.attachedPolicies.size >= MAX_ATTACHED_POLICIES) {
    return iamError(409, 'LimitExceeded', `Cannot exceed quota for PoliciesPerEntity: ${MAX_ATTACHED_POLICIES}`)
  }
  entity.attachedPolicies.add(policy.arn)
  policy.attachedTo.add(entity.arn)
  return ok(action)
}

function detach (action: string, entity: IamRole | IamPrincipal, arn: string | null, policies: Map<string, IamPolicy>): Reply {
  const policy = policies.get(arn ?? '')
  if (policy === undefined || !entity.attachedPolicies.has(policy.arn)) return iamError(404, 'NoSuchEntity', `Policy ${arn ?? ''} was not found.`)
  entity.attachedPolicies.delete(policy.arn)
  policy.attachedTo.delete(entity.arn)
  return ok(action)
}

/**
 * One page of a list, as IAM pages: MaxItems (1-1000, default 100), an opaque Marker to go on
 * from, `<IsTruncated>` and, when truncated, `<Marker>` (in `tail`). A string: what is wrong.
 */
function paginate<T> (all: T[], p: Params): { items: T[], tail: string } | string {
  const max = Number(p.get('MaxItems') ?? 100)
  if (!Number.isInteger(max) || max < 1 || max > 1000) return 'MaxItems must be from 1 to 1000.'
  const marker = p.get('Marker')
  let from = 0
  if (marker !== null) {
    const offset = /^offset:(\d{1,9})$/.exec(Buffer.from(marker, 'base64url').toString('utf8'))?.[1]
    from = Number(offset ?? -1)
    if (from < 0 || from > all.length) return 'Invalid Marker.'
  }
  const items = all.slice(from, from + max)
  const next = from + items.length
  const tail = next < all.length
    ? `<IsTruncated>true</IsTruncated><Marker>${Buffer.from(`offset:${next}`).toString('base64url')}</Marker>`
    : '<IsTruncated>false</IsTruncated>'
  return { items, tail }
}

function ok (action: string, result?: string): Reply {
  const requestId = randomUUID()
  const body = `<${action}Response xmlns="${NS}">` +
    (result !== undefined ? `<${action}Result>${result}</${action}Result>` : '') +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`
  return { status: 200, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body }
}

function iamError (status: number, code: string, message: string): Reply {
  const requestId = randomUUID()
  const type = status >= 500 ? 'Receiver' : 'Sender'
  const body = `<ErrorResponse xmlns="${NS}"><Error><Type>${type}</Type><Code>${xml(code)}</Code><Message>${xml(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`
  return { status, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body }
}

function noSuchRole (name: string | null): Reply { return iamError(404, 'NoSuchEntity', `The role with name ${name ?? ''} cannot be found.`) }
function noSuchPolicy (arn: string | null): Reply { return iamError(404, 'NoSuchEntity', `Policy ${arn ?? ''} does not exist or is not attachable.`) }
function noSuchPrincipal (kind: 'User' | 'Group', name: string): Reply { return iamError(404, 'NoSuchEntity', `The ${kind.toLowerCase()} with name ${name} cannot be found.`) }
function noSuchVersion (policy: IamPolicy, id: string | null): Reply { return iamError(404, 'NoSuchEntity', `Policy ${policy.arn} version ${id ?? ''} does not exist or is not attachable.`) }
function invalidInput (message: string): Reply { return iamError(400, 'InvalidInput', message) }

function xml (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
}
