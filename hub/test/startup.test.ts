import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StartError, memoryLogger, type HubConfigInput } from '@doorbell/core'
import { startHub } from '../src/hub'

/**
 * The hub's composition root: its modules start in order, and one that cannot start (its port
 * taken) makes startHub reject naming it, with every module before it stopped: each port it had
 * opened can be bound again at once, and the same hub starts on the same folder and ports after.
 */

/** Binds `port` (0: any free one) on 127.0.0.1; the server holds it until closed. */
async function bind (port = 0): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  return server
}
const portOf = (server: Server): number => (server.address() as AddressInfo).port
const release = async (server: Server): Promise<void> => { await new Promise<void>((resolve) => server.close(() => resolve())) }

/** A port that was free a moment ago. */
async function freePort (): Promise<number> {
  const server = await bind()
  const port = portOf(server)
  await release(server)
  return port
}

/** Proves `port` is free by binding it, then lets it go. */
async function assertFree (port: number, what: string): Promise<void> {
  const server = await bind(port).catch((err: Error) => { throw new assert.AssertionError({ message: `${what} port ${port} is still taken: ${err.message}` }) })
  await release(server)
}

async function withDataDir (t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-startup-'))
  t.after(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

const config = (dataDir: string, httpPort: number, mqttPort: number, extra: Partial<HubConfigInput> = {}): HubConfigInput =>
  ({ host: '127.0.0.1', httpPort, mqttPort, tls: 'off', dataDir, mesh: { enabled: false }, ...extra })

test('the modules start in order and stop in reverse: trust, tls, broker, history, push, mqtt, http', async (t) => {
  const dir = await withDataDir(t)
  const log = memoryLogger()
  const hub = await startHub(config(dir, 0, 0), { log })
  const http = Number(new URL(hub.url).port)
  const mqtt = Number(new URL(hub.mqttUrl).port)
  assert.deepEqual(hub.modules, ['trust', 'tls', 'broker', 'history', 'push', 'mqtt', 'http'])
  await hub.stop()
  const stopped = log.lines.filter((l) => l.includes(' stopped ')).map((l) => /module=(\w+)/.exec(l)?.[1])
  assert.deepEqual(stopped, ['http', 'mqtt', 'push', 'history', 'broker', 'tls', 'trust'])
  await assertFree(http, 'the HTTP')
  await assertFree(mqtt, 'the MQTT')
})

test('the HTTPS port taken: startHub rejects naming http, and the MQTT port it had opened is free again', async (t) => {
  const dir = await withDataDir(t)
  const taken = await bind()
  t.after(async () => { if (taken.listening) await release(taken) })
  const mqttPort = await freePort()
  const log = memoryLogger()

  const err = await startHub(config(dir, portOf(taken), mqttPort, { tls: 'auto' }), { log }).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof StartError, `a StartError, not ${String(err)}`)
  assert.equal(err.module, 'http')
  assert.match(err.message, /^http could not start: .*EADDRINUSE/)
  await assertFree(mqttPort, 'the MQTT (TLS)')
  assert.deepEqual(log.lines.filter((l) => l.includes(' stopped ')).map((l) => /module=(\w+)/.exec(l)?.[1]), ['mqtt', 'push', 'history', 'broker', 'tls', 'trust'])

  // Nothing of the failed start is left: the same hub starts on the same folder and ports.
  const httpPort = portOf(taken)
  await release(taken)
  const hub = await startHub(config(dir, httpPort, mqttPort, { tls: 'auto' }), { log: memoryLogger() })
  assert.equal(new URL(hub.url).port, String(httpPort))
  await hub.stop()
})

test('the MQTT port taken: startHub rejects naming mqtt, and opens no HTTP port', async (t) => {
  const dir = await withDataDir(t)
  const taken = await bind()
  t.after(async () => { await release(taken) })
  const httpPort = await freePort()

  const err = await startHub(config(dir, httpPort, portOf(taken)), { log: memoryLogger() }).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof StartError, `a StartError, not ${String(err)}`)
  assert.equal(err.module, 'mqtt')
  assert.match(err.message, /^mqtt could not start: .*EADDRINUSE/)
  await assertFree(httpPort, 'the HTTP')
})

test('the mesh port taken: startHub rejects naming mesh, and the MQTT and HTTP ports are free again', async (t) => {
  const dir = await withDataDir(t)
  const taken = await bind()
  t.after(async () => { await release(taken) })
  const [httpPort, mqttPort, directPort] = [await freePort(), await freePort(), await freePort()]

  const mesh = { enabled: true, host: '127.0.0.1', tcpPort: portOf(taken), directPort }
  const err = await startHub(config(dir, httpPort, mqttPort, { mesh }), { log: memoryLogger() }).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof StartError, `a StartError, not ${String(err)}`)
  assert.equal(err.module, 'mesh')
  await assertFree(httpPort, 'the HTTP')
  await assertFree(mqttPort, 'the MQTT')
})
