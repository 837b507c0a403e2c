/**
 * The cloud setup command: `npm run cloud-setup --workspace device -- --home <homeId> --device <deviceId> …`
 * (usage below). Makes, checks or removes one doorbell's AWS resources and writes the device and
 * viewer cloud configs. Exit code 0 when done, 2 for anything the person can fix.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Region } from '@doorbell/core'
import { run, type CloudApi } from './apply'
import { awsCloud, type AwsOptions, type Service } from './aws'
import { SetupError } from './errors'
import { checkIds, resourceNames } from './names'
import { FILES, formatPlan, show, type Plan, type SetupRequest, type Step } from './plan'

export const USAGE = `usage: npm run cloud-setup --workspace device -- --home <homeId> --device <deviceId> [options]

Makes (or checks) the AWS resources of one doorbell for the cloud path, and writes its configs:
a KVS signaling channel, an IoT thing with its certificate and key, the thing's IoT policy, an
IAM role for KVS behind an IoT role alias, and the home's residents' IAM policy. Run it once per
doorbell of a home; running it again changes nothing unless something differs.

  --home <id>                     the home id (as in the hub's config)
  --device <id>                   the doorbell's deviceId (as in its config)
  --region <region>               AWS region (default: AWS_REGION, else eu-west-1)
  --out <dir>                     where keys and configs go (default: device/data/cloud; git-ignored)
  --dry-run                       print the plan, change nothing (only Describe/Get/List calls)
  --teardown                      remove what the setup made for this doorbell (with --dry-run: show it)
  --show-policies                 print the policy documents of each create or update step
  --ca-file <file>                CA bundle the doorbell should trust (stand-ins); written as caFile
  --iot-wss-url <url>             IoT WebSocket URL for viewers (stand-ins); written as iotWssUrl
  --seed-topics                   rings also on the seed's doorbell/<channel>/ring (its policy allows that topic)
  --endpoint-kinesis-video <url>  KVS control plane (default: AWS_ENDPOINT_URL_KINESIS_VIDEO, else AWS);
                                  when set it is written to both configs as kvsEndpoint (https:// only)
  --endpoint-iot <url>            IoT control plane (default: AWS_ENDPOINT_URL_IOT, else AWS)
  --endpoint-iam <url>            IAM (default: AWS_ENDPOINT_URL_IAM, else AWS)
  --help                          this text

Credentials: the AWS SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO…).
Exit code: 0 done, 2 a problem to fix (message on stderr).`

const SHORT_USAGE = `${USAGE.split('\n')[0]!}\n(--help for every option)`

export interface CliIo {
  env: Record<string, string | undefined>
  cwd: string
  stdout: (text: string) => void
  stderr: (text: string) => void
  /** The AWS calls; default: the SDK (aws.ts). Tests pass a fake or wrap this one. */
  cloud?: (o: AwsOptions) => CloudApi & { destroy?: () => void }
}

const ENV_SUFFIX: Record<Service, string> = { kinesisvideo: 'KINESIS_VIDEO', iot: 'IOT', iam: 'IAM' }

/** The endpoint a client of `service` will use: the flag, else what the SDK itself reads from the environment. */
export function endpointFor (service: Service, flag: string | undefined, env: Record<string, string | undefined>): string | undefined {
  if (flag !== undefined) return flag
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true') return undefined
  return env[`AWS_ENDPOINT_URL_${ENV_SUFFIX[service]}`] ?? env.AWS_ENDPOINT_URL
}

export async function main (argv: string[], io: CliIo): Promise<number> {
  let args
  try {
    args = parseArgs({
      args: argv,
      options: {
        home: { type: 'string' },
        device: { type: 'string' },
        region: { type: 'string' },
        out: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        teardown: { type: 'boolean', default: false },
        'show-policies': { type: 'boolean', default: false },
        'ca-file': { type: 'string' },
        'iot-wss-url': { type: 'string' },
        'seed-topics': { type: 'boolean', default: false },
        'endpoint-kinesis-video': { type: 'string' },
        'endpoint-iot': { type: 'string' },
        'endpoint-iam': { type: 'string' },
        help: { type: 'boolean', default: false }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    io.stderr(`${(err as Error).message}\n${SHORT_USAGE}`)
    return 2
  }
  if (args.help) { io.stdout(USAGE); return 0 }

  let api: (CloudApi & { destroy?: () => void }) | undefined
  try {
    const problems = checkIds(args.home, args.device)
    const region = args.region ?? io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION ?? 'eu-west-1'
    if (!Region.safeParse(region).success) problems.push(`--region "${region}": an AWS region such as eu-west-1`)
    const endpoints: Partial<Record<Service, string>> = {}
    for (const [service, flag] of [['kinesisvideo', args['endpoint-kinesis-video']], ['iot', args['endpoint-iot']], ['iam', args['endpoint-iam']]] as const) {
      const url = endpointFor(service, flag, io.env)
      if (url === undefined) continue
      if (!URL.canParse(url)) problems.push(`the ${service} endpoint "${url}" is not a URL`)
      else endpoints[service] = url
    }
    let kvsEndpoint: string | undefined
    if (endpoints.kinesisvideo !== undefined && URL.canParse(endpoints.kinesisvideo)) {
      const u = new URL(endpoints.kinesisvideo)
      if (u.protocol !== 'https:' || (u.pathname !== '/' && u.pathname !== '')) problems.push(`the KVS endpoint ${endpoints.kinesisvideo}: the device and viewer configs take an https:// URL with no path`)
      else kvsEndpoint = u.origin
    }
    // Paths typed on the command line are taken from where they were typed (npm runs the script in device/ and says where in INIT_CWD).
    const typedFrom = io.env.INIT_CWD ?? io.cwd
    const caFile = args['ca-file'] === undefined ? undefined : resolve(typedFrom, args['ca-file'])
    if (caFile !== undefined && !existsSync(caFile)) problems.push(`--ca-file ${args['ca-file']}: no such file`)
    if (args['iot-wss-url'] !== undefined && !/^wss:\/\/[^\s?#]+$/.test(args['iot-wss-url'])) problems.push(`--iot-wss-url ${args['iot-wss-url']}: a wss:// URL`)
    if (problems.length > 0) {
      io.stderr(`${problems.join('\n')}\n${SHORT_USAGE}`)
      return 2
    }

    const request: SetupRequest = {
      names: resourceNames(args.home!, args.device!),
      region,
      out: args.out === undefined ? resolve(io.cwd, 'data/cloud') : resolve(typedFrom, args.out),
      ...(kvsEndpoint !== undefined ? { kvsEndpoint } : {}),
      ...(caFile !== undefined ? { caFile } : {}),
      ...(args['iot-wss-url'] !== undefined ? { iotWssUrl: args['iot-wss-url'] } : {}),
      ...(args['seed-topics'] ? { seedTopics: true } : {})
    }
    const dryRun = args['dry-run']
    const mode = args.teardown ? 'teardown' : 'setup'
    api = (io.cloud ?? awsCloud)({ region, endpoints, readOnly: dryRun })
    const { plan, applied } = await run(api, request, {
      mode,
      dryRun,
      onPlan: (p) => { io.stdout(formatPlan(p, { documents: args['show-policies'], dryRun })) },
      onApplied: (s) => { io.stdout(`  done: ${describe(s)}`) }
    })
    if (dryRun) return 0
    io.stdout(applied.length === 0 ? 'Nothing changed: everything was already as it should be.' : `${applied.length} change${applied.length === 1 ? '' : 's'} made.`)
    io.stdout(mode === 'setup' ? nextSteps(plan) : afterTeardown(plan))
    return 0
  } catch (err) {
    if (err instanceof SetupError) {
      io.stderr(`cloud-setup: ${err.message}`)
      return 2
    }
    throw err
  } finally {
    api?.destroy?.()
  }
}

const describe = (s: Step): string => `${s.state} ${s.what} ${s.name}`

/** What the person does next, with what to paste. */
export function nextSteps (plan: Plan): string {
  const r = plan.request
  const devicePath = show(`${r.out}/${r.names.device}/${FILES.deviceConfig}`)
  const viewerPath = show(`${r.out}/${FILES.viewerConfig}`)
  const indent = (text: string, by: string): string => text.split('\n').map((l) => by + l).join('\n')
  return [
    '',
    'Next:',
    `1. The doorbell: add this "cloud" section to its config file (the one given to npm start --workspace device -- --config …).`,
    `   The device config takes it inline (it cannot point at a file); the same JSON is in ${devicePath}.`,
    indent(`"cloud": ${JSON.stringify(plan.deviceConfig, null, 2)}`, '     '),
    `   On another machine than this one: copy ${show(`${r.out}/${r.names.device}`)}/ there (keep the folder 0700 and its files 0600)`,
    '   and set certFile and keyFile to where they land.',
    `2. The hub: set "cloud" in the hub's config to the content of ${viewerPath}`,
    `   (every doorbell of home ${r.names.home} set up so far; paired members get it at /api/cloud).`,
    `3. Residents: attach ${plan.viewerPolicyArn ?? r.names.viewerPolicy} to each resident's IAM user, e.g.`,
    `     aws iam attach-user-policy --user-name <resident> --policy-arn ${plan.viewerPolicyArn ?? '<arn>'}`,
    '   (It lets their viewers connect to IoT Core with a client id starting viewer-, the viewer\'s own.)'
  ].join('\n')
}

function afterTeardown (plan: Plan): string {
  const r = plan.request
  const viewerPath = show(`${r.out}/${FILES.viewerConfig}`)
  const hub = plan.viewerConfig === null
    ? `2. The hub: take "cloud" out of its config (no doorbell of home ${r.names.home} is left in the cloud).`
    : plan.viewerConfig === undefined
      ? `2. The hub: take ${r.names.device} out of "cloud".devices in its config (there was no ${viewerPath} to rewrite).`
      : `2. The hub: set "cloud" in its config to the content of ${viewerPath} again (${r.names.device} is no longer in it).`
  return ['', 'Next:', '1. The doorbell: take the "cloud" section out of its config file (its certificate no longer works).', hub].join('\n')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2), {
    env: process.env,
    cwd: process.cwd(),
    stdout: (text) => { process.stdout.write(text + '\n') },
    stderr: (text) => { process.stderr.write(text + '\n') }
  })
}
