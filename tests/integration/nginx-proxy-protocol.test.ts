/**
 * The PROXY protocol through a real nginx (Debian's, with deployment/nginx's MQTT stream rendered
 * for loopback and its `proxy_protocol on;` uncommented, as deployment/README.md says), to a hub
 * process with `"mqtt": { "proxyProtocol": true }`. Clients sign in over TLS through the stream
 * from their own loopback addresses (127.0.0.2, 127.0.0.3: to nginx they are different machines).
 * - The hub sees each client's own address: a stranger at 127.0.0.2 failing the screen's own
 *   identity locks it there only; the screen at 127.0.0.3 still signs in through the same nginx
 *   (without the header both would be nginx's 127.0.0.1, and the screen would be locked too);
 *   the doorbell signs in from the stranger's address.
 * - A PROXY header from a peer that is not on loopback (198.18.0.1, the test namespace's other
 *   address: scripts/isolated.sh) closes the connection; the same peer without one signs in.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, kill, startHomeHub } from '../src/hubProcess'
import { startNginx, testCertificate, writeNginxConfig } from '../src/nginx'
import { connectPacket, pairDeviceAndScreen, signInFrom } from '../src/mqttAbuse'

test('PROXY protocol through nginx: the hub limits sign-ins by the client\'s own address; a PROXY header from off loopback is refused', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-proxy-protocol-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const home = await startHomeHub(dir, { mesh: { enabled: false }, mqtt: { proxyProtocol: true } })
  t.after(async () => { await kill(home.hub, 'SIGTERM') })
  const hubMqttPort = Number(home.mqttUrl.split(':').at(-1))
  const hubHttpPort = Number(home.base.split(':').at(-1))

  const cert = await testCertificate(dir)
  const httpsPort = await freePort()
  const mqttTlsPort = await freePort()
  const files = writeNginxConfig(join(dir, 'nginx'),
    { serverName: 'localhost', httpsPort, httpPort: await freePort(), hubPort: hubHttpPort, certPath: cert.certPath, keyPath: cert.keyPath },
    { mqttTlsPort, hubMqttPort, certPath: cert.certPath, keyPath: cert.keyPath, proxyProtocol: true })
  const nginx = await startNginx(files, httpsPort)
  t.after(async () => { await nginx.stop() })

  const { device, screen } = await pairDeviceAndScreen(home.base, home.asOwner, 'front-door')
  const through = (localAddress: string) => ({ port: mqttTlsPort, localAddress, ca: cert.caPem })
  const right = connectPacket(screen.clientId, screen.memberId, screen.token)
  const wrong = connectPacket(screen.clientId, screen.memberId, `${screen.memberId}.${'A'.repeat(43)}`)

  assert.equal(await signInFrom(through('127.0.0.3'), right), 0, 'the screen signs in through nginx')
  // The stranger, at 127.0.0.2, tries the screen's own identity with wrong tokens until the hub says "try later".
  const codes: Array<number | 'closed'> = []
  for (let i = 0; i < 40 && codes.at(-1) !== 3; i++) codes.push(await signInFrom(through('127.0.0.2'), wrong))
  assert.equal(codes.at(-1), 3, `the identity is locked at the stranger's address (${codes.join(',')})`)
  assert.ok(codes.slice(0, -1).every((c) => c === 4), 'until then, wrong credentials (4)')
  assert.equal(await signInFrom(through('127.0.0.2'), right), 3, 'there, even the right token waits')
  assert.equal(await signInFrom(through('127.0.0.3'), right), 0, 'the screen at its own address still signs in: the hub saw each client\'s address, not nginx\'s')
  assert.equal(await signInFrom(through('127.0.0.2'), connectPacket(device.clientId, device.memberId, device.token)), 0, 'another identity from the stranger\'s address is not affected')

  // Straight to the hub's port from an address off loopback: a PROXY header there is a lie.
  const offLoopback = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address
  assert.ok(offLoopback, 'this test needs an address off loopback on this machine (scripts/isolated.sh gives 198.18.0.1)')
  const forged = Buffer.from(`PROXY TCP4 127.0.0.9 127.0.0.1 40000 ${hubMqttPort}\r\n`)
  assert.equal(await signInFrom({ port: hubMqttPort, localAddress: offLoopback, preamble: forged }, right), 'closed', 'a PROXY header from off loopback closes the connection')
  assert.equal(await signInFrom({ port: hubMqttPort, localAddress: offLoopback }, right), 0, 'the same peer without one signs in as itself')
  assert.ok(home.hub.lines.some((l) => l.includes(`a PROXY header from ${offLoopback}, which is not a trusted proxy`)), `the hub says why it closed it:\n${home.hub.lines.slice(-10).join('\n')}`)
})
