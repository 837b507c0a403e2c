import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportPublicKey, generateSigningKey, newId } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'
import { eventually } from './harness'

/** The hub as its own process (hub/src/main.ts), so a test can kill it for real and start it again. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** A port free on loopback now (for a hub that must come back on the same one). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface HubProcess { proc: ChildProcess, lines: string[] }

export function startHubProcess (config: string, env: NodeJS.ProcessEnv = process.env): HubProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'hub/src/main.ts', '--config', config], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  proc.stdout!.on('data', (d: Buffer) => { lines.push(...d.toString().split('\n').filter(Boolean)) })
  proc.stderr!.on('data', (d: Buffer) => { lines.push(...d.toString().split('\n').filter(Boolean)) })
  return { proc, lines }
}

/** Ends a hub this test started, by its PID, and waits until it is gone. */
export async function kill (hub: HubProcess, signal: NodeJS.Signals): Promise<void> {
  if (hub.proc.exitCode !== null || hub.proc.signalCode !== null) return
  const exited = new Promise((resolve) => hub.proc.once('exit', resolve))
  hub.proc.kill(signal)
  await exited
}

export interface HomeHub {
  /** The config file: start the hub again on the same ports with startHubProcess(config). */
  config: string
  hub: HubProcess
  base: string
  mqttUrl: string
  /** The owner's API, paired with the one-time setup code the hub printed. */
  asOwner: HubApi
  /** The owner's API token (for requests HubApi would refuse to send). */
  ownerToken: string
}

/**
 * A hub process on loopback (plain HTTP, fixed free ports so it can come back on them), its data
 * in `dir`, and its owner paired as at home: with the setup code the hub printed on its first start.
 */
export async function startHomeHub (dir: string, extra: Record<string, unknown> = {}, o: {
  /** Pair the owner another way (a browser, to open /inspector); resolves to the owner's API token. */
  pairOwner?: (base: string, setupCode: string) => Promise<string>
} = {}): Promise<HomeHub> {
  const httpPort = await freePort()
  const mqttPort = await freePort()
  const config = join(dir, 'hub.json')
  writeFileSync(config, JSON.stringify({ homeId: 'home', hubName: 'Test home', host: '127.0.0.1', httpPort, mqttPort, tls: 'off', dataDir: join(dir, 'hub'), ...extra }))
  const hub = startHubProcess(config)
  try {
    await eventually('the hub', () => hub.lines.some((l) => l.includes('hub ready')), 30_000)
    const base = `http://127.0.0.1:${httpPort}`
    const setup = await eventually('the hub\'s setup code', () => /setup code code=(\S+)/.exec(hub.lines.find((l) => l.includes('no owner yet')) ?? '')?.[1])
    let token: string
    if (o.pairOwner) {
      token = await o.pairOwner(base, setup)
    } else {
      const ownerKey = await generateSigningKey(false)
      token = (await new HubApi({ base }).pair({ kind: 'viewer', code: setup, id: newId('v'), name: 'Owner', key: await exportPublicKey(ownerKey.publicKey) })).token
    }
    return { config, hub, base, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, asOwner: new HubApi({ base, token }), ownerToken: token }
  } catch (err) {
    // Not returned, so nobody else would end it.
    await kill(hub, 'SIGKILL')
    throw new Error(`${(err as Error).message}\nthe hub said:\n${hub.lines.slice(-20).join('\n')}`)
  }
}
