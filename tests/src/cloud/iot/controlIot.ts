import { X509Certificate, randomUUID } from 'node:crypto'
import { header, json, jsonError, queryParams, segments, type RawRequest, type Reply } from './http'
import type { Certificate, IotPolicy, IotPolicyVersion, IotState } from './state'

/**
 * The AWS IoT control plane (REST-JSON, signing name `iot`), the operations a setup command needs,
 * shaped as @aws-sdk/client-iot 3.x serialises them (its schemas in dist-cjs/index.js: method, URI
 * template, which members are labels, query parameters, headers or body).
 *
 * IoT policies keep up to 5 versions ('1', '2', ...; a number is never given twice), one of them
 * the default: GetPolicy answers the default's document.
 */

export interface IotHooks {
  /** DescribeEndpoint's answer for an endpoint type, or undefined if the type is unknown. */
  endpoint: (endpointType: string) => string | undefined
  /** A new key pair and certificate signed by the device CA. */
  createCertificate: () => Promise<{ certPem: string, keyPem: string, certificateId: string, commonName: string }>
  /** The registry changed in a way the broker's ACL depends on: resolves once the broker applies it. */
  aclChanged: () => Promise<void>
  /** A certificate stopped being usable: disconnect whoever uses it. */
  certificateRevoked: (cert: Certificate) => Promise<void>
}

const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/
const ROLE_ALIAS = /^[\w=,@-]{1,128}$/
const CERT_ID = /^[0-9a-f]{64}$/
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/
const VERSION_ID = /^[0-9]+$/
/** AWS IoT's quota of versions per policy. */
const MAX_POLICY_VERSIONS = 5

type Handler = (req: RawRequest, params: string[], query: Map<string, string>, body: Record<string, unknown>) => Promise<Reply> | Reply

export class IotControlPlane {
  private readonly routes: Array<{ method: string, pattern: string[], handler: Handler }> = []

  constructor (private readonly state: IotState, private readonly hooks: IotHooks) {
    const r = (method: string, path: string, handler: Handler): void => {
      this.routes.push({ method, pattern: path.split('/').slice(1), handler: handler.bind(this) })
    }
    r('GET', '/endpoint', this.describeEndpoint)
    r('POST', '/things/*', this.createThing)
    r('GET', '/things/*', this.describeThing)
    r('DELETE', '/things/*', this.deleteThing)
    r('GET', '/things/*/principals', this.listThingPrincipals)
    r('PUT', '/things/*/principals', this.attachThingPrincipal)
    r('DELETE', '/things/*/principals', this.detachThingPrincipal)
    r('POST', '/keys-and-certificate', this.createKeysAndCertificate)
    r('GET', '/certificates/*', this.describeCertificate)
    r('PUT', '/certificates/*', this.updateCertificate)
    r('DELETE', '/certificates/*', this.deleteCertificate)
    r('POST', '/policies/*', this.createPolicy)
    r('GET', '/policies/*', this.getPolicy)
    r('DELETE', '/policies/*', this.deletePolicy)
    r('POST', '/policies/*/version', this.createPolicyVersion)
    r('GET', '/policies/*/version', this.listPolicyVersions)
    r('GET', '/policies/*/version/*', this.getPolicyVersion)
    r('DELETE', '/policies/*/version/*', this.deletePolicyVersion)
    r('PATCH', '/policies/*/version/*', this.setDefaultPolicyVersion)
    r('PUT', '/target-policies/*', this.attachPolicy)
    r('POST', '/target-policies/*', this.detachPolicy)
    r('POST', '/attached-policies/*', this.listAttachedPolicies)
    r('POST', '/role-aliases/*', this.createRoleAlias)
    r('GET', '/role-aliases/*', this.describeRoleAlias)
    r('PUT', '/role-aliases/*', this.updateRoleAlias)
    r('DELETE', '/role-aliases/*', this.deleteRoleAlias)
  }

  async handle (req: RawRequest): Promise<Reply> {
    const parts = segments(req.rawPath)
    if (parts === undefined) return jsonError(400, 'InvalidRequestException', 'The request path is not validly percent-encoded.')
    for (const route of this.routes) {
      if (route.method !== req.method || route.pattern.length !== parts.length) continue
      const params: string[] = []
      if (!route.pattern.every((p, i) => p === '*' ? (params.push(parts[i]!), parts[i] !== '') : p === parts[i])) continue
      let body: Record<string, unknown> = {}
      if (req.body.length > 0) {
        try {
          const parsed: unknown = JSON.parse(req.body.toString('utf8'))
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) body = parsed as Record<string, unknown>
        } catch {
          return jsonError(400, 'InvalidRequestException', 'The request body is not valid JSON.')
        }
      }
      return await route.handler(req, params, queryParams(req.rawQuery), body)
    }
    return jsonError(404, 'UnknownOperationException', `The IoT stand-in does not implement ${req.method} ${req.rawPath}.`)
  }

  // --- Endpoints -------------------------------------------------------------------------------

  private describeEndpoint (_req: RawRequest, _p: string[], query: Map<string, string>): Reply {
    const type = query.get('endpointType') ?? 'iot:Data'
    const address = this.hooks.endpoint(type)
    if (address === undefined) return jsonError(400, 'InvalidRequestException', `Endpoint type ${type} is not valid.`)
    return json(200, { endpointAddress: address })
  }

  // --- Things ----------------------------------------------------------------------------------

  private createThing (_req: RawRequest, [name]: string[], _q: Map<string, string>, body: Record<string, unknown>): Reply {
    if (!THING_NAME.test(name!)) return invalid(`Thing name ${name} is not valid: it must match [a-zA-Z0-9:_-]{1,128}.`)
    const typeName = optionalString(body.thingTypeName)
    const attributes = stringRecord((body.attributePayload as { attributes?: unknown } | undefined)?.attributes)
    const existing = this.state.things.get(name!)
    if (existing !== undefined) {
      // AWS answers an identical CreateThing with the existing thing; a different one is a conflict.
      if (existing.typeName === typeName && sameRecord(existing.attributes, attributes)) {
        return json(200, { thingName: existing.name, thingArn: existing.arn, thingId: existing.id })
      }
      return jsonError(409, 'ResourceAlreadyExistsException', `Thing ${name} already exists in account with different attributes`, { resourceId: existing.id, resourceArn: existing.arn })
    }
    const thing = this.state.addThing(name!, typeName, attributes)
    return json(200, { thingName: thing.name, thingArn: thing.arn, thingId: thing.id })
  }

  private describeThing (_req: RawRequest, [name]: string[]): Reply {
    const thing = this.state.things.get(name!)
    if (thing === undefined) return notFound(`Thing ${name} cannot be found.`)
    return json(200, {
      defaultClientId: thing.name,
      thingName: thing.name,
      thingId: thing.id,
      thingArn: thing.arn,
      ...(thing.typeName !== undefined ? { thingTypeName: thing.typeName } : {}),
      attributes: thing.attributes,
      version: thing.version
    })
  }

  private deleteThing (_req: RawRequest, [name]: string[], query: Map<string, string>): Reply {
    const thing = this.state.things.get(name!)
    // AWS: "Returns successfully with no error if ... you specify a thing that doesn't exist."
    if (thing === undefined) return json(200, {})
    const expected = query.get('expectedVersion')
    if (expected !== undefined && Number(expected) !== thing.version) {
      return jsonError(409, 'VersionConflictException', `The expected version ${expected} does not match the thing's version ${thing.version}.`)
    }
    if (thing.principals.size > 0) {
      return invalid(`Cannot delete thing ${name}: it still has ${thing.principals.size} principal(s) attached. Detach them first.`)
    }
    this.state.things.delete(thing.name)
    return json(200, {})
  }

  private listThingPrincipals (_req: RawRequest, [name]: string[]): Reply {
    const thing = this.state.things.get(name!)
    if (thing === undefined) return notFound(`Thing ${name} cannot be found.`)
    return json(200, { principals: [...thing.principals.keys()].map((id) => this.state.iotArn(`cert/${id}`)) })
  }

  private async attachThingPrincipal (req: RawRequest, [name]: string[], query: Map<string, string>): Promise<Reply> {
    const principal = header(req.headers, 'x-amzn-principal')
    if (principal === undefined || principal === '') return invalid('The principal (x-amzn-principal) is missing.')
    const thing = this.state.things.get(name!)
    if (thing === undefined) return notFound(`Thing ${name} cannot be found.`)
    const cert = this.state.certificateByArn(principal)
    if (cert === undefined) return notFound(`The principal ${principal} does not exist (only certificate ARNs of this account and region are known here).`)
    const type = query.get('thingPrincipalType') ?? 'NON_EXCLUSIVE_THING'
    if (type !== 'EXCLUSIVE_THING' && type !== 'NON_EXCLUSIVE_THING') return invalid(`thingPrincipalType ${type} is not valid.`)
    const elsewhere = this.state.thingsOf(cert.id).filter((other) => other !== thing.name)
    const exclusiveElsewhere = elsewhere.some((other) => this.state.things.get(other)?.principals.get(cert.id) === 'EXCLUSIVE_THING')
    if ((type === 'EXCLUSIVE_THING' && elsewhere.length > 0) || exclusiveElsewhere) {
      return invalid(`Principal ${principal} cannot be attached exclusively: it is attached to ${elsewhere.join(', ')}.`)
    }
    thing.principals.set(cert.id, type)
    await this.hooks.aclChanged()
    return json(200, {})
  }

  private async detachThingPrincipal (req: RawRequest, [name]: string[]): Promise<Reply> {
    const principal = header(req.headers, 'x-amzn-principal')
    if (principal === undefined || principal === '') return invalid('The principal (x-amzn-principal) is missing.')
    const thing = this.state.things.get(name!)
    if (thing === undefined) return notFound(`Thing ${name} cannot be found.`)
    const cert = this.state.certificateByArn(principal)
    if (cert !== undefined && thing.principals.delete(cert.id)) await this.hooks.aclChanged()
    return json(200, {})
  }

  // --- Certificates ----------------------------------------------------------------------------

  private async createKeysAndCertificate (_req: RawRequest, _p: string[], query: Map<string, string>): Promise<Reply> {
    const issued = await this.hooks.createCertificate()
    const x509 = new X509Certificate(issued.certPem)
    const cert = this.state.addCertificate({
      id: issued.certificateId,
      pem: issued.certPem,
      commonName: issued.commonName,
      active: query.get('setAsActive') === 'true',
      notBefore: Date.parse(x509.validFrom),
      notAfter: Date.parse(x509.validTo)
    })
    const publicKey = x509.publicKey.export({ type: 'spki', format: 'pem' }) as string
    return json(200, {
      certificateArn: cert.arn,
      certificateId: cert.id,
      certificatePem: cert.pem,
      keyPair: { PublicKey: publicKey, PrivateKey: issued.keyPem }
    })
  }

  private describeCertificate (_req: RawRequest, [id]: string[]): Reply {
    const cert = this.certificate(id!)
    if (cert === undefined) return certNotFound(id!)
    return json(200, {
      certificateDescription: {
        certificateArn: cert.arn,
        certificateId: cert.id,
        status: cert.status,
        certificatePem: cert.pem,
        ownedBy: this.state.accountId,
        creationDate: cert.createdAt / 1000,
        lastModifiedDate: cert.modifiedAt / 1000,
        customerVersion: cert.customerVersion,
        generationId: cert.generationId,
        validity: { notBefore: cert.notBefore / 1000, notAfter: cert.notAfter / 1000 },
        certificateMode: 'DEFAULT'
      }
    })
  }

  private async updateCertificate (_req: RawRequest, [id]: string[], query: Map<string, string>): Promise<Reply> {
    const cert = this.certificate(id!)
    if (cert === undefined) return certNotFound(id!)
    const status = query.get('newStatus')
    if (status !== 'ACTIVE' && status !== 'INACTIVE' && status !== 'REVOKED') {
      return invalid(`newStatus ${status ?? '(missing)'} is not valid here: ACTIVE, INACTIVE or REVOKED.`)
    }
    if (cert.status === 'REVOKED' && status === 'ACTIVE') return jsonError(406, 'CertificateStateException', 'A revoked certificate cannot be activated.')
    if (cert.status === status) return json(200, {})
    const wasActive = cert.status === 'ACTIVE'
    cert.status = status
    cert.modifiedAt = Date.now()
    cert.customerVersion++
    cert.generationId = randomUUID()
    await this.hooks.aclChanged()
    if (wasActive) await this.hooks.certificateRevoked(cert)
    return json(200, {})
  }

  private deleteCertificate (_req: RawRequest, [id]: string[], query: Map<string, string>): Reply {
    const cert = this.certificate(id!)
    if (cert === undefined) return certNotFound(id!)
    if (cert.status === 'ACTIVE') return jsonError(406, 'CertificateStateException', 'Certificate must be deactivated (not ACTIVE) before deletion.')
    const things = this.state.thingsOf(cert.id)
    if (things.length > 0) return jsonError(409, 'DeleteConflictException', `Things must be detached before deletion (arn: ${cert.arn})`)
    const policies = this.state.policiesOf(cert.arn)
    if (policies.length > 0) {
      if (query.get('forceDelete') !== 'true') return jsonError(409, 'DeleteConflictException', `Certificate policies must be detached before deletion (arn: ${cert.arn})`)
      for (const policy of policies) policy.targets.delete(cert.arn)
    }
    // Not ACTIVE, so not in the ACL: nothing for the broker to change.
    this.state.certificates.delete(cert.id)
    return json(200, {})
  }

  private certificate (id: string): Certificate | undefined {
    return CERT_ID.test(id) ? this.state.certificates.get(id) : undefined
  }

  // --- IoT policies ----------------------------------------------------------------------------

  private createPolicy (_req: RawRequest, [name]: string[], _q: Map<string, string>, body: Record<string, unknown>): Reply {
    if (!POLICY_NAME.test(name!)) return invalid(`Policy name ${name} is not valid.`)
    const document = body.policyDocument
    if (typeof document !== 'string' || !isPolicyDocument(document)) {
      return jsonError(400, 'MalformedPolicyException', 'The policy document is not a JSON object with a Statement.')
    }
    const existing = this.state.policies.get(name!)
    if (existing !== undefined) return jsonError(409, 'ResourceAlreadyExistsException', `Policy cannot be created - name already exists (name=${name})`, { resourceId: name, resourceArn: existing.arn })
    const now = Date.now()
    const first: IotPolicyVersion = { id: '1', document, createdAt: now, modifiedAt: now, generationId: randomUUID() }
    const policy: IotPolicy = {
      name: name!,
      arn: this.state.iotArn(`policy/${name}`),
      document,
      createdAt: now,
      modifiedAt: now,
      generationId: first.generationId,
      targets: new Set<string>(),
      versions: new Map([[first.id, first]]),
      defaultVersionId: first.id,
      lastVersion: 1
    }
    this.state.policies.set(policy.name, policy)
    return json(200, { policyName: policy.name, policyArn: policy.arn, policyDocument: policy.document, policyVersionId: first.id })
  }

  private getPolicy (_req: RawRequest, [name]: string[]): Reply {
    const policy = this.state.policies.get(name!)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    return json(200, {
      policyName: policy.name,
      policyArn: policy.arn,
      policyDocument: policy.document,
      defaultVersionId: policy.defaultVersionId ?? '1',
      creationDate: policy.createdAt / 1000,
      lastModifiedDate: policy.modifiedAt / 1000,
      generationId: policy.generationId
    })
  }

  private deletePolicy (_req: RawRequest, [name]: string[]): Reply {
    const policy = this.state.policies.get(name!)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    if (policy.targets.size > 0) return jsonError(409, 'DeleteConflictException', `The policy cannot be deleted as the policy is attached to one or more principals (name=${name})`)
    if (this.state.iotPolicyVersions(policy).size > 1) {
      return jsonError(409, 'DeleteConflictException', `Cannot delete the policy because it has one or more policy versions attached to it (name=${name})`)
    }
    this.state.policies.delete(policy.name)
    return json(200, {})
  }

  private createPolicyVersion (_req: RawRequest, [name]: string[], query: Map<string, string>, body: Record<string, unknown>): Reply {
    const policy = this.state.policies.get(name!)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    const document = body.policyDocument
    if (typeof document !== 'string' || !isPolicyDocument(document)) {
      return jsonError(400, 'MalformedPolicyException', 'The policy document is not a JSON object with a Statement.')
    }
    const versions = this.state.iotPolicyVersions(policy)
    if (versions.size >= MAX_POLICY_VERSIONS) {
      return jsonError(409, 'VersionsLimitExceededException', `The policy ${name} already has the maximum number of versions (${MAX_POLICY_VERSIONS})`)
    }
    const now = Date.now()
    policy.lastVersion = (policy.lastVersion ?? 1) + 1
    const version: IotPolicyVersion = { id: String(policy.lastVersion), document, createdAt: now, modifiedAt: now, generationId: randomUUID() }
    versions.set(version.id, version)
    if (query.get('setAsDefault') === 'true') makeDefault(policy, version)
    return json(200, { policyArn: policy.arn, policyDocument: version.document, policyVersionId: version.id, isDefaultVersion: version.id === policy.defaultVersionId })
  }

  private listPolicyVersions (_req: RawRequest, [name]: string[]): Reply {
    const policy = this.state.policies.get(name!)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    // Newest first; IoT does not page this list (five versions at most).
    const versions = [...this.state.iotPolicyVersions(policy).values()].sort((a, b) => Number(b.id) - Number(a.id))
    return json(200, { policyVersions: versions.map((v) => ({ versionId: v.id, isDefaultVersion: v.id === policy.defaultVersionId, createDate: v.createdAt / 1000 })) })
  }

  private getPolicyVersion (_req: RawRequest, [name, id]: string[]): Reply {
    const found = this.policyVersion(name!, id!)
    if (!('version' in found)) return found
    const { policy, version } = found
    return json(200, {
      policyArn: policy.arn,
      policyName: policy.name,
      policyDocument: version.document,
      policyVersionId: version.id,
      isDefaultVersion: version.id === policy.defaultVersionId,
      creationDate: version.createdAt / 1000,
      lastModifiedDate: version.modifiedAt / 1000,
      generationId: version.generationId
    })
  }

  private deletePolicyVersion (_req: RawRequest, [name, id]: string[]): Reply {
    const found = this.policyVersion(name!, id!)
    if (!('version' in found)) return found
    const { policy, version } = found
    if (version.id === policy.defaultVersionId) {
      return jsonError(409, 'DeleteConflictException', `Cannot delete the default version of a policy; use DeletePolicy (name=${name}, versionId=${id})`)
    }
    this.state.iotPolicyVersions(policy).delete(version.id)
    return json(200, {})
  }

  private setDefaultPolicyVersion (_req: RawRequest, [name, id]: string[]): Reply {
    const found = this.policyVersion(name!, id!)
    if (!('version' in found)) return found
    makeDefault(found.policy, found.version)
    return json(200, {})
  }

  /** A policy and one of its versions, or the error AWS answers when either is missing. */
  private policyVersion (name: string, id: string): { policy: IotPolicy, version: IotPolicyVersion } | Reply {
    const policy = this.state.policies.get(name)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    if (!VERSION_ID.test(id)) return invalid(`policyVersionId ${id} is not valid: it must be a number.`)
    const version = this.state.iotPolicyVersions(policy).get(id)
    if (version === undefined) return notFound(`Policy version not found (name=${name}, versionId=${id})`)
    return { policy, version }
  }

  private attachPolicy (_req: RawRequest, [name]: string[], _q: Map<string, string>, body: Record<string, unknown>): Reply {
    const target = body.target
    if (typeof target !== 'string' || target === '') return invalid('target is missing.')
    const policy = this.state.policies.get(name!)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    if (target.startsWith('arn:') && this.state.certificateByArn(target) === undefined) {
      return notFound(`The target ${target} does not exist (certificate ARNs of this account and region are known here; Cognito identity ids are accepted as they are).`)
    }
    policy.targets.add(target)
    return json(200, {})
  }

  private detachPolicy (_req: RawRequest, [name]: string[], _q: Map<string, string>, body: Record<string, unknown>): Reply {
    const target = body.target
    if (typeof target !== 'string' || target === '') return invalid('target is missing.')
    const policy = this.state.policies.get(name!)
    if (policy === undefined) return notFound(`Policy not found (name=${name})`)
    policy.targets.delete(target)
    return json(200, {})
  }

  private listAttachedPolicies (_req: RawRequest, [target]: string[]): Reply {
    if (target!.startsWith('arn:') && this.state.certificateByArn(target!) === undefined) return notFound(`The target ${target} does not exist.`)
    return json(200, { policies: this.state.policiesOf(target!).map((p) => ({ policyName: p.name, policyArn: p.arn })) })
  }

  // --- Role aliases ----------------------------------------------------------------------------

  private createRoleAlias (_req: RawRequest, [alias]: string[], _q: Map<string, string>, body: Record<string, unknown>): Reply {
    if (!ROLE_ALIAS.test(alias!)) return invalid(`Role alias ${alias} is not valid.`)
    const roleArn = body.roleArn
    if (typeof roleArn !== 'string' || !ROLE_ARN.test(roleArn)) return invalid(`roleArn ${String(roleArn)} is not an IAM role ARN.`)
    const duration = body.credentialDurationSeconds ?? 3600
    if (typeof duration !== 'number' || !Number.isInteger(duration) || duration < 900 || duration > 43_200) {
      return invalid('credentialDurationSeconds must be an integer from 900 to 43200.')
    }
    const existing = this.state.roleAliases.get(alias!)
    if (existing !== undefined) return jsonError(409, 'ResourceAlreadyExistsException', `Role alias ${alias} already exists.`, { resourceId: alias, resourceArn: existing.arn })
    const now = Date.now()
    const entry = { alias: alias!, arn: this.state.iotArn(`rolealias/${alias}`), roleArn, durationSeconds: duration, createdAt: now, modifiedAt: now }
    this.state.roleAliases.set(entry.alias, entry)
    return json(200, { roleAlias: entry.alias, roleAliasArn: entry.arn })
  }

  private describeRoleAlias (_req: RawRequest, [alias]: string[]): Reply {
    const entry = this.state.roleAliases.get(alias!)
    if (entry === undefined) return notFound(`Role alias ${alias} does not exist.`)
    return json(200, {
      roleAliasDescription: {
        roleAlias: entry.alias,
        roleAliasArn: entry.arn,
        roleArn: entry.roleArn,
        owner: this.state.accountId,
        credentialDurationSeconds: entry.durationSeconds,
        creationDate: entry.createdAt / 1000,
        lastModifiedDate: entry.modifiedAt / 1000
      }
    })
  }

  private updateRoleAlias (_req: RawRequest, [alias]: string[], _q: Map<string, string>, body: Record<string, unknown>): Reply {
    const entry = this.state.roleAliases.get(alias!)
    if (entry === undefined) return notFound(`Role alias ${alias} does not exist.`)
    const roleArn = body.roleArn
    if (roleArn !== undefined && (typeof roleArn !== 'string' || !ROLE_ARN.test(roleArn))) return invalid(`roleArn ${String(roleArn)} is not an IAM role ARN.`)
    const duration = body.credentialDurationSeconds
    if (duration !== undefined && (typeof duration !== 'number' || !Number.isInteger(duration) || duration < 900 || duration > 43_200)) {
      return invalid('credentialDurationSeconds must be an integer from 900 to 43200.')
    }
    if (roleArn !== undefined) entry.roleArn = roleArn
    if (duration !== undefined) entry.durationSeconds = duration
    entry.modifiedAt = Date.now()
    return json(200, { roleAlias: entry.alias, roleAliasArn: entry.arn })
  }

  private deleteRoleAlias (_req: RawRequest, [alias]: string[]): Reply {
    if (!this.state.roleAliases.delete(alias!)) return notFound(`Role alias ${alias} does not exist.`)
    return json(200, {})
  }
}

/** The policy's document, modification time and generation become those of `version`. */
function makeDefault (policy: IotPolicy, version: IotPolicyVersion): void {
  policy.defaultVersionId = version.id
  policy.document = version.document
  policy.modifiedAt = Date.now()
  policy.generationId = version.generationId
}

function invalid (message: string): Reply { return jsonError(400, 'InvalidRequestException', message) }
function notFound (message: string): Reply { return jsonError(404, 'ResourceNotFoundException', message) }
function certNotFound (id: string): Reply { return notFound(`The certificate given in the request does not exist (id=${id})`) }

function optionalString (value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function stringRecord (value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v
  }
  return out
}

function sameRecord (a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k])
}

/** JSON with a Statement (object or array): enough to catch a document that is not a policy at all. */
export function isPolicyDocument (text: string): boolean {
  try {
    const doc: unknown = JSON.parse(text)
    return typeof doc === 'object' && doc !== null && 'Statement' in doc && typeof (doc as { Statement: unknown }).Statement === 'object'
  } catch {
    return false
  }
}
