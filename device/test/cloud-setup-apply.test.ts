import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DeviceCloudConfig, ViewerCloudConfig } from '@doorbell/core'
import { certificateIdOf, run, type CloudApi, type Certificate } from '../src/cloud-setup/apply'
import { awsCloud, isReadCommand } from '../src/cloud-setup/aws'
import { main, endpointFor, type CliIo } from '../src/cloud-setup/cli'
import { SetupError } from '../src/cloud-setup/errors'
import { resourceNames } from '../src/cloud-setup/names'
import { FILES, type SetupRequest } from '../src/cloud-setup/plan'

const ACCOUNT = '111122223333'
const REGION = 'eu-west-1'

function selfSignedPem (): { cert: string, key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cs-cert-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=AWS IoT Certificate', '-days', '2', '-keyout', join(dir, 'k'), '-out', join(dir, 'c')], { stdio: 'ignore' })
    return { cert: readFileSync(join(dir, 'c'), 'utf8'), key: readFileSync(join(dir, 'k'), 'utf8') }
  } finally { rmSync(dir, { recursive: true, force: true }) }
}

const WRITE = /^(create|update|put|attach|detach|delete|deactivate)/

/**
 * AWS in memory, as far as the setup uses it: the rules that matter for order (a thing with
 * principals, an attached policy, a role with an inline policy, an ACTIVE certificate cannot be
 * deleted), five policy versions at most.
 */
class FakeAws implements CloudApi {
  readonly calls: string[] = []
  channels = new Map<string, { arn: string }>()
  things = new Map<string, { arn: string, attributes: Record<string, string>, principals: Set<string> }>()
  certs = new Map<string, Certificate>()
  iotPolicies = new Map<string, { versions: string[], targets: Set<string> }>()
  aliases = new Map<string, { arn: string, roleArn: string, durationSeconds: number }>()
  roles = new Map<string, { arn: string, trust: string, inline: Map<string, string> }>()
  managed = new Map<string, { name: string, versions: string[], users: Set<string> }>()
  /** A call that throws (AccessDenied) when reached. */
  failOn?: string
  private seq = 0

  private log (name: string): void {
    this.calls.push(name)
    if (this.failOn === name) throw new SetupError(`access denied: ${name}`)
  }

  writes (): string[] { return this.calls.filter((c) => WRITE.test(c)) }
  empty (): boolean {
    return this.channels.size + this.things.size + this.certs.size + this.iotPolicies.size + this.aliases.size + this.roles.size + this.managed.size === 0
  }

  async describeEndpoint (type: string) { this.log('describeEndpoint'); return type === 'iot:Data-ATS' ? 'abc-ats.iot.eu-west-1.amazonaws.com' : 'abc.credentials.iot.eu-west-1.amazonaws.com' }
  async getCallerAccount () { this.log('getCallerAccount'); return null }
  async describeChannel (name: string) { this.log('describeChannel'); return this.channels.get(name) ?? null }
  async createChannel (name: string) {
    this.log('createChannel')
    const c = { arn: `arn:aws:kinesisvideo:${REGION}:${ACCOUNT}:channel/${name}/${++this.seq}` }
    this.channels.set(name, c)
    return c
  }
  async deleteChannel (arn: string) { this.log('deleteChannel'); for (const [k, v] of this.channels) if (v.arn === arn) this.channels.delete(k) }
  async describeThing (name: string) { this.log('describeThing'); const t = this.things.get(name); return t === undefined ? null : { arn: t.arn, attributes: t.attributes } }
  async createThing (name: string, attributes: Record<string, string>) {
    this.log('createThing')
    const t = { arn: `arn:aws:iot:${REGION}:${ACCOUNT}:thing/${name}`, attributes, principals: new Set<string>() }
    this.things.set(name, t)
    return { arn: t.arn }
  }
  async deleteThing (name: string) {
    this.log('deleteThing')
    if ((this.things.get(name)?.principals.size ?? 0) > 0) throw new Error('thing still has principals')
    this.things.delete(name)
  }
  async listThingPrincipals (thing: string) { this.log('listThingPrincipals'); return [...(this.things.get(thing)?.principals ?? [])] }
  async attachThingPrincipal (thing: string, principal: string) { this.log('attachThingPrincipal'); this.things.get(thing)!.principals.add(principal) }
  async detachThingPrincipal (thing: string, principal: string) { this.log('detachThingPrincipal'); this.things.get(thing)?.principals.delete(principal) }
  async describeCertificate (id: string) { this.log('describeCertificate'); const c = this.certs.get(id); return c === undefined ? null : { ...c } }
  async createKeysAndCertificate () {
    this.log('createKeysAndCertificate')
    const { cert, key } = selfSignedPem()
    const id = certificateIdOf(cert)!
    const c = { id, arn: `arn:aws:iot:${REGION}:${ACCOUNT}:cert/${id}`, status: 'ACTIVE', pem: cert }
    this.certs.set(id, c)
    return { ...c, privateKey: key }
  }
  async deactivateCertificate (id: string) { this.log('deactivateCertificate'); this.certs.get(id)!.status = 'INACTIVE' }
  async deleteCertificate (id: string) {
    this.log('deleteCertificate')
    const c = this.certs.get(id)!
    if (c.status === 'ACTIVE') throw new Error('certificate is ACTIVE')
    if ([...this.things.values()].some((t) => t.principals.has(c.arn))) throw new Error('certificate attached to a thing')
    if ([...this.iotPolicies.values()].some((p) => p.targets.has(c.arn))) throw new Error('certificate has policies')
    this.certs.delete(id)
  }
  async getIotPolicy (name: string) { this.log('getIotPolicy'); const p = this.iotPolicies.get(name); return p === undefined ? null : { document: p.versions.at(-1)! } }
  async createIotPolicy (name: string, document: string) { this.log('createIotPolicy'); this.iotPolicies.set(name, { versions: [document], targets: new Set() }) }
  async updateIotPolicy (name: string, document: string) {
    this.log('updateIotPolicy')
    const p = this.iotPolicies.get(name)!
    if (p.versions.length >= 5) p.versions.shift()
    p.versions.push(document)
  }
  async listAttachedIotPolicies (target: string) { this.log('listAttachedIotPolicies'); return [...this.iotPolicies].filter(([, p]) => p.targets.has(target)).map(([n]) => n) }
  async attachIotPolicy (name: string, target: string) { this.log('attachIotPolicy'); this.iotPolicies.get(name)!.targets.add(target) }
  async detachIotPolicy (name: string, target: string) { this.log('detachIotPolicy'); this.iotPolicies.get(name)?.targets.delete(target) }
  async deleteIotPolicy (name: string) {
    this.log('deleteIotPolicy')
    if ((this.iotPolicies.get(name)?.targets.size ?? 0) > 0) throw new Error('policy attached')
    this.iotPolicies.delete(name)
  }
  async describeRoleAlias (alias: string) { this.log('describeRoleAlias'); return this.aliases.get(alias) ?? null }
  async createRoleAlias (alias: string, roleArn: string, durationSeconds: number) {
    this.log('createRoleAlias')
    const a = { arn: `arn:aws:iot:${REGION}:${ACCOUNT}:rolealias/${alias}`, roleArn, durationSeconds }
    this.aliases.set(alias, a)
    return { arn: a.arn }
  }
  async updateRoleAlias (alias: string, roleArn: string, durationSeconds: number) { this.log('updateRoleAlias'); Object.assign(this.aliases.get(alias)!, { roleArn, durationSeconds }) }
  async deleteRoleAlias (alias: string) { this.log('deleteRoleAlias'); this.aliases.delete(alias) }
  async getRole (name: string) { this.log('getRole'); const r = this.roles.get(name); return r === undefined ? null : { arn: r.arn, trust: r.trust } }
  async createRole (name: string, trust: string) {
    this.log('createRole')
    const r = { arn: `arn:aws:iam::${ACCOUNT}:role/${name}`, trust, inline: new Map<string, string>() }
    this.roles.set(name, r)
    return { arn: r.arn }
  }
  async updateRoleTrust (name: string, trust: string) { this.log('updateRoleTrust'); this.roles.get(name)!.trust = trust }
  async getRolePolicy (role: string, policyName: string) { this.log('getRolePolicy'); return this.roles.get(role)?.inline.get(policyName) ?? null }
  async putRolePolicy (role: string, policyName: string, document: string) { this.log('putRolePolicy'); this.roles.get(role)!.inline.set(policyName, document) }
  async deleteRolePolicy (role: string, policyName: string) { this.log('deleteRolePolicy'); this.roles.get(role)?.inline.delete(policyName) }
  async deleteRole (name: string) {
    this.log('deleteRole')
    if ((this.roles.get(name)?.inline.size ?? 0) > 0) throw new Error('role has inline policies')
    this.roles.delete(name)
  }
  async getManagedPolicy (arn: string) { this.log('getManagedPolicy'); const p = this.managed.get(arn); return p === undefined ? null : { arn, document: p.versions.at(-1)! } }
  async createManagedPolicy (name: string, document: string) {
    this.log('createManagedPolicy')
    const arn = `arn:aws:iam::${ACCOUNT}:policy/${name}`
    this.managed.set(arn, { name, versions: [document], users: new Set() })
    return { arn }
  }
  async updateManagedPolicy (arn: string, document: string) {
    this.log('updateManagedPolicy')
    const p = this.managed.get(arn)!
    if (p.versions.length >= 5) p.versions.shift()
    p.versions.push(document)
  }
  async deleteManagedPolicy (arn: string) { this.log('deleteManagedPolicy'); this.managed.delete(arn) }
}

function rig (t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'cloud-setup-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const aws = new FakeAws()
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = { env: {}, cwd: dir, stdout: (s) => { out.push(s) }, stderr: (s) => { err.push(s) }, cloud: () => aws }
  const cli = async (...args: string[]): Promise<number> => { out.length = 0; err.length = 0; return await main(args, io) }
  return { dir, aws, out, err, io, cli, text: () => out.join('\n'), errors: () => err.join('\n') }
}

const mode = (path: string): number => statSync(path).mode & 0o777

test('setup on an empty account: creates everything, keys 0600 in a 0700 folder, both configs valid', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0, r.errors())
  const dev = join(r.dir, 'data/cloud/front')
  assert.equal(mode(dev), 0o700)
  assert.equal(mode(join(dev, FILES.key)), 0o600)
  assert.equal(mode(join(dev, FILES.cert)), 0o600)
  const deviceConfig = DeviceCloudConfig.parse(JSON.parse(readFileSync(join(dev, FILES.deviceConfig), 'utf8')))
  assert.equal(deviceConfig.thingName, 'doorbell-home-front')
  assert.equal(deviceConfig.certFile, join(dev, FILES.cert))
  assert.equal(readFileSync(deviceConfig.certFile, 'utf8'), [...r.aws.certs.values()][0]!.pem)
  const viewer = ViewerCloudConfig.parse(JSON.parse(readFileSync(join(r.dir, 'data/cloud', FILES.viewerConfig), 'utf8')))
  assert.deepEqual(viewer.devices, [{ deviceId: 'front', thingName: 'doorbell-home-front', channelName: 'doorbell-home-front' }])
  // The channel came first: its ARN told the account.
  assert.equal(r.aws.writes()[0], 'createChannel')
  assert.deepEqual(r.aws.writes(), ['createChannel', 'createThing', 'createKeysAndCertificate', 'attachThingPrincipal', 'createRole', 'putRolePolicy', 'createRoleAlias', 'createIotPolicy', 'attachIotPolicy', 'createManagedPolicy'])
  const [cert] = [...r.aws.certs.values()]
  assert.deepEqual([...r.aws.iotPolicies.get('doorbell-home-front')!.targets], [cert!.arn])
  assert.ok(r.aws.things.get('doorbell-home-front')!.principals.has(cert!.arn))
  assert.equal(r.aws.aliases.get('doorbell-home-front-kvs')!.roleArn, `arn:aws:iam::${ACCOUNT}:role/doorbell-home-front-kvs`)
  assert.ok(r.aws.roles.get('doorbell-home-front-kvs')!.inline.get('kvs-master')!.includes(r.aws.channels.get('doorbell-home-front')!.arn))
  // What to do next, with the JSON to paste.
  assert.match(r.text(), /"cloud": \{/)
  assert.match(r.text(), /aws iam attach-user-policy --user-name <resident> --policy-arn arn:aws:iam::111122223333:policy\/doorbell-home-viewers/)
})

test('setup twice: the second run plans all "exists" and makes no write call', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0)
  const before = readFileSync(join(r.dir, 'data/cloud/front', FILES.key), 'utf8')
  r.aws.calls.length = 0
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), [])
  assert.match(r.text(), /Nothing to change\./)
  assert.match(r.text(), /Nothing changed: everything was already as it should be/)
  assert.doesNotMatch(r.text(), /\+ create|~ update|\+ write/)
  assert.equal(readFileSync(join(r.dir, 'data/cloud/front', FILES.key), 'utf8'), before, 'the key is kept')
})

test('dry run on an empty account: a plan of creates, only read calls, no files', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--dry-run', '--show-policies'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), [])
  assert.ok(r.aws.calls.every((c) => /^(describe|get|list)/.test(c)), r.aws.calls.join())
  assert.equal(existsSync(join(r.dir, 'data')), false)
  const text = r.text()
  for (const what of ['KVS signaling channel', 'IoT thing', 'certificate and key', 'IAM role', 'inline role policy', 'IoT role alias', 'IoT policy', 'IoT policy attachment', 'IAM managed policy \\(residents\\)']) {
    assert.match(text, new RegExp(`\\+ create\\s+${what}\\s`), what)
  }
  assert.match(text, /"iot:AssumeRoleWithCertificate"/, '--show-policies prints the documents')
  assert.match(text, /11 changes would be made/)
})

test('a second doorbell of the home: the viewer config lists both, the residents\' policy covers both', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0)
  assert.equal(await r.cli('--home', 'home', '--device', 'back'), 0, r.errors())
  const viewer = ViewerCloudConfig.parse(JSON.parse(readFileSync(join(r.dir, 'data/cloud', FILES.viewerConfig), 'utf8')))
  assert.deepEqual(viewer.devices.map((d) => d.deviceId), ['front', 'back'])
  const policy = r.aws.managed.get(`arn:aws:iam::${ACCOUNT}:policy/doorbell-home-viewers`)!
  assert.equal(policy.versions.length, 2)
  assert.match(policy.versions.at(-1)!, /doorbell-home-front\/ring.*doorbell-home-back\/ring/)
  // Teardown of one leaves the policy (without it) and the other's entry.
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--teardown'), 0, r.errors())
  assert.ok(r.aws.managed.has(`arn:aws:iam::${ACCOUNT}:policy/doorbell-home-viewers`))
  assert.doesNotMatch(r.aws.managed.get(`arn:aws:iam::${ACCOUNT}:policy/doorbell-home-viewers`)!.versions.at(-1)!, /doorbell-home-front/)
  const after = ViewerCloudConfig.parse(JSON.parse(readFileSync(join(r.dir, 'data/cloud', FILES.viewerConfig), 'utf8')))
  assert.deepEqual(after.devices.map((d) => d.deviceId), ['back'])
  // The last one takes the policy and the viewer config with it.
  assert.equal(await r.cli('--home', 'home', '--device', 'back', '--teardown'), 0, r.errors())
  assert.ok(r.aws.empty(), 'nothing left in AWS')
  assert.deepEqual(readdirSync(join(r.dir, 'data/cloud')), [])
})

test('teardown: removes everything in order; a dry run of it changes nothing; a second teardown finds nothing', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0)
  r.aws.calls.length = 0
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--teardown', '--dry-run'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), [])
  assert.match(r.text(), /- delete\s+IoT thing\s+doorbell-home-front/)
  assert.ok(existsSync(join(r.dir, 'data/cloud/front', FILES.key)))
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--teardown'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), [
    'detachIotPolicy', 'detachThingPrincipal', 'deactivateCertificate', 'deleteCertificate', 'deleteThing', 'deleteIotPolicy',
    'deleteRoleAlias', 'deleteRolePolicy', 'deleteRole', 'deleteChannel', 'deleteManagedPolicy'
  ])
  assert.ok(r.aws.empty())
  assert.equal(existsSync(join(r.dir, 'data/cloud/front')), false)
  assert.equal(existsSync(join(r.dir, 'data/cloud', FILES.viewerConfig)), false)
  assert.match(r.text(), /take the "cloud" section out/)
  r.aws.calls.length = 0
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--teardown'), 0)
  assert.deepEqual(r.aws.writes(), [])
  assert.match(r.text(), /Nothing to change\./)
})

test('a failure half-way: exit 2, what failed and what was done; the key is kept; the next run carries on', async (t) => {
  const r = rig(t)
  r.aws.failOn = 'createIotPolicy'
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 2)
  assert.match(r.errors(), /cloud-setup: create IoT policy doorbell-home-front failed: access denied: createIotPolicy/)
  assert.match(r.errors(), /6 changes were made before it; .*running the command again carries on/)
  assert.ok(existsSync(join(r.dir, 'data/cloud/front', FILES.key)), 'the key AWS will never show again is kept')
  assert.equal(existsSync(join(r.dir, 'data/cloud/front', FILES.deviceConfig)), false, 'no config for a half-made setup')
  assert.equal(existsSync(join(r.dir, 'data/cloud', FILES.viewerConfig)), false)
  r.aws.failOn = undefined
  r.aws.calls.length = 0
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), ['createIotPolicy', 'attachIotPolicy', 'createManagedPolicy'], 'the same certificate is used')
  assert.equal(r.aws.certs.size, 1)
})

test('a lost key: a new certificate; the old one stays attached (said so) until teardown removes both', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0)
  rmSync(join(r.dir, 'data/cloud/front', FILES.key))
  r.aws.calls.length = 0
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), ['createKeysAndCertificate', 'attachThingPrincipal', 'attachIotPolicy'])
  assert.match(r.text(), /is attached to doorbell-home-front but not held in/)
  assert.equal(r.aws.certs.size, 2)
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--teardown'), 0, r.errors())
  assert.ok(r.aws.empty())
})

test('a certificate held locally but detached from the thing is attached again (found by its SHA-256 id)', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0)
  const thing = r.aws.things.get('doorbell-home-front')!
  const [arn] = [...thing.principals]
  thing.principals.clear()
  r.aws.calls.length = 0
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 0, r.errors())
  assert.deepEqual(r.aws.writes(), ['attachThingPrincipal'])
  assert.deepEqual([...thing.principals], [arn])
})

test('bad arguments and refusals: exit 2 with a message, nothing written', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--device', 'front'), 2)
  assert.match(r.errors(), /--home is required/)
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--region', 'Europe'), 2)
  assert.match(r.errors(), /--region "Europe": an AWS region/)
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--bogus'), 2)
  assert.match(r.errors(), /Unknown option '--bogus'/)
  assert.equal(await r.cli('--home', 'home', '--device', 'front', '--endpoint-kinesis-video', 'http://127.0.0.1:1'), 2)
  assert.match(r.errors(), /take an https:\/\/ URL/)
  r.aws.failOn = 'describeEndpoint'
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 2)
  assert.match(r.errors(), /access denied: describeEndpoint/)
  assert.deepEqual(r.aws.writes(), [])
  assert.equal(existsSync(join(r.dir, 'data')), false)
  r.aws.failOn = undefined
  mkdirSync(join(r.dir, 'data/cloud'), { recursive: true })
  writeFileSync(join(r.dir, 'data/cloud', FILES.viewerConfig), '{ not json')
  assert.equal(await r.cli('--home', 'home', '--device', 'front'), 2)
  assert.match(r.errors(), /viewer-cloud\.json is not JSON/)
  assert.deepEqual(r.aws.writes(), [])
})

test('--help prints the usage', async (t) => {
  const r = rig(t)
  assert.equal(await r.cli('--help'), 0)
  assert.match(r.text(), /^usage: npm run cloud-setup --workspace device -- --home <homeId> --device <deviceId>/)
})

test('endpoints: the flag, else the SDK\'s service variable, else AWS_ENDPOINT_URL', () => {
  assert.equal(endpointFor('kinesisvideo', 'https://a', { AWS_ENDPOINT_URL_KINESIS_VIDEO: 'https://b' }), 'https://a')
  assert.equal(endpointFor('kinesisvideo', undefined, { AWS_ENDPOINT_URL_KINESIS_VIDEO: 'https://b', AWS_ENDPOINT_URL: 'https://c' }), 'https://b')
  assert.equal(endpointFor('iot', undefined, { AWS_ENDPOINT_URL_KINESIS_VIDEO: 'https://b', AWS_ENDPOINT_URL: 'https://c' }), 'https://c')
  assert.equal(endpointFor('iam', undefined, { AWS_ENDPOINT_URL_IAM: 'https://d', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }), undefined)
})

test('certificateIdOf: the SHA-256 of the DER, as AWS IoT names certificates', () => {
  const { cert } = selfSignedPem()
  const der = Buffer.from(cert.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  assert.equal(certificateIdOf(cert), createHash('sha256').update(der).digest('hex'))
  assert.equal(certificateIdOf('nope'), null)
})

test('the SDK layer: a dry run refuses any write command before it is sent; not-found is null; access denied says so', async (t) => {
  const requests: string[] = []
  let answer: { status: number, type: string } = { status: 404, type: 'ResourceNotFoundException' }
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    req.resume()
    req.on('end', () => {
      res.writeHead(answer.status, { 'content-type': 'application/json', 'x-amzn-errortype': answer.type })
      res.end(JSON.stringify({ message: `stand-in says ${answer.type}` }))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => { server.close() })
  const port = (server.address() as { port: number }).port
  process.env.AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'
  process.env.AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
  const seen: string[] = []
  const api = awsCloud({ region: REGION, endpoints: { kinesisvideo: `http://127.0.0.1:${port}`, iot: `http://127.0.0.1:${port}`, iam: `http://127.0.0.1:${port}` }, readOnly: true, onCommand: (s, c) => { seen.push(`${s}:${c}`) } })
  t.after(() => { api.destroy() })
  assert.equal(await api.describeChannel('doorbell-home-front'), null)
  assert.deepEqual(seen, ['kinesisvideo:DescribeSignalingChannel'])
  await assert.rejects(api.createChannel('doorbell-home-front'), (err: Error) => err instanceof SetupError && /dry run: kinesisvideo CreateSignalingChannel would change something and was not sent/.test(err.message))
  await assert.rejects(api.attachIotPolicy('p', 'arn'), /dry run: iot AttachPolicy/)
  assert.equal(requests.length, 1, 'the refused commands never left')
  answer = { status: 403, type: 'AccessDeniedException' }
  await assert.rejects(api.describeChannel('doorbell-home-front'), (err: Error) => err instanceof SetupError && /^access denied: kinesisvideo DescribeSignalingChannel/.test(err.message))
  answer = { status: 403, type: 'UnrecognizedClientException' }
  await assert.rejects(api.describeThing('x'), /AWS refused the credentials for iot DescribeThing/)
  assert.ok(isReadCommand('ListAttachedPolicies') && isReadCommand('GetRole') && !isReadCommand('AttachPolicy') && !isReadCommand('PutRolePolicy'))
})

test('run(): setup then teardown through the plan, straight (no CLI)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cloud-setup-run-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const aws = new FakeAws()
  const r: SetupRequest = { names: resourceNames('flat', 'door'), region: REGION, out: dir }
  const first = await run(aws, r, { mode: 'setup', dryRun: false })
  assert.equal(first.applied.length, 11)
  const again = await run(aws, r, { mode: 'setup', dryRun: false })
  assert.equal(again.applied.length, 0)
  const down = await run(aws, r, { mode: 'teardown', dryRun: false })
  assert.ok(down.applied.length > 0)
  assert.ok(aws.empty())
})
