import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { ConfigError, DeviceConfig, HubConfig, PairResponse, exportPublicKey, generateSigningKey, newId, parseConfig } from '@doorbell/core'
import { freePort } from '../src/hubProcess'
import { DEPLOYMENT, SITE_CONF, STREAM_CONF, nginxTest, renderSite, request, startNginx, startProxiedHub, testCertificate, writeNginxConfig } from '../src/nginx'
import { TURN_CONF } from '../src/coturn'

/**
 * deployment/: the nginx site and MQTT stream as shipped (rendered for loopback) checked by
 * Debian's nginx and run in front of a hub process; the systemd units and the configs they read,
 * checked against each other and by systemd-analyze.
 */

const ROOT = join(DEPLOYMENT, '..')
const read = (path: string): string => readFileSync(join(DEPLOYMENT, path), 'utf8')

test('the shipped nginx site and MQTT stream, rendered for loopback, pass nginx -t', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-nginx-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const cert = await testCertificate(dir)
  const files = writeNginxConfig(join(dir, 'nginx'),
    { serverName: 'localhost', httpsPort: await freePort(), httpPort: await freePort(), hubPort: 8080, certPath: cert.certPath, keyPath: cert.keyPath },
    { mqttTlsPort: await freePort(), hubMqttPort: 1883, certPath: cert.certPath, keyPath: cert.keyPath })
  const r = nginxTest(files)
  assert.equal(r.ok, true, r.output)
  assert.match(r.output, /syntax is ok/)
  assert.match(r.output, /test is successful/)
})

test('nginx -t refuses a site whose certificate is missing, with nginx\'s own message; a shipped file the rendering no longer matches is named', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-nginx-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const cert = await testCertificate(dir)
  const missing = join(dir, 'missing.pem')
  const files = writeNginxConfig(join(dir, 'nginx'), { serverName: 'localhost', httpsPort: await freePort(), httpPort: await freePort(), hubPort: 8080, certPath: missing, keyPath: cert.keyPath })
  const r = nginxTest(files)
  assert.equal(r.ok, false)
  assert.ok(r.output.includes(`cannot load certificate "${missing}"`), r.output)
  assert.match(r.output, /test failed/)

  // A shipped file edited so the test's rendering would test something else fails loudly.
  const edited = readFileSync(SITE_CONF, 'utf8').replace('listen 443 ssl http2;', 'listen 443 ssl;')
  assert.throws(() => renderSite(edited, { serverName: 'localhost', httpsPort: 1, httpPort: 2, hubPort: 3, certPath: 'c', keyPath: 'k' }),
    /deployment\/nginx\/doorbell.conf: expected 1 × listen 443 ssl http2;, found 0/)
})

test('behind nginx: HTTPS reaches the hub with its own headers once, HTTP redirects, forged X-Forwarded-* are replaced, /mqtt upgrades for its own origin only, MQTT over TLS reaches the broker', { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-nginx-'))
  const cleanup: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => { for (const step of cleanup.reverse()) await step() })
  cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const home = await startProxiedHub(dir)
  cleanup.push(() => home.stop())
  const { httpPort: hubPort, mqttPort: hubMqttPort } = home
  const cert = await testCertificate(dir)
  const httpsPort = await freePort()
  const httpPort = await freePort()
  const mqttTlsPort = await freePort()
  const files = writeNginxConfig(join(dir, 'nginx'),
    { serverName: 'localhost', httpsPort, httpPort, hubPort, certPath: cert.certPath, keyPath: cert.keyPath },
    { mqttTlsPort, hubMqttPort, certPath: cert.certPath, keyPath: cert.keyPath })
  const nginx = await startNginx(files, httpsPort)
  cleanup.push(() => nginx.stop())
  const origin = `https://127.0.0.1:${httpsPort}`
  const ca = cert.caPem

  // The hub answers through nginx; its security headers come once each (nginx adds none).
  const health = await request(`${origin}/healthz`, { ca })
  assert.equal(health.status, 200, health.body)
  assert.equal((JSON.parse(health.body) as { ok: boolean }).ok, true)
  const page = await request(`${origin}/`, { ca })
  assert.equal(page.status, 200)
  assert.match(String(page.headers['content-type']), /text\/html/)
  const count = (name: string): number => page.lines.filter(([n]) => n === name).length
  assert.equal(count('content-security-policy'), 1)
  const direct = await request(`http://127.0.0.1:${hubPort}/`)
  assert.equal(page.headers['content-security-policy'], direct.headers['content-security-policy'], 'the hub\'s own policy, as it sent it')
  assert.equal(count('x-frame-options'), 1)
  // HSTS: the hub sends it because nginx says the browser came over HTTPS.
  assert.equal(count('strict-transport-security'), 1)

  // Plain HTTP only redirects.
  const redirect = await request(`http://127.0.0.1:${httpPort}/pair?from=http`)
  assert.equal(redirect.status, 301)
  assert.equal(redirect.headers.location, 'https://127.0.0.1/pair?from=http')

  // The owner pairs through nginx (a POST body through the proxy), with forged proxy headers: nginx
  // replaces them, so the invite URL the hub writes is nginx's HTTPS origin, not the forger's.
  const forged = { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'http' }
  const viewerId = newId('v')
  const key = await generateSigningKey(false)
  const paired = await request(`${origin}/api/pair`, { ca, method: 'POST', headers: forged, body: JSON.stringify({ kind: 'viewer', code: home.setupCode, id: viewerId, name: 'Laptop', key: await exportPublicKey(key.publicKey) }) })
  assert.equal(paired.status, 200, paired.body)
  const owner = PairResponse.parse(JSON.parse(paired.body))
  const invite = await request(`${origin}/api/invites`, { ca, method: 'POST', headers: { ...forged, Authorization: `Bearer ${owner.token}`, Origin: origin }, body: JSON.stringify({ kind: 'viewer', role: 'resident' }) })
  assert.equal(invite.status, 200, invite.body)
  assert.ok((JSON.parse(invite.body) as { url: string }).url.startsWith(`${origin}/pair#code=`), invite.body)

  // The WebSocket: nginx upgrades /mqtt; the hub takes it from the page's own origin only.
  const upgrade = async (headers: Record<string, string>): Promise<number | 'open'> => await new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${httpsPort}/mqtt`, 'mqtt', { ca, headers, handshakeTimeout: 10_000 })
    ws.once('open', () => { ws.close(); resolve('open') })
    ws.once('unexpected-response', (_req, res) => { ws.terminate(); resolve(res.statusCode ?? 0) })
    ws.once('error', reject)
  })
  assert.equal(await upgrade({ Origin: origin }), 'open')
  // Another site's page, even one forging the proxy's headers to look like it: the hub closes, nginx answers 502.
  assert.equal(await upgrade({ Origin: 'https://evil.example', ...forged, 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' }), 502)

  // MQTT over TLS on the stream port reaches the hub's broker: signed in with the owner's
  // credentials it is accepted; with a wrong password the hub's broker itself refuses.
  const connect = async (password: string): Promise<'connected' | string> => await new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${mqttTlsPort}`, { ca, clientId: `viewer-${viewerId}-t1`, username: owner.member.id, password, reconnectPeriod: 0, connectTimeout: 10_000 })
    client.once('connect', () => { client.end(true); resolve('connected') })
    client.once('error', (err) => { client.end(true); resolve(err.message) })
  })
  assert.equal(await connect(owner.token), 'connected')
  assert.match(await connect('wrong'), /Bad username or password|Not authorized/)

  // nginx's own record of the upgrade (written when the WebSocket closed).
  const log = await (async () => {
    const deadline = Date.now() + 5000
    while (Date.now() < deadline && !/"GET \/mqtt HTTP\/1\.1" 101 /.test(nginx.accessLog())) await new Promise((resolve) => setTimeout(resolve, 50))
    return nginx.accessLog()
  })()
  assert.match(log, /"GET \/mqtt HTTP\/1\.1" 101 /)
  assert.match(log, /"GET \/mqtt HTTP\/1\.1" 502 /)
})

/** A systemd unit file as sections of keys, each with every value it was given. */
function parseUnit (text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {}
  let current: Record<string, string[]> | null = null
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[(.+)\]$/.exec(line)
    if (section) { current = sections[section[1]!] ??= {}; continue }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (!kv || !current) throw new Error(`not a unit file line: ${raw}`)
    ;(current[kv[1]!] ??= []).push(kv[2]!)
  }
  return sections
}

const UNITS = ['doorbell-hub.service', 'doorbell-device.service'] as const

test('the systemd units: a dedicated user, restart on failure, hardening, secrets from outside the repository, after the network', () => {
  for (const name of UNITS) {
    const unit = parseUnit(read(`systemd/${name}`))
    const one = (section: string, key: string): string => {
      const values = unit[section]?.[key]
      assert.equal(values?.length, 1, `${name}: [${section}] ${key} once`)
      return values![0]!
    }
    assert.ok(one('Unit', 'After').split(/\s+/).includes('network-online.target'), name)
    assert.ok(one('Unit', 'Wants').split(/\s+/).includes('network-online.target'), name)
    // A user each: the doorbell must not read the hub's data (the home's signing key).
    assert.equal(one('Service', 'User'), name === 'doorbell-hub.service' ? 'doorbell-hub' : 'doorbell-device')
    // The doorbell never stays down (a door that cannot relock); the hub restarts on failure.
    assert.equal(one('Service', 'Restart'), name === 'doorbell-device.service' ? 'always' : 'on-failure')
    for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', CapabilityBoundingSet: '', AmbientCapabilities: '' })) {
      assert.equal(one('Service', key), value, `${name}: ${key}`)
    }
    assert.equal(unit.Service?.MemoryDenyWriteExecute, undefined, `${name}: V8 needs writable+executable memory`)
    // Secrets come from /etc/doorbell: an optional environment file and the config as a credential.
    assert.match(one('Service', 'EnvironmentFile'), /^-\/etc\/doorbell\/\S+\.env$/)
    const [credential, source] = one('Service', 'LoadCredential').split(':') as [string, string]
    assert.equal(source, `/etc/doorbell/${credential}`)
    const exec = one('Service', 'ExecStart')
    assert.ok(exec.startsWith('/opt/doorbell/node_modules/.bin/node '), `${name}: Node 24 from the repository's node_modules`)
    assert.ok(exec.endsWith(` --config %d/${credential}`), `${name}: reads the config systemd hands it`)
    assert.equal(one('Install', 'WantedBy'), 'multi-user.target')
  }

  // The hub runs what `npm start --workspace hub` runs (it has no bundle).
  const hub = parseUnit(read('systemd/doorbell-hub.service'))
  const hubStart = (JSON.parse(readFileSync(join(ROOT, 'hub/package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!
  assert.equal(hubStart, 'node --import tsx src/main.ts')
  assert.match(hub.Service!.ExecStart![0]!, / --import tsx hub\/src\/main\.ts /)
  assert.equal(hub.Service!.PrivateDevices?.[0], 'yes')

  // The device runs exactly what `npm run start:dist --workspace device` runs, with the groups for GPIO, camera and sound card.
  const device = parseUnit(read('systemd/doorbell-device.service'))
  const startDist = (JSON.parse(readFileSync(join(ROOT, 'device/package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start:dist']!
  const words = startDist.split(/\s+/)
  const env = words.filter((w) => /^[A-Z_]+=/.test(w))
  const command = words.filter((w) => !/^[A-Z_]+=/.test(w)).map((w) => w === 'dist/main.js' ? 'device/dist/main.js' : w)
  assert.equal(command[0], 'node')
  assert.equal(device.Service!.ExecStart![0], `/opt/doorbell/node_modules/.bin/${command.join(' ')} --config %d/doorbell.json`)
  assert.deepEqual(device.Service!.Environment, env)
  assert.deepEqual(device.Service!.SupplementaryGroups![0]!.split(/\s+/).sort(), ['audio', 'gpio', 'video'])

  // Fail-secure (issue 18): once the doorbell is gone, whatever ended it, "lock now" runs from the
  // same bundle and Node on the same config file; restarts never give up; a hung doorbell is
  // caught by the watchdog, fed by its own notify module (device/src/sdNotify.ts, not the main PID).
  const lockNow = (JSON.parse(readFileSync(join(ROOT, 'device/package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.lock!
  assert.equal(lockNow, 'node --import tsx src/lockNow.ts')
  assert.deepEqual(device.Service!.ExecStopPost, [`!/opt/doorbell/node_modules/.bin/node device/dist/lockNow.js --config ${device.Service!.LoadCredential![0]!.split(':')[1]}`])
  assert.deepEqual(device.Unit!.StartLimitIntervalSec, ['0'])
  assert.deepEqual(device.Service!.Type, ['notify'])
  assert.deepEqual(device.Service!.NotifyAccess, ['all'])
  assert.match(device.Service!.WatchdogSec![0]!, /^\d+s$/)
})

test('systemd-analyze verify accepts both units (rendered for this checkout) and names a broken one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-units-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  const verify = (paths: string[]): { status: number | null, output: string } => {
    const r = spawnSync('systemd-analyze', ['verify', ...paths], { encoding: 'utf8', timeout: 30_000, cwd: dir })
    if (r.error) throw new Error(`systemd-analyze: ${r.error.message} (scripts/setup.sh --test installs it)`)
    return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
  }
  // The units name /opt/doorbell; verify checks that ExecStart's program exists, so point them here.
  const paths: string[] = []
  for (const name of UNITS) {
    const path = join(dir, name)
    await writeFile(path, read(`systemd/${name}`).replaceAll('/opt/doorbell', ROOT.replace(/\/$/, '')))
    paths.push(path)
  }
  const good = verify(paths)
  assert.equal(good.status, 0, good.output)
  assert.equal(good.output, '')
  const broken = join(dir, 'broken.service')
  await writeFile(broken, read('systemd/doorbell-hub.service').replaceAll('/opt/doorbell', ROOT.replace(/\/$/, '')).replace(/^ProtectSystem=strict$/m, 'ProtectSytem=strict'))
  assert.match(verify([broken]).output, /Unknown key 'ProtectSytem' in section \[Service\]/)
})

test('the example configs the units read fit the units, nginx and coturn, and are refused until their TURN secret is set', () => {
  const hubUnit = parseUnit(read('systemd/doorbell-hub.service'))
  const deviceUnit = parseUnit(read('systemd/doorbell-device.service'))
  const site = readFileSync(SITE_CONF, 'utf8')
  const stream = readFileSync(STREAM_CONF, 'utf8')
  const turnConf = readFileSync(TURN_CONF, 'utf8')
  const option = (name: string): string => {
    const m = new RegExp(`^${name}=(.*)$`, 'm').exec(turnConf)
    assert.ok(m, `turnserver.conf has ${name}=`)
    return m[1]!
  }
  const secret = 'a'.repeat(64)
  const withSecret = (input: { turn: { secret: string } }): unknown => ({ ...input, turn: { ...input.turn, secret } })

  const hubInput = JSON.parse(read('systemd/hub.example.json')) as { turn: { secret: string } }
  assert.throws(() => parseConfig(HubConfig, hubInput, 'hub.json'), (err: Error) => err instanceof ConfigError && /turn\.secret.*openssl rand -hex 32/s.test(err.message))
  const hub = parseConfig(HubConfig, withSecret(hubInput), 'hub.json')
  assert.equal(hub.tls, 'off')
  assert.equal(hub.host, '127.0.0.1')
  assert.equal(hub.trustProxy, true)
  assert.ok(site.includes(`server 127.0.0.1:${hub.httpPort};`), 'nginx proxies to the hub\'s httpPort')
  assert.ok(stream.includes(`server 127.0.0.1:${hub.mqttPort};`), 'the MQTT stream reaches the hub\'s mqttPort')
  assert.equal(hub.dataDir, `/var/lib/${hubUnit.Service!.StateDirectory![0]}`)
  assert.equal(hub.advertisedMqttUrl, 'wss://doorbell.example.com/mqtt')

  const deviceInput = JSON.parse(read('systemd/doorbell.example.json')) as { turn: { secret: string } }
  assert.throws(() => parseConfig(DeviceConfig, deviceInput, 'doorbell.json'), (err: Error) => err instanceof ConfigError && /turn\.secret/.test(err.message))
  const device = parseConfig(DeviceConfig, withSecret(deviceInput), 'doorbell.json')
  assert.equal(device.dataDir, `/var/lib/${deviceUnit.Service!.StateDirectory![0]}`)
  assert.equal(device.hubUrl, 'wss://doorbell.example.com/mqtt')
  assert.ok(site.includes('location = /mqtt {') && site.includes('server_name doorbell.example.com;'))

  // The TURN URLs name coturn's ports and realm; its secret ships empty (coturn then accepts no credential).
  for (const url of [...hub.turn!.urls, ...device.turn!.urls]) {
    const m = /^(turns?):([^:]+):(\d+)\?transport=(udp|tcp)$/.exec(url)
    assert.ok(m, url)
    assert.equal(m[2], option('realm'))
    assert.equal(m[3], option(m[1] === 'turns' ? 'tls-listening-port' : 'listening-port'))
  }
  assert.equal(option('static-auth-secret'), '')
  assert.ok(/^use-auth-secret$/m.test(turnConf) && /^no-cli$/m.test(turnConf) && /^fingerprint$/m.test(turnConf) && /^no-multicast-peers$/m.test(turnConf))
})
