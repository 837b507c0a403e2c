import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { exportPublicKey, generateSigningKey, newId } from '@doorbell/core'
import { HubApi } from '@doorbell/viewer/lib'

/** Helpers for tests that misuse the hub's MQTT port the way a stranger on the network could. */

/** Resident memory of a process (VmRSS in /proc/<pid>/status), in MiB. */
export function rssMiB (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS for process ${pid}`)
  return Number(m[1]) / 1024
}

/** An MQTT fixed header (type, Remaining Length as §2.2.3 encodes it). */
export function fixedHeader (type: number, length: number): Buffer {
  const bytes = [type << 4]
  let x = length
  do {
    let b = x % 128
    x = Math.floor(x / 128)
    if (x > 0) b |= 0x80
    bytes.push(b)
  } while (x > 0)
  return Buffer.from(bytes)
}

export interface Pushed { written: number, closedAfterMs: number | null }

/**
 * Opens a TCP connection and writes `first`, then up to `bytes` more in 64 KiB chunks, for at most
 * `budgetMs`; resolves with how much was written and when the hub closed it (null: still open).
 */
export async function push (port: number, first: Buffer, bytes: number, budgetMs: number): Promise<Pushed> {
  const socket: Socket = createConnection({ host: '127.0.0.1', port })
  const start = Date.now()
  let closedAt: number | null = null
  socket.on('error', () => {})
  socket.once('close', () => { closedAt = Date.now() })
  await new Promise<void>((resolve) => { socket.once('connect', resolve); socket.once('close', resolve) })
  let written = 0
  const chunk = Buffer.alloc(64 * 1024, 0x41)
  if (closedAt === null) { socket.write(first); written += first.length }
  while (written < bytes && closedAt === null && Date.now() - start < budgetMs) {
    if (!socket.write(chunk)) await new Promise((resolve) => { socket.once('drain', resolve); socket.once('close', resolve); setTimeout(resolve, 200) })
    written += chunk.length
  }
  // Give the hub a moment to act on the last bytes, then stop either way.
  const deadline = Date.now() + 1000
  while (closedAt === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const closedAfterMs = closedAt === null ? null : (closedAt as number) - start
  socket.destroy()
  return { written, closedAfterMs }
}

export interface ToolRun { code: number | null, stdout: string, stderr: string }

/** Runs one of mosquitto's clients, bounded in time; `input` goes to its stdin. */
export async function mosquittoClient (tool: 'mosquitto_pub' | 'mosquitto_sub', args: string[], o: { timeoutMs: number, input?: Buffer, onOutput?: (text: string) => void }): Promise<ToolRun> {
  const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); o.onOutput?.(d.toString()) })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.on('error', () => {})
  if (o.input !== undefined) child.stdin.end(o.input)
  else child.stdin.end()
  const timer = setTimeout(() => { child.kill('SIGKILL') }, o.timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

export interface Credentials { memberId: string, token: string, clientId: string }

/** Pairs a device and a resident's screen through the owner's API, as at home. */
export async function pairDeviceAndScreen (base: string, asOwner: HubApi, deviceId: string): Promise<{ device: Credentials, screen: Credentials & { viewerId: string } }> {
  const api = new HubApi({ base })
  const deviceInvite = await asOwner.invite({ kind: 'device', deviceId })
  const device = await api.pair({ kind: 'device', code: deviceInvite.code, id: deviceId, name: 'Front door' })
  const screenInvite = await asOwner.invite({ kind: 'viewer', role: 'resident' })
  const viewerId = newId('v')
  const key = await generateSigningKey(false)
  const screen = await api.pair({ kind: 'viewer', code: screenInvite.code, id: viewerId, name: 'Kitchen', key: await exportPublicKey(key.publicKey) })
  return {
    device: { memberId: device.member.id, token: device.token, clientId: `device-${deviceId}` },
    screen: { memberId: screen.member.id, token: screen.token, clientId: `viewer-${viewerId}-t1`, viewerId }
  }
}

const field = (s: string): Buffer => { const b = Buffer.from(s, 'utf8'); const len = Buffer.alloc(2); len.writeUInt16BE(b.length); return Buffer.concat([len, b]) }

/** An MQTT 3.1.1 CONNECT (§3.1) with a user name and password, clean session, keep-alive 60 s. */
export function connectPacket (clientId: string, username: string, password: string): Buffer {
  const variable = Buffer.concat([field('MQTT'), Buffer.from([4, 0xc2, 0, 60])])
  const payload = Buffer.concat([field(clientId), field(username), field(password)])
  return Buffer.concat([fixedHeader(1, variable.length + payload.length), variable, payload])
}

/**
 * Signs in from a given local address (`127.0.0.2`: another machine as far as an address-keyed
 * limit can tell), over TLS (through nginx's stream, trusting `ca`) or raw TCP, after `preamble`;
 * resolves with the CONNACK's return code, or 'closed' if the far end hung up first.
 */
export async function signInFrom (o: { port: number, localAddress: string, ca?: string, preamble?: Buffer }, packet: Buffer, timeoutMs = 5000): Promise<number | 'closed'> {
  const tcp = createConnection({ host: '127.0.0.1', port: o.port, localAddress: o.localAddress })
  tcp.on('error', () => {})
  const socket: Socket = o.ca !== undefined ? tlsConnect({ socket: tcp, ca: o.ca, servername: 'localhost' }) : tcp
  socket.on('error', () => {})
  try {
    return await new Promise<number | 'closed'>((resolve) => {
      let got = Buffer.alloc(0)
      const timer = setTimeout(() => resolve('closed'), timeoutMs)
      socket.once(o.ca !== undefined ? 'secureConnect' : 'connect', () => { socket.write(Buffer.concat([o.preamble ?? Buffer.alloc(0), packet])) })
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d])
        if (got.length >= 4 && got[0] === 0x20) { clearTimeout(timer); resolve(got[3]!) }
      })
      socket.once('close', () => { clearTimeout(timer); resolve('closed') })
    })
  } finally {
    socket.destroy()
    tcp.destroy()
  }
}

/**
 * Signs in over raw TCP, after `preamble` (a PROXY header, as nginx sends it); resolves with the
 * CONNACK's return code, or 'closed' if the hub hung up first.
 */
export async function signInRaw (port: number, packet: Buffer, preamble: Buffer = Buffer.alloc(0), timeoutMs = 5000): Promise<number | 'closed'> {
  const socket = createConnection({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  try {
    return await new Promise<number | 'closed'>((resolve) => {
      let got = Buffer.alloc(0)
      const timer = setTimeout(() => resolve('closed'), timeoutMs)
      socket.once('connect', () => { socket.write(Buffer.concat([preamble, packet])) })
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d])
        if (got.length >= 4 && got[0] === 0x20) { clearTimeout(timer); resolve(got[3]!) }
      })
      socket.once('close', () => { clearTimeout(timer); resolve('closed') })
    })
  } finally {
    socket.destroy()
  }
}
