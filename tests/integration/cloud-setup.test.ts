/**
 * The cloud setup command (device/src/cloud-setup) against the cloud stand-ins: the IoT Core
 * stand-in (IoT and IAM control plane, mosquitto with mutual TLS, the credentials provider) and
 * the KVS emulator, through the unmodified AWS SDK v3 clients. Tested against stand-ins, not AWS.
 *
 * The command runs in this process (its `main`, with every SDK command recorded) and once as the
 * npm script in a child process. Node trusts the stand-ins' CA through trustCa here, and through
 * NODE_EXTRA_CA_CERTS in the child.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { DescribeSignalingChannelCommand, GetSignalingChannelEndpointCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'
import { DescribeRoleAliasCommand, DescribeThingCommand, GetPolicyCommand, IoTClient } from '@aws-sdk/client-iot'
import { AttachGroupPolicyCommand, AttachUserPolicyCommand, GetPolicyCommand as IamGetPolicyCommand, GetPolicyVersionCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam'
import { DeviceCloudConfig, ViewerCloudConfig } from '@doorbell/core'
import { main, type CliIo } from '../../device/src/cloud-setup/cli'
import { awsCloud, isReadCommand } from '../../device/src/cloud-setup/aws'
import { Pki } from '../src/cloud/pki'
import { CredentialStore, type AwsCredential } from '../src/cloud/sigv4'
import { trustCa } from '../src/cloud/trust'
import { IotStandIn } from '../src/cloud/iot'
import { KvsEmulator } from '../src/cloud/kvs/emulator'

const TEST_TIMEOUT = 60_000
const REGION = 'eu-west-1'
const ACCOUNT = '210987654321'
const ADMIN: AwsCredential = { accessKeyId: 'AKIACLOUDSETUPADMIN1', secretAccessKey: 'admin-secret-key-for-the-cloud-setup-test', principal: 'user/setup' }
const HOME = 'maple'
const REPO = fileURLToPath(new URL('../..', import.meta.url))

let pki: Pki
let store: CredentialStore
let dir: string
let caFile: string
let iot: IotStandIn
let kvs: KvsEmulator
let untrust: () => void
/** Every SDK command the setup sent, as service:Command. */
const sent: string[] = []

before(async () => {
  pki = await Pki.create()
  store = new CredentialStore()
  store.add(ADMIN)
  untrust = trustCa(pki.serverCaPem)
  dir = await mkdtemp(join(tmpdir(), 'cloud-setup-'))
  caFile = join(dir, 'stand-in-ca.pem')
  await writeFile(caFile, pki.serverCaPem)
  iot = await IotStandIn.start({ pki, store, dir: join(dir, 'iot'), region: REGION, accountId: ACCOUNT })
  kvs = await KvsEmulator.start({ pki, store, region: REGION, accountId: ACCOUNT })
  // The default credential chain of the SDK reads these (as it would a person's shell).
  process.env.AWS_ACCESS_KEY_ID = ADMIN.accessKeyId
  process.env.AWS_SECRET_ACCESS_KEY = ADMIN.secretAccessKey
  process.env.AWS_EC2_METADATA_DISABLED = 'true'
})

after(async () => {
  await kvs?.stop()
  await iot?.stop()
  untrust?.()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

const endpointsEnv = (): Record<string, string> => ({
  AWS_ENDPOINT_URL_KINESIS_VIDEO: kvs.endpoint,
  AWS_ENDPOINT_URL_IOT: iot.controlEndpoint,
  AWS_ENDPOINT_URL_IAM: iot.controlEndpoint
})

/** The command in this process; its output and exit code, and the commands it sent. */
async function setup (...args: string[]): Promise<{ code: number, out: string, err: string, commands: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const from = sent.length
  const io: CliIo = {
    env: endpointsEnv(),
    cwd: dir,
    stdout: (s) => { out.push(s) },
    stderr: (s) => { err.push(s) },
    cloud: (o) => awsCloud({ ...o, conflictRetryMs: 50, onCommand: (service, command) => { sent.push(`${service}:${command}`) } })
  }
  const code = await main(['--region', REGION, '--ca-file', caFile, ...args], io)
  return { code, out: out.join('\n'), err: err.join('\n'), commands: sent.slice(from) }
}

const writes = (commands: string[]): string[] => commands.filter((c) => !isReadCommand(c.split(':')[1]!))

function clients (): { kvs: KinesisVideoClient, iot: IoTClient, iam: IAMClient, destroy: () => void } {
  const common = { region: REGION, credentials: ADMIN, maxAttempts: 1 }
  const c = { kvs: new KinesisVideoClient({ ...common, endpoint: kvs.endpoint }), iot: new IoTClient({ ...common, endpoint: iot.controlEndpoint }), iam: new IAMClient({ ...common, endpoint: iot.controlEndpoint }) }
  return { ...c, destroy: () => { c.kvs.destroy(); c.iot.destroy(); c.iam.destroy() } }
}

async function notFound (p: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(p, (err: Error) => ['ResourceNotFoundException', 'NoSuchEntityException'].includes(err.name), `${what} should be gone`)
}

/** GET on the credentials provider with the thing's certificate: temporary credentials for the role alias's role. */
async function kvsCredentials (cfg: DeviceCloudConfig): Promise<{ accessKeyId: string, secretAccessKey: string, sessionToken: string, expiration: Date }> {
  const [host, port] = cfg.credentialsEndpoint.split(':')
  const req = httpsRequest({
    host,
    port: Number(port ?? 443),
    path: `/role-aliases/${cfg.roleAlias}/credentials`,
    cert: readFileSync(cfg.certFile),
    key: readFileSync(cfg.keyFile),
    ca: readFileSync(cfg.caFile!),
    headers: { 'x-amzn-iot-thingname': cfg.thingName }
  })
  req.end()
  const [res] = await once(req, 'response')
  let body = ''
  for await (const chunk of res) body += String(chunk)
  assert.equal(res.statusCode, 200, body)
  const c = JSON.parse(body).credentials
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiration: new Date(c.expiration) }
}

/** `npm run cloud-setup --workspace device -- …` from the repository root, trusting the stand-ins' CA as a person's shell would. */
async function npmRun (env: Record<string, string>, ...args: string[]): Promise<{ code: number | null, out: string, err: string }> {
  const child = spawn('npm', ['run', '--silent', 'cloud-setup', '--workspace', 'device', '--', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH!, HOME: dir, NODE_EXTRA_CA_CERTS: caFile, AWS_EC2_METADATA_DISABLED: 'true', ...endpointsEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += String(d) })
  child.stderr.on('data', (d) => { err += String(d) })
  const [code] = await once(child, 'exit')
  return { code, out, err }
}

describe('cloud setup against the stand-ins', () => {
  test('dry run on an empty account: a plan of creates, only read calls, nothing written', { timeout: TEST_TIMEOUT }, async () => {
    const r = await setup('--home', HOME, '--device', 'front', '--dry-run')
    assert.equal(r.code, 0, r.err)
    assert.deepEqual(writes(r.commands), [])
    assert.ok(r.commands.length > 0)
    for (const what of ['KVS signaling channel', 'IoT thing', 'certificate and key', 'IAM role', 'inline role policy', 'IoT role alias', 'IoT policy', 'IoT policy attachment']) {
      assert.match(r.out, new RegExp(`\\+ create\\s+${what}\\s`), what)
    }
    assert.match(r.out, /\+ create\s+IAM managed policy \(residents\)\s+doorbell-maple-viewers/)
    assert.match(r.out, /11 changes would be made/)
    assert.equal(existsSync(join(dir, 'data')), false)
    assert.equal(iot.state.things.size + iot.state.roles.size + iot.state.iamPolicies.size, 0)
  })

  test('apply on an empty account creates everything and writes both configs', { timeout: TEST_TIMEOUT }, async () => {
    const first = await setup('--home', HOME, '--device', 'front')
    assert.equal(first.code, 0, first.err)
    assert.deepEqual(writes(first.commands), [
      'kinesisvideo:CreateSignalingChannel', 'iot:CreateThing', 'iot:CreateKeysAndCertificate', 'iot:AttachThingPrincipal',
      'iam:CreateRole', 'iam:PutRolePolicy', 'iot:CreateRoleAlias', 'iot:CreatePolicy', 'iot:AttachPolicy', 'iam:CreatePolicy'
    ])
    assert.match(first.out, /"cloud": \{/)
    assert.match(first.out, new RegExp(`--policy-arn arn:aws:iam::${ACCOUNT}:policy/doorbell-maple-viewers`))

    const folder = join(dir, 'data/cloud/front')
    assert.equal(statSync(folder).mode & 0o777, 0o700)
    for (const f of ['certificate.pem', 'private-key.pem']) assert.equal(statSync(join(folder, f)).mode & 0o777, 0o600, f)
    const cfg = DeviceCloudConfig.parse(JSON.parse(readFileSync(join(folder, 'device-cloud.json'), 'utf8')))
    assert.equal(cfg.thingName, 'doorbell-maple-front')
    assert.equal(cfg.iotEndpoint, `${iot.dataHost}:${iot.dataPort}`)
    assert.equal(cfg.credentialsEndpoint, iot.credentialsHost)
    assert.equal(cfg.kvsEndpoint, kvs.endpoint)
    assert.equal(cfg.caFile, caFile)
    const viewer = ViewerCloudConfig.parse(JSON.parse(readFileSync(join(dir, 'data/cloud/viewer-cloud.json'), 'utf8')))
    assert.deepEqual(viewer.devices, [{ deviceId: 'front', thingName: 'doorbell-maple-front', channelName: 'doorbell-maple-front' }])

    // What AWS (the stand-in) now holds.
    const thing = iot.state.things.get('doorbell-maple-front')!
    assert.equal(thing.principals.size, 1)
    const [certId] = [...thing.principals.keys()]
    assert.equal(iot.state.certificates.get(certId!)!.status, 'ACTIVE')
    assert.deepEqual(iot.state.policiesOf(iot.state.certificates.get(certId!)!.arn).map((p) => p.name), ['doorbell-maple-front'])
    assert.equal(iot.state.roleAliases.get('doorbell-maple-front-kvs')!.roleArn, iot.state.roles.get('doorbell-maple-front-kvs')!.arn)
    const channelArn = kvs.createChannel('doorbell-maple-front') // exists: answers its ARN
    assert.match(iot.state.roles.get('doorbell-maple-front-kvs')!.inlinePolicies.get('kvs-master')!, new RegExp(channelArn.replace(/[/.]/g, '\\$&')))
  })

  test('a second run plans all "exists" and sends no write', { timeout: TEST_TIMEOUT }, async () => {
    const second = await setup('--home', HOME, '--device', 'front')
    assert.equal(second.code, 0, second.err)
    assert.deepEqual(writes(second.commands), [], 'no create, put, attach or update the second time')
    assert.match(second.out, /Nothing to change\./)
    assert.doesNotMatch(second.out, /\+ create|~ update|\+ write/)
  })

  test('the written device config works: MQTT over mutual TLS as its thing, KVS credentials through its role alias', { timeout: TEST_TIMEOUT }, async () => {
    const cfg = DeviceCloudConfig.parse(JSON.parse(readFileSync(join(dir, 'data/cloud/front/device-cloud.json'), 'utf8')))
    const client = await mqtt.connectAsync(`mqtts://${cfg.iotEndpoint}`, {
      clientId: cfg.thingName,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ca: readFileSync(cfg.caFile!),
      cert: readFileSync(cfg.certFile),
      key: readFileSync(cfg.keyFile)
    })
    try {
      const topic = `things/${cfg.thingName}/ring`
      await client.subscribeAsync(topic, { qos: 1 })
      const received = new Promise<string>((resolve) => { client.on('message', (t, payload) => { if (t === topic) resolve(payload.toString()) }) })
      await client.publishAsync(topic, JSON.stringify({ ring: 1 }), { qos: 1 })
      assert.equal(await received, JSON.stringify({ ring: 1 }))
      assert.deepEqual(iot.refusals, [], 'the stand-in kept the connection (client id is the thing\'s name, certificate ACTIVE and attached)')
    } finally {
      await client.endAsync()
    }

    const credentials = await kvsCredentials(cfg)
    const asDevice = new KinesisVideoClient({ region: cfg.region, endpoint: cfg.kvsEndpoint, credentials, maxAttempts: 1 })
    try {
      const channel = await asDevice.send(new DescribeSignalingChannelCommand({ ChannelName: cfg.channelName }))
      assert.equal(channel.ChannelInfo?.ChannelType, 'SINGLE_MASTER')
      const endpoint = await asDevice.send(new GetSignalingChannelEndpointCommand({ ChannelARN: channel.ChannelInfo!.ChannelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS'], Role: 'MASTER' } }))
      assert.ok(endpoint.ResourceEndpointList?.some((e) => e.Protocol === 'WSS'))
    } finally {
      asDevice.destroy()
    }
  })

  test('a second doorbell of the home joins the viewer config and the residents\' policy', { timeout: TEST_TIMEOUT }, async () => {
    const r = await setup('--home', HOME, '--device', 'back')
    assert.equal(r.code, 0, r.err)
    assert.ok(writes(r.commands).includes('iam:CreatePolicyVersion'), 'the residents\' policy gets a new version')
    const viewer = ViewerCloudConfig.parse(JSON.parse(readFileSync(join(dir, 'data/cloud/viewer-cloud.json'), 'utf8')))
    assert.deepEqual(viewer.devices.map((d) => d.deviceId), ['front', 'back'])

    // The new version is the default, and the document AWS (the stand-in) answers for it covers both doorbells.
    const c = clients()
    try {
      const PolicyArn = `arn:aws:iam::${ACCOUNT}:policy/doorbell-${HOME}-viewers`
      const policy = await c.iam.send(new IamGetPolicyCommand({ PolicyArn }))
      assert.equal(policy.Policy?.DefaultVersionId, 'v2')
      const version = await c.iam.send(new GetPolicyVersionCommand({ PolicyArn, VersionId: 'v2' }))
      const document = decodeURIComponent(version.PolicyVersion?.Document ?? '')
      for (const device of ['front', 'back']) assert.match(document, new RegExp(`doorbell-${HOME}-${device}`), device)
    } finally {
      c.destroy()
    }
  })

  test('the npm script in a child process: no credentials, unknown keys, a bad id: exit 2 with the reason', { timeout: TEST_TIMEOUT }, async () => {
    const out = join(dir, 'data/cloud')
    const bare = await npmRun({}, '--home', HOME, '--device', 'side', '--region', REGION, '--out', out)
    assert.equal(bare.code, 2)
    assert.match(bare.err, /^cloud-setup: no AWS credentials found/m)
    const wrong = await npmRun({ AWS_ACCESS_KEY_ID: 'AKIAUNKNOWNKEY000001', AWS_SECRET_ACCESS_KEY: 'not-a-key-the-stand-in-knows-000000' }, '--home', HOME, '--device', 'side', '--region', REGION, '--out', out)
    assert.equal(wrong.code, 2)
    assert.match(wrong.err, /^cloud-setup: AWS refused the credentials/m)
    const bad = await npmRun({}, '--home', 'my home', '--device', 'side')
    assert.equal(bad.code, 2)
    assert.match(bad.err, /--home "my home": an id is/)
    assert.equal(existsSync(join(out, 'side')), false)
  })

  test('the npm script in a child process (NODE_EXTRA_CA_CERTS): --dry-run for a third doorbell changes nothing', { timeout: TEST_TIMEOUT }, async () => {
    const before = { things: iot.state.things.size, certs: iot.state.certificates.size, roles: iot.state.roles.size }
    const out = join(dir, 'data/cloud')
    const dry = await npmRun({ AWS_ACCESS_KEY_ID: ADMIN.accessKeyId, AWS_SECRET_ACCESS_KEY: ADMIN.secretAccessKey }, '--home', HOME, '--device', 'side', '--region', REGION, '--out', out, '--dry-run')
    assert.equal(dry.code, 0, dry.err)
    assert.match(dry.out, /\+ create\s+IoT thing\s+doorbell-maple-side/)
    // The account comes from another doorbell's channel, so the residents' policy is found and gains this one.
    assert.match(dry.out, /~ update\s+IAM managed policy \(residents\)\s+doorbell-maple-viewers\s+\(now 3 doorbells/)
    assert.deepEqual({ things: iot.state.things.size, certs: iot.state.certificates.size, roles: iot.state.roles.size }, before)
    assert.equal(existsSync(join(out, 'side')), false)
  })

  test('teardown leaves nothing: describe calls answer not found, local files gone', { timeout: TEST_TIMEOUT }, async () => {
    const dry = await setup('--home', HOME, '--device', 'back', '--teardown', '--dry-run')
    assert.equal(dry.code, 0, dry.err)
    assert.deepEqual(writes(dry.commands), [])
    assert.match(dry.out, /- delete\s+IoT thing\s+doorbell-maple-back/)

    const back = await setup('--home', HOME, '--device', 'back', '--teardown')
    assert.equal(back.code, 0, back.err)
    assert.ok(writes(back.commands).includes('iam:CreatePolicyVersion'), 'the residents\' policy gets a version without back')
    assert.ok(iot.state.iamPolicies.size === 1, 'the residents\' policy stays while front remains')
    const residents = [...iot.state.iamPolicies.values()][0]!
    assert.deepEqual([...residents.versions.keys()], ['v1', 'v2', 'v3'])
    assert.equal(residents.defaultVersionId, 'v3')

    // The residents did what the setup told them: the policy is attached to a user and a group.
    const alice = iot.state.addIamUser('alice')
    const household = iot.state.addIamGroup('household')
    const iam = new IAMClient({ region: REGION, credentials: ADMIN, endpoint: iot.controlEndpoint, maxAttempts: 1 })
    try {
      await iam.send(new AttachUserPolicyCommand({ UserName: alice.name, PolicyArn: residents.arn }))
      await iam.send(new AttachGroupPolicyCommand({ GroupName: household.name, PolicyArn: residents.arn }))
    } finally {
      iam.destroy()
    }

    const front = await setup('--home', HOME, '--device', 'front', '--teardown')
    assert.equal(front.code, 0, front.err)
    // AWS refuses the first DeletePolicy (attached, older versions): the setup detaches, deletes v1 and v2, and deletes again.
    assert.deepEqual(writes(front.commands), [
      'iot:DetachPolicy', 'iot:DetachThingPrincipal', 'iot:UpdateCertificate', 'iot:DeleteCertificate', 'iot:DeleteThing', 'iot:DeletePolicy',
      'iot:DeleteRoleAlias', 'iam:DeleteRolePolicy', 'iam:DeleteRole', 'kinesisvideo:DeleteSignalingChannel',
      'iam:DeletePolicy', 'iam:DetachUserPolicy', 'iam:DetachGroupPolicy', 'iam:DeletePolicyVersion', 'iam:DeletePolicyVersion', 'iam:DeletePolicy'
    ])
    assert.equal(alice.attachedPolicies.size + household.attachedPolicies.size, 0, 'the residents keep their user and group, without the policy')

    const c = clients()
    try {
      for (const device of ['front', 'back']) {
        const name = `doorbell-${HOME}-${device}`
        await notFound(c.kvs.send(new DescribeSignalingChannelCommand({ ChannelName: name })), `channel ${name}`)
        await notFound(c.iot.send(new DescribeThingCommand({ thingName: name })), `thing ${name}`)
        await notFound(c.iot.send(new GetPolicyCommand({ policyName: name })), `IoT policy ${name}`)
        await notFound(c.iot.send(new DescribeRoleAliasCommand({ roleAlias: `${name}-kvs` })), `role alias ${name}-kvs`)
        await notFound(c.iam.send(new GetRoleCommand({ RoleName: `${name}-kvs` })), `role ${name}-kvs`)
      }
      await notFound(c.iam.send(new IamGetPolicyCommand({ PolicyArn: `arn:aws:iam::${ACCOUNT}:policy/doorbell-${HOME}-viewers` })), 'residents\' policy')
    } finally {
      c.destroy()
    }
    assert.equal(iot.state.certificates.size, 0)
    assert.equal(existsSync(join(dir, 'data/cloud/front')), false)
    assert.equal(existsSync(join(dir, 'data/cloud/back')), false)
    assert.equal(existsSync(join(dir, 'data/cloud/viewer-cloud.json')), false)

    const again = await setup('--home', HOME, '--device', 'front', '--teardown')
    assert.equal(again.code, 0, again.err)
    assert.deepEqual(writes(again.commands), [])
  })
})
