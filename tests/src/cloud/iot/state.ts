import { randomBytes, randomUUID } from 'node:crypto'

/** The control plane's memory: IoT registry and IAM, one account, one region. */

export type CertStatus = 'ACTIVE' | 'INACTIVE' | 'REVOKED'

export interface Thing {
  name: string
  id: string
  arn: string
  typeName: string | undefined
  attributes: Record<string, string>
  version: number
  /** Certificate ids attached (AttachThingPrincipal), with the attachment type. */
  principals: Map<string, 'EXCLUSIVE_THING' | 'NON_EXCLUSIVE_THING'>
}

export interface Certificate {
  id: string
  arn: string
  pem: string
  /** The subject CN: mosquitto's username for this certificate (use_identity_as_username). */
  commonName: string
  status: CertStatus
  createdAt: number
  modifiedAt: number
  notBefore: number
  notAfter: number
  generationId: string
  customerVersion: number
}

export interface IotPolicyVersion { id: string, document: string, createdAt: number, modifiedAt: number, generationId: string }

/**
 * An IoT policy. `document`, `modifiedAt` and `generationId` are always those of the default
 * version. `versions` undefined means the policy has its one first version, '1' (a policy made
 * outside the control plane, as provisionThing's is); `iotPolicyVersions` fills the fields in.
 */
export interface IotPolicy {
  name: string
  arn: string
  document: string
  createdAt: number
  modifiedAt: number
  generationId: string
  targets: Set<string>
  /** Version id → version; ids are '1', '2', ... and never reused. */
  versions?: Map<string, IotPolicyVersion>
  defaultVersionId?: string
  /** The highest version id given so far. */
  lastVersion?: number
}

export interface RoleAlias { alias: string, arn: string, roleArn: string, durationSeconds: number, createdAt: number, modifiedAt: number }

export interface IamRole {
  name: string
  path: string
  id: string
  arn: string
  assumeRolePolicyDocument: string
  description: string | undefined
  maxSessionDuration: number
  createdAt: number
  inlinePolicies: Map<string, string>
  attachedPolicies: Set<string>
}

/** An IAM user or group: only what attaching managed policies needs. */
export interface IamPrincipal {
  name: string
  path: string
  id: string
  arn: string
  createdAt: number
  /** Managed policy ARNs attached (AttachUserPolicy / AttachGroupPolicy). */
  attachedPolicies: Set<string>
}

export interface IamPolicyVersion { id: string, document: string, createdAt: number }

/** A customer managed policy, with up to 5 versions ('v1', 'v2', ...; ids are never reused). */
export interface IamPolicy {
  name: string
  path: string
  id: string
  arn: string
  description: string | undefined
  createdAt: number
  /** The creation time of the newest version (AWS's UpdateDate). */
  updatedAt: number
  versions: Map<string, IamPolicyVersion>
  defaultVersionId: string
  /** The highest version number given so far. */
  lastVersion: number
  /** ARNs of the roles, users and groups it is attached to. */
  attachedTo: Set<string>
}

export class IotState {
  readonly things = new Map<string, Thing>()
  readonly certificates = new Map<string, Certificate>()
  readonly policies = new Map<string, IotPolicy>()
  readonly roleAliases = new Map<string, RoleAlias>()
  readonly roles = new Map<string, IamRole>()
  /** Managed policies by ARN. */
  readonly iamPolicies = new Map<string, IamPolicy>()
  /** IAM users and groups by name: made with addIamUser / addIamGroup (the control plane does not create them). */
  readonly iamUsers = new Map<string, IamPrincipal>()
  readonly iamGroups = new Map<string, IamPrincipal>()

  constructor (readonly region: string, readonly accountId: string) {}

  iotArn (resource: string): string { return `arn:aws:iot:${this.region}:${this.accountId}:${resource}` }
  iamArn (resource: string): string { return `arn:aws:iam::${this.accountId}:${resource}` }

  certificateByArn (arn: string): Certificate | undefined {
    const prefix = this.iotArn('cert/')
    return arn.startsWith(prefix) ? this.certificates.get(arn.slice(prefix.length)) : undefined
  }

  certificateByCommonName (commonName: string): Certificate | undefined {
    for (const cert of this.certificates.values()) if (cert.commonName === commonName) return cert
    return undefined
  }

  /** Names of the things a certificate is attached to. */
  thingsOf (certificateId: string): string[] {
    return [...this.things.values()].filter((thing) => thing.principals.has(certificateId)).map((thing) => thing.name)
  }

  /** Policies attached to a target (certificate ARN, Cognito identity id, thing group ARN). */
  policiesOf (target: string): IotPolicy[] {
    return [...this.policies.values()].filter((policy) => policy.targets.has(target))
  }

  /** An IAM user (as a resident's, to attach the residents' policy to), made without the control plane. */
  addIamUser (name: string, path = '/'): IamPrincipal {
    const user: IamPrincipal = { name, path, id: iamId('AIDA'), arn: this.iamArn(`user${path}${name}`), createdAt: Date.now(), attachedPolicies: new Set() }
    this.iamUsers.set(name, user)
    return user
  }

  /** An IAM group, made without the control plane. */
  addIamGroup (name: string, path = '/'): IamPrincipal {
    const group: IamPrincipal = { name, path, id: iamId('AGPA'), arn: this.iamArn(`group${path}${name}`), createdAt: Date.now(), attachedPolicies: new Set() }
    this.iamGroups.set(name, group)
    return group
  }

  /** The versions of an IoT policy, made explicit for one that still has only its implicit version '1'. */
  iotPolicyVersions (policy: IotPolicy): Map<string, IotPolicyVersion> {
    if (policy.versions === undefined) {
      policy.versions = new Map([['1', { id: '1', document: policy.document, createdAt: policy.createdAt, modifiedAt: policy.modifiedAt, generationId: policy.generationId }]])
      policy.defaultVersionId = '1'
      policy.lastVersion = 1
    }
    return policy.versions
  }

  addThing (name: string, typeName?: string, attributes: Record<string, string> = {}): Thing {
    const thing: Thing = { name, id: randomUUID(), arn: this.iotArn(`thing/${name}`), typeName, attributes, version: 1, principals: new Map() }
    this.things.set(name, thing)
    return thing
  }

  addCertificate (o: { id: string, pem: string, commonName: string, active: boolean, notBefore: number, notAfter: number }): Certificate {
    const now = Date.now()
    const cert: Certificate = {
      id: o.id,
      arn: this.iotArn(`cert/${o.id}`),
      pem: o.pem,
      commonName: o.commonName,
      status: o.active ? 'ACTIVE' : 'INACTIVE',
      createdAt: now,
      modifiedAt: now,
      notBefore: o.notBefore,
      notAfter: o.notAfter,
      generationId: randomUUID(),
      customerVersion: 1
    }
    this.certificates.set(cert.id, cert)
    return cert
  }

  /**
   * mosquitto's ACL file for the current state. One `user` block per ACTIVE certificate that is
   * attached to at least one thing: readwrite `things/<thingName>/#` for each such thing (the
   * scope of the project's IoT policy, `${iot:Connection.Thing.ThingName}`). Certificates that are
   * not ACTIVE, or not attached, get no line: mosquitto then refuses every publish and delivers
   * nothing to them. `extra` is appended verbatim (the WSS front's own block). Each such
   * certificate may also publish the seed's ring topic `doorbell/+/ring` (the seed's doorbell
   * rings there; ours does with `seedTopics`): the stand-in does not evaluate policy documents,
   * and the setup's policy grants exactly its own channel's ring topic.
   */
  renderAcl (extra: string): string {
    const lines = ['# Written by the IoT Core stand-in from its registry; rewritten on every change.', extra.trimEnd(), '']
    for (const cert of this.certificates.values()) {
      if (cert.status !== 'ACTIVE') continue
      const things = this.thingsOf(cert.id)
      if (things.length === 0) continue
      lines.push(`# certificate ${cert.id}`, `user ${cert.commonName}`)
      for (const thing of things) lines.push(`topic readwrite things/${thing}/#`)
      lines.push('topic write doorbell/+/ring', '')
    }
    return lines.join('\n')
  }
}

const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/** IAM unique ids: a 4-letter prefix (AROA roles, ANPA policies, ASIA temporary keys) and 16-17 characters. */
export function iamId (prefix: string, length = 17): string {
  const bytes = randomBytes(length)
  let out = prefix
  for (const byte of bytes) out += UPPER_ALNUM[byte % UPPER_ALNUM.length]
  return out
}

export function isoSeconds (at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z')
}
