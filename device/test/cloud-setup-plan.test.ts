import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DeviceCloudConfig, ViewerCloudConfig } from '@doorbell/core'
import { checkIds, resourceNames, MAX_HOME_AND_DEVICE } from '../src/cloud-setup/names'
import {
  deviceIotPolicy, kvsMasterPolicy, kvsRoleTrustPolicy, viewerPolicy, samePolicy, policySize, parseArn, roleAliasArnOf,
  MANAGED_POLICY_MAX, THING_VARIABLE, type ArnContext, type PolicyDocument, type PolicyStatement
} from '../src/cloud-setup/policies'
import { changes, formatPlan, planSetup, planTeardown, FILES, type Observed, type SetupRequest } from '../src/cloud-setup/plan'
import { SetupError } from '../src/cloud-setup/errors'

const ctx: ArnContext = { partition: 'aws', region: 'eu-west-1', account: '111122223333' }
const ALIAS_ARN = 'arn:aws:iot:eu-west-1:111122223333:rolealias/doorbell-home-front-kvs'
const CHANNEL_ARN = 'arn:aws:kinesisvideo:eu-west-1:111122223333:channel/doorbell-home-front/1700000000000'

const statement = (doc: PolicyDocument, sid: string): PolicyStatement => {
  const s = doc.Statement.find((x) => x.Sid === sid)
  assert.ok(s, `statement ${sid}`)
  return s
}
const actions = (doc: PolicyDocument): string[] => doc.Statement.flatMap((s) => typeof s.Action === 'string' ? [s.Action] : s.Action)
const list = (v: string | string[] | undefined): string[] => v === undefined ? [] : typeof v === 'string' ? [v] : v

test('names: deterministic, from the home and device ids', () => {
  const n = resourceNames('home', 'front')
  assert.deepEqual(n, {
    home: 'home',
    device: 'front',
    thing: 'doorbell-home-front',
    channel: 'doorbell-home-front',
    iotPolicy: 'doorbell-home-front',
    role: 'doorbell-home-front-kvs',
    rolePolicy: 'kvs-master',
    roleAlias: 'doorbell-home-front-kvs',
    viewerPolicy: 'doorbell-home-viewers'
  })
})

test('names: ids are checked, and the IAM role name length bounds them together', () => {
  assert.deepEqual(checkIds('home', 'front'), [])
  assert.match(checkIds(undefined, 'front')[0]!, /--home is required/)
  assert.match(checkIds('home', '')[0]!, /--device is required/)
  assert.match(checkIds('a/b', 'front')[0]!, /--home "a\/b": an id is/)
  assert.match(checkIds('home', 'front door')[0]!, /--device "front door"/)
  const h = 'h'.repeat(30)
  assert.deepEqual(checkIds(h, 'd'.repeat(MAX_HOME_AND_DEVICE - 30)), [])
  assert.match(checkIds(h, 'd'.repeat(MAX_HOME_AND_DEVICE - 29))[0]!, /at most 50 fit.*limited to 64/)
  assert.ok(resourceNames(h, 'd'.repeat(MAX_HOME_AND_DEVICE - 30)).role.length === 64)
})

test('device IoT policy: connect only as its own thing, publish only under it, no subscribe, KVS credentials via its alias', () => {
  const doc = deviceIotPolicy(ctx, ALIAS_ARN)
  const connect = statement(doc, 'ConnectAsItsThing')
  assert.equal(connect.Action, 'iot:Connect')
  assert.equal(connect.Resource, `arn:aws:iot:eu-west-1:111122223333:client/${THING_VARIABLE}`)
  assert.deepEqual(connect.Condition, { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } })
  assert.deepEqual(statement(doc, 'PublishItsOwnTopics').Resource, ['ring', 'state', 'presence', 'calls', 'snapshot'].map((k) => `arn:aws:iot:eu-west-1:111122223333:topic/things/${THING_VARIABLE}/${k}`))
  assert.deepEqual(list(statement(doc, 'RetainItsStateAndPresence').Resource), [
    `arn:aws:iot:eu-west-1:111122223333:topic/things/${THING_VARIABLE}/state`,
    `arn:aws:iot:eu-west-1:111122223333:topic/things/${THING_VARIABLE}/presence`
  ])
  assert.equal(statement(doc, 'KvsCredentialsForItsChannel').Resource, ALIAS_ARN)
  assert.deepEqual(actions(doc).sort(), ['iot:AssumeRoleWithCertificate', 'iot:Connect', 'iot:Publish', 'iot:RetainPublish'])
  assert.ok(doc.Statement.every((s) => s.Effect === 'Allow'))
  assert.ok(!JSON.stringify(doc).includes('"*"'), 'no bare wildcard resource')
  assert.ok(policySize(doc) < 2048)
})

test('device IoT policy: the seed\'s ring topic of its own channel only when asked (seedTopics)', () => {
  assert.equal(deviceIotPolicy(ctx, ALIAS_ARN).Statement.some((s) => s.Sid === 'PublishTheSeedsRing'), false)
  const doc = deviceIotPolicy(ctx, ALIAS_ARN, { seedRingChannel: 'home-front-door' })
  assert.deepEqual(list(statement(doc, 'PublishTheSeedsRing').Resource), ['arn:aws:iot:eu-west-1:111122223333:topic/doorbell/home-front-door/ring'])
  assert.equal(statement(doc, 'PublishTheSeedsRing').Action, 'iot:Publish')
  assert.ok(!JSON.stringify(doc).includes('doorbell/*'), 'no other channel\'s ring')
})

test('device IoT policy: subscribe and receive only when asked, on its own topics', () => {
  const doc = deviceIotPolicy(ctx, ALIAS_ARN, { subscribes: ['calls'] })
  assert.deepEqual(list(statement(doc, 'SubscribeUnderItsThing').Resource), [`arn:aws:iot:eu-west-1:111122223333:topicfilter/things/${THING_VARIABLE}/calls`])
  assert.deepEqual(list(statement(doc, 'ReceiveUnderItsThing').Resource), [`arn:aws:iot:eu-west-1:111122223333:topic/things/${THING_VARIABLE}/calls`])
})

test('KVS role: trusted by the IoT credentials provider only; master of its one channel only', () => {
  const trust = kvsRoleTrustPolicy()
  assert.deepEqual(trust.Statement, [{ Effect: 'Allow', Principal: { Service: 'credentials.iot.amazonaws.com' }, Action: 'sts:AssumeRole' }])
  const master = kvsMasterPolicy(CHANNEL_ARN)
  assert.equal(master.Statement.length, 1)
  assert.deepEqual(list(master.Statement[0]!.Action).sort(), ['kinesisvideo:ConnectAsMaster', 'kinesisvideo:DescribeSignalingChannel', 'kinesisvideo:GetIceServerConfig', 'kinesisvideo:GetSignalingChannelEndpoint'])
  assert.equal(master.Statement[0]!.Resource, CHANNEL_ARN)
})

test('viewer policy: the home\'s doorbells\' five topics (the picture\'s too), viewer of their channels, a viewer client id', () => {
  const doc = viewerPolicy(ctx, [{ thingName: 'doorbell-home-front', channelName: 'doorbell-home-front' }, { thingName: 'doorbell-home-back', channelName: 'doorbell-home-back' }])
  const topics = (type: string, thing: string): string[] => ['ring', 'state', 'presence', 'calls', 'snapshot'].map((k) => `arn:aws:iot:eu-west-1:111122223333:${type}/things/${thing}/${k}`)
  assert.equal(statement(doc, 'ConnectAsViewer').Resource, 'arn:aws:iot:eu-west-1:111122223333:client/viewer-*')
  assert.deepEqual(list(statement(doc, 'SubscribeToTheDoorbells').Resource), [...topics('topicfilter', 'doorbell-home-front'), ...topics('topicfilter', 'doorbell-home-back')])
  assert.deepEqual(list(statement(doc, 'ReceiveFromTheDoorbells').Resource), [...topics('topic', 'doorbell-home-front'), ...topics('topic', 'doorbell-home-back')])
  const kvs = statement(doc, 'ViewerOfTheDoorbellsChannels')
  assert.deepEqual(list(kvs.Action).sort(), ['kinesisvideo:ConnectAsViewer', 'kinesisvideo:DescribeSignalingChannel', 'kinesisvideo:GetIceServerConfig', 'kinesisvideo:GetSignalingChannelEndpoint'])
  assert.deepEqual(list(kvs.Resource), [
    'arn:aws:kinesisvideo:eu-west-1:111122223333:channel/doorbell-home-front/*',
    'arn:aws:kinesisvideo:eu-west-1:111122223333:channel/doorbell-home-back/*'
  ])
  assert.ok(!actions(doc).includes('iot:Publish'), 'residents publish nothing over IoT')
  assert.ok(!actions(doc).includes('kinesisvideo:ConnectAsMaster'))
})

test('viewer policy: stays within IAM\'s 6,144 characters (per-doorbell wildcard past ~7 doorbells), refuses past that', () => {
  const devices = (k: number) => Array.from({ length: k }, (_, i) => ({ thingName: `doorbell-home-door${i}`, channelName: `doorbell-home-door${i}` }))
  const small = viewerPolicy(ctx, devices(3))
  assert.ok(list(statement(small, 'ReceiveFromTheDoorbells').Resource).every((r) => !r.endsWith('/*')))
  const many = viewerPolicy(ctx, devices(20))
  assert.ok(policySize(many) <= MANAGED_POLICY_MAX)
  assert.equal(list(statement(many, 'ReceiveFromTheDoorbells').Resource).length, 20)
  assert.ok(list(statement(many, 'ReceiveFromTheDoorbells').Resource).every((r) => r.endsWith('/*')))
  assert.throws(() => viewerPolicy(ctx, devices(64)), /IAM allows 6144/)
})

test('samePolicy: key order, white space, one-element lists, URL-decoded text', () => {
  const doc = kvsMasterPolicy(CHANNEL_ARN)
  const text = JSON.stringify({ Statement: [{ Resource: [CHANNEL_ARN], Action: [...list(doc.Statement[0]!.Action)].reverse(), Effect: 'Allow', Sid: 'MasterOfItsChannel' }], Version: '2012-10-17' }, null, 4)
  assert.ok(samePolicy(text, doc))
  assert.ok(!samePolicy(text, kvsMasterPolicy(CHANNEL_ARN.replace('front', 'back'))))
  assert.ok(!samePolicy('not json', doc))
})

test('parseArn', () => {
  assert.deepEqual(parseArn(CHANNEL_ARN), { partition: 'aws', service: 'kinesisvideo', region: 'eu-west-1', account: '111122223333', resource: 'channel/doorbell-home-front/1700000000000' })
  assert.deepEqual(parseArn('arn:aws-cn:iam::111122223333:role/x')?.partition, 'aws-cn')
  assert.equal(parseArn('nope'), null)
})

// ---- the planner ----

const request = (over: Partial<SetupRequest> = {}): SetupRequest => ({ names: resourceNames('home', 'front'), region: 'eu-west-1', out: '/tmp/cloud-out', ...over })

const empty = (): Observed => ({
  account: null,
  endpoints: { iotData: 'abc-ats.iot.eu-west-1.amazonaws.com', credentials: 'abc.credentials.iot.eu-west-1.amazonaws.com' },
  channel: null,
  thing: null,
  thingCerts: [],
  localCert: null,
  iotPolicy: null,
  role: null,
  rolePolicy: null,
  roleAlias: null,
  viewerPolicy: null,
  viewerConfig: null,
  deviceConfig: null,
  localFiles: []
})

const CERT = { id: 'c'.repeat(64), arn: `arn:aws:iot:eu-west-1:111122223333:cert/${'c'.repeat(64)}`, status: 'ACTIVE' }

/** What AWS and the folder hold once a setup of `front` has run. */
function complete (r = request()): Observed {
  const plan = planSetup(r, { ...empty(), account: { partition: 'aws', account: '111122223333' }, channel: { arn: CHANNEL_ARN } })
  const doc = (kind: string) => (plan.steps.find((s) => s.op?.kind === kind)!.op as { document: unknown }).document
  const trust = (plan.steps.find((s) => s.op?.kind === 'createRole')!.op as { trust: unknown }).trust
  return {
    ...empty(),
    account: { partition: 'aws', account: '111122223333' },
    channel: { arn: CHANNEL_ARN },
    thing: { arn: 'arn:aws:iot:eu-west-1:111122223333:thing/doorbell-home-front', attributes: { doorbellHome: 'home', doorbellDevice: 'front' } },
    thingCerts: [CERT],
    localCert: { aws: CERT },
    iotPolicy: { document: JSON.stringify(doc('createIotPolicy')), targets: [CERT.arn] },
    role: { arn: 'arn:aws:iam::111122223333:role/doorbell-home-front-kvs', trust: JSON.stringify(trust) },
    rolePolicy: JSON.stringify(doc('putRolePolicy')),
    roleAlias: { arn: ALIAS_ARN.replace('front-kvs', 'front-kvs'), roleArn: 'arn:aws:iam::111122223333:role/doorbell-home-front-kvs', durationSeconds: 3600 },
    viewerPolicy: { arn: 'arn:aws:iam::111122223333:policy/doorbell-home-viewers', document: JSON.stringify(doc('createViewerPolicy')) },
    deviceConfig: plan.deviceConfig,
    viewerConfig: plan.viewerConfig,
    localFiles: [FILES.cert, FILES.key, FILES.deviceConfig]
  }
}

test('plan on an empty account: every resource is created, in order; ARNs wait for the account', () => {
  const plan = planSetup(request(), empty())
  assert.equal(plan.complete, false)
  assert.deepEqual(plan.steps.map((s) => s.op?.kind), [
    'createChannel', 'createThing', 'createCertificate', 'createRole', 'putRolePolicy', 'createRoleAlias',
    'createIotPolicy', 'attachIotPolicy', 'createViewerPolicy', 'writeFile', 'writeFile'
  ])
  assert.ok(plan.steps.every((s) => s.state === 'create' || s.state === 'write'))
  assert.match(plan.notes.join('\n'), /account id is not known/)
  const text = formatPlan(plan, { dryRun: true })
  assert.match(text, /dry run: nothing is changed/)
  assert.match(text, /\+ create\s+KVS signaling channel\s+doorbell-home-front\s+\(SINGLE_MASTER\)/)
  assert.match(text, /11 changes would be made/)
})

test('plan after a complete setup: all exists, nothing to change', () => {
  const plan = planSetup(request(), complete())
  assert.deepEqual(changes(plan), [])
  assert.ok(plan.steps.every((s) => s.state === 'exists' || s.state === 'unchanged'), formatPlan(plan))
  assert.match(formatPlan(plan), /Nothing to change\./)
})

test('plan: a changed document is an update (new version for managed and IoT policies, PutRolePolicy for the inline one)', () => {
  const o = complete()
  o.iotPolicy = { ...o.iotPolicy!, document: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] }) }
  o.rolePolicy = JSON.stringify(kvsMasterPolicy('arn:aws:kinesisvideo:eu-west-1:111122223333:channel/other/1'))
  o.roleAlias = { ...o.roleAlias!, durationSeconds: 900 }
  o.role = { ...o.role!, trust: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) }
  const plan = planSetup(request(), o)
  assert.deepEqual(changes(plan).map((s) => [s.state, s.op!.kind]), [
    ['update', 'updateRoleTrust'], ['update', 'putRolePolicy'], ['update', 'updateRoleAlias'], ['update', 'updateIotPolicy']
  ])
  assert.match(formatPlan(plan), /~ update\s+IoT policy\s+doorbell-home-front\s+\(document differs: CreatePolicyVersion/)
})

test('plan: a new certificate only when the local one is missing, unknown or inactive; a known one is attached again', () => {
  const missing = { ...complete(), localCert: null }
  assert.deepEqual(changes(planSetup(request(), missing)).map((s) => s.op!.kind), ['createCertificate', 'attachIotPolicy'])
  assert.match(planSetup(request(), missing).notes.join(), /attached to doorbell-home-front but not held in/)
  const unknown = { ...complete(), localCert: { aws: null }, thingCerts: [] }
  assert.match(planSetup(request(), unknown).steps.find((s) => s.what === 'certificate and key')!.why!, /unknown to AWS: new keys replace it/)
  const inactive = { ...complete(), localCert: { aws: { ...CERT, status: 'INACTIVE' } } }
  assert.equal(changes(planSetup(request(), inactive))[0]!.op!.kind, 'createCertificate')
  const detached = { ...complete(), thingCerts: [] }
  assert.deepEqual(changes(planSetup(request(), detached)).map((s) => s.op!.kind), ['attachCertificate'])
  const unattachedPolicy = { ...complete(), iotPolicy: { ...complete().iotPolicy!, targets: [] } }
  assert.deepEqual(changes(planSetup(request(), unattachedPolicy)).map((s) => s.op), [{ kind: 'attachIotPolicy', name: 'doorbell-home-front', certArn: CERT.arn }])
})

test('plan: the written configs pass the core schemas; kvsEndpoint and caFile only when given', () => {
  const plan = planSetup(request(), complete())
  assert.ok(DeviceCloudConfig.safeParse(plan.deviceConfig).success)
  assert.ok(ViewerCloudConfig.safeParse(plan.viewerConfig).success)
  assert.equal((plan.deviceConfig as Record<string, unknown>).kvsEndpoint, undefined)
  assert.deepEqual(plan.deviceConfig, {
    region: 'eu-west-1',
    thingName: 'doorbell-home-front',
    iotEndpoint: 'abc-ats.iot.eu-west-1.amazonaws.com',
    certFile: '/tmp/cloud-out/front/certificate.pem',
    keyFile: '/tmp/cloud-out/front/private-key.pem',
    credentialsEndpoint: 'abc.credentials.iot.eu-west-1.amazonaws.com',
    roleAlias: 'doorbell-home-front-kvs',
    channelName: 'doorbell-home-front'
  })
  const over = planSetup(request({ kvsEndpoint: 'https://127.0.0.1:4443', caFile: '/tmp/ca.pem', iotWssUrl: 'wss://127.0.0.1:9443/mqtt' }), complete())
  assert.equal(over.deviceConfig!.kvsEndpoint, 'https://127.0.0.1:4443')
  assert.equal(over.deviceConfig!.caFile, '/tmp/ca.pem')
  assert.equal(over.viewerConfig!.kvsEndpoint, 'https://127.0.0.1:4443')
  assert.equal(over.viewerConfig!.iotWssUrl, 'wss://127.0.0.1:9443/mqtt')
  // Different content: both files are written again.
  assert.deepEqual(changes(over).map((s) => s.what), ['device config', 'viewer config'])
})

test('plan: a second doorbell of the home joins the viewer config and the residents\' policy', () => {
  const back = request({ names: resourceNames('home', 'back') })
  const front = complete()
  const o: Observed = { ...empty(), account: front.account, channel: { arn: CHANNEL_ARN.replace('front', 'back') }, viewerPolicy: front.viewerPolicy, viewerConfig: front.viewerConfig }
  const plan = planSetup(back, o)
  assert.deepEqual(plan.viewerConfig!.devices.map((d) => d.deviceId), ['front', 'back'])
  const update = plan.steps.find((s) => s.what.startsWith('IAM managed policy'))!
  assert.equal(update.state, 'update')
  assert.match(update.why!, /now 2 doorbells/)
  const doc = (update.op as { document: PolicyDocument }).document
  assert.ok(JSON.stringify(doc).includes('things/doorbell-home-front/ring') && JSON.stringify(doc).includes('things/doorbell-home-back/ring'))
})

test('plan: refuses a viewer config of another home or region, and a thing of another home', () => {
  const other = { ...empty(), viewerConfig: { region: 'eu-west-1', iotEndpoint: 'x.example', devices: [{ deviceId: 'front', thingName: 'doorbell-flat-front', channelName: 'doorbell-flat-front' }] } }
  assert.throws(() => planSetup(request(), other), (err: Error) => err instanceof SetupError && /not doorbells of home home: use one --out folder per home/.test(err.message))
  const region = { ...empty(), viewerConfig: { region: 'us-east-1', iotEndpoint: 'x.example', devices: [{ deviceId: 'front', thingName: 'doorbell-home-front', channelName: 'doorbell-home-front' }] } }
  assert.throws(() => planSetup(request(), region), /is for region us-east-1, not eu-west-1/)
  const garbage = { ...empty(), viewerConfig: { devices: 'no' } }
  assert.throws(() => planSetup(request(), garbage), /is not a viewer config/)
  // home "a-b" device "c" and home "a" device "b-c" make the same names: the thing's attributes tell them apart.
  const clash = { ...empty(), thing: { arn: 'arn:aws:iot:eu-west-1:111122223333:thing/doorbell-a-b-c', attributes: { doorbellHome: 'a-b', doorbellDevice: 'c' } } }
  assert.throws(() => planSetup(request({ names: resourceNames('a', 'b-c') }), clash), /belongs to device c of home a-b/)
  assert.throws(() => planTeardown(request({ names: resourceNames('a', 'b-c') }), clash), /nothing removed/)
})

test('teardown plan: detach, deactivate, delete, in an order AWS accepts; local files last', () => {
  const plan = planTeardown(request(), complete())
  assert.deepEqual(plan.steps.map((s) => s.op?.kind), [
    'detachIotPolicy', 'detachCertificate', 'deactivateCertificate', 'deleteCertificate', 'deleteThing', 'deleteIotPolicy',
    'deleteRoleAlias', 'deleteRolePolicy', 'deleteRole', 'deleteChannel', 'deleteViewerPolicy',
    'removeFile', 'removeFile', 'removeFile', 'removeDir', 'removeFile'
  ])
  assert.equal(plan.viewerConfig, null)
  assert.equal(plan.steps.at(-1)!.what, 'viewer config')
})

test('teardown plan: the residents\' policy stays while another doorbell of the home remains', () => {
  const o = complete()
  const back = { deviceId: 'back', thingName: 'doorbell-home-back', channelName: 'doorbell-home-back' }
  o.viewerConfig = { ...(o.viewerConfig as object), devices: [...(o.viewerConfig as { devices: unknown[] }).devices, back] }
  const plan = planTeardown(request(), o)
  const step = plan.steps.find((s) => s.what.startsWith('IAM managed policy'))!
  assert.equal(step.op?.kind, 'updateViewerPolicy')
  assert.deepEqual(plan.viewerConfig!.devices, [back])
  assert.equal(plan.steps.at(-1)!.op?.kind, 'writeFile')
})

test('teardown plan on nothing: every step absent, nothing to change', () => {
  const plan = planTeardown(request(), { ...empty(), account: { partition: 'aws', account: '111122223333' } })
  assert.deepEqual(changes(plan), [])
  assert.ok(plan.steps.every((s) => s.state === 'absent'))
})

test('a lost viewer config: the doorbells the residents\' policy covers are kept, in the policy and the new config', () => {
  const front = complete()
  const back = request({ names: resourceNames('home', 'back') })
  const o: Observed = { ...empty(), account: front.account, channel: { arn: CHANNEL_ARN.replace('front', 'back') }, viewerPolicy: front.viewerPolicy, viewerConfig: null }
  const plan = planSetup(back, o)
  assert.deepEqual(plan.viewerConfig!.devices.map((d) => d.deviceId), ['front', 'back'])
  assert.match(plan.notes.join('\n'), /covers front, which .*viewer-cloud\.json did not list: kept/)
  assert.match(JSON.stringify((plan.steps.find((s) => s.what.startsWith('IAM managed policy'))!.op as { document: unknown }).document), /doorbell-home-front\/ring/)
})

test('teardown without a viewer config: the residents\' policy stays for the home\'s other doorbells it covers', () => {
  const o = complete()
  const both = viewerPolicy(ctx, [{ thingName: 'doorbell-home-front', channelName: 'doorbell-home-front' }, { thingName: 'doorbell-home-back', channelName: 'doorbell-home-back' }])
  o.viewerPolicy = { ...o.viewerPolicy!, document: JSON.stringify(both) }
  o.viewerConfig = null
  const plan = planTeardown(request(), o)
  const step = plan.steps.find((s) => s.what.startsWith('IAM managed policy'))!
  assert.equal(step.op?.kind, 'updateViewerPolicy')
  assert.match(JSON.stringify((step.op as { document: unknown }).document), /doorbell-home-back\/ring/)
  assert.doesNotMatch(JSON.stringify((step.op as { document: unknown }).document), /doorbell-home-front/)
  assert.equal(plan.viewerConfig, undefined)
  assert.ok(!plan.steps.some((s) => s.what === 'viewer config'))
})
