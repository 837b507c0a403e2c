import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Message, classes, makeIntegrityKey, methods, parseMessage } from 'werift'
import { DEPLOYMENT } from './nginx'
import { endChild, exitedAlready } from './child'

/**
 * Debian's coturn (`turnserver`), run by a test with deployment/coturn/turnserver.conf rendered
 * for loopback: the shipped file with its ports, addresses, secret and certificate replaced and
 * loopback peers allowed, so the test runs the configuration people deploy, not a copy of it.
 */

export const TURNSERVER = process.env.TURNSERVER_PATH ?? '/usr/bin/turnserver'
export const TURN_CONF = join(DEPLOYMENT, 'coturn/turnserver.conf')

export interface LoopbackTurnOptions {
  port: number
  tlsPort: number
  minPort: number
  maxPort: number
  /** null: leave the shipped (empty) secret as it is. */
  secret: string | null
  certPath: string
  keyPath: string
  /** Where coturn keeps its pid and its SQLite database (Debian's default is /var/lib/turn). */
  dir: string
}

/** The shipped options a rendering replaces: each must be there once, uncommented. */
const REPLACED = ['listening-port', 'tls-listening-port', 'min-port', 'max-port', 'cert', 'pkey', 'static-auth-secret'] as const

/**
 * The shipped turnserver.conf for loopback. Its deny list stays as shipped (127.0.0.0/8 too):
 * `allowed-peer-ip` lets exactly 127.0.0.1 through, as the file says to do for a doorbell's LAN,
 * and `allow-loopback-peers` lifts coturn's own loopback ban.
 */
export function renderLoopbackTurn (shipped: string, o: LoopbackTurnOptions): string {
  const values: Record<(typeof REPLACED)[number], string | null> = {
    'listening-port': String(o.port),
    'tls-listening-port': String(o.tlsPort),
    'min-port': String(o.minPort),
    'max-port': String(o.maxPort),
    cert: o.certPath,
    pkey: o.keyPath,
    'static-auth-secret': o.secret
  }
  const lines = shipped.split('\n')
  for (const key of REPLACED) {
    const at = lines.flatMap((line, i) => line.startsWith(`${key}=`) ? [i] : [])
    if (at.length !== 1) throw new Error(`deployment/coturn/turnserver.conf: expected one "${key}=" line, found ${at.length}: the rendering in tests/src/coturn.ts no longer matches the shipped file`)
    const value = values[key]
    if (value !== null) lines[at[0]!] = `${key}=${value}`
  }
  return [
    ...lines,
    '# --- rendered for a loopback test ---',
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    'allow-loopback-peers',
    'allowed-peer-ip=127.0.0.1',
    `pidfile=${o.dir}/turnserver.pid`,
    `userdb=${o.dir}/turndb`,
    ''
  ].join('\n')
}

/** A port free on 127.0.0.1 for both UDP and TCP (coturn takes both), tried a bounded number of times. */
export async function freeUdpTcpPort (): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const tcp = createServer()
    const port = await new Promise<number>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen(0, '127.0.0.1', () => { resolve((tcp.address() as { port: number }).port) })
    })
    const udp = createSocket('udp4')
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => { resolve(false) })
      udp.bind(port, '127.0.0.1', () => { resolve(true) })
    })
    await new Promise((resolve) => tcp.close(resolve))
    if (free) {
      await new Promise<void>((resolve) => { udp.close(() => { resolve() }) })
      return port
    }
    udp.close()
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1 after 50 tries')
}

/**
 * One STUN Binding request (RFC 5389 §6) to 127.0.0.1:port over UDP: true when a response with
 * our transaction id comes back within `ms`. How a test knows coturn is really serving.
 */
export async function stunBinding (port: number, ms = 300): Promise<boolean> {
  const id = randomBytes(12)
  const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), id])
  const socket = createSocket('udp4')
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { resolve(false) }, ms)
      socket.on('message', (msg) => {
        // A success response (0x0101) to our transaction.
        if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(id)) {
          clearTimeout(timer)
          resolve(true)
        }
      })
      socket.on('error', () => { clearTimeout(timer); resolve(false) })
      socket.send(request, port, '127.0.0.1')
    })
  } finally {
    socket.close()
  }
}

export interface Coturn {
  proc: ChildProcess
  pid: number
  /** turn: URLs for the hub's `turn.urls` and RTCPeerConnection's iceServers. */
  urls: string[]
  /** The static-auth-secret it was started with ('' when the shipped empty one was kept). */
  secret: string
  port: number
  tlsPort: number
  minPort: number
  maxPort: number
  /** Everything it logged (its log goes to stdout, as the shipped file says). */
  lines: string[]
  stop: () => Promise<void>
}

/**
 * Starts turnserver with the shipped file rendered for loopback; resolves when it answers a STUN
 * Binding request on its port. `secret: null` keeps the shipped (empty) secret.
 */
export async function startCoturn (o: { dir: string, certPath: string, keyPath: string, secret?: string | null }): Promise<Coturn> {
  mkdirSync(o.dir, { recursive: true })
  const port = await freeUdpTcpPort()
  let tlsPort = await freeUdpTcpPort()
  while (tlsPort === port) tlsPort = await freeUdpTcpPort()
  // A small relay range of its own, away from the ephemeral ports Linux hands out (32768-60999).
  const minPort = 20_000 + Math.floor(Math.random() * 400) * 20
  const maxPort = minPort + 19
  const secret = o.secret === undefined ? randomBytes(32).toString('hex') : o.secret
  const conf = join(o.dir, 'turnserver.conf')
  writeFileSync(conf, renderLoopbackTurn(readFileSync(TURN_CONF, 'utf8'), { port, tlsPort, minPort, maxPort, secret, certPath: o.certPath, keyPath: o.keyPath, dir: o.dir }), { mode: 0o600 })
  const proc = spawn(TURNSERVER, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const take = (d: Buffer): void => { lines.push(...d.toString().split('\n').filter(Boolean)) }
  proc.stdout!.on('data', take)
  proc.stderr!.on('data', take)
  const coturn: Coturn = {
    proc,
    pid: proc.pid!,
    urls: [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`],
    secret: secret ?? '',
    port,
    tlsPort,
    minPort,
    maxPort,
    lines,
    async stop () { await endChild(proc) }
  }
  const deadline = Date.now() + 15_000
  while (!exitedAlready(proc) && Date.now() < deadline) {
    if (await stunBinding(port)) return coturn
  }
  const why = exitedAlready(proc) ? `turnserver exited (${proc.exitCode ?? proc.signalCode})` : 'turnserver did not answer STUN within 15 s'
  await coturn.stop()
  throw new Error(`${why}; it said:\n${lines.slice(-30).join('\n')}`)
}

/** REQUESTED-TRANSPORT: UDP (17) in the top byte (RFC 5766 §14.7). */
const UDP_TRANSPORT = 17 << 24

export type TurnAnswer = { ok: true } | { ok: false, code: number, reason: string }

export interface TurnAllocation {
  /** coturn's final answer to the signed Allocate. */
  answer: TurnAnswer
  /** The relayed address, when allocated. */
  relayed: [string, number] | null
  /** CreatePermission for a peer address (RFC 5766 §9): where coturn would relay to. */
  permit: (ip: string) => Promise<TurnAnswer>
  close: () => void
}

/**
 * One TURN allocation over UDP with long-term credentials (RFC 5766 §6, RFC 5389 §10.2), as a
 * client makes it: a first request without them, coturn's 401 with its realm and nonce, then the
 * request signed with them. Shows coturn's answers themselves, success or error code, which
 * werift's own client does not (it drops an error response whose integrity its key cannot check,
 * and times out). Built with werift's STUN message code.
 */
export async function turnAllocate (port: number, username: string, password: string): Promise<TurnAllocation> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => { socket.bind(0, '127.0.0.1', resolve) })
  const exchange = async (request: Message): Promise<Message> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.off('message', onMessage); reject(new Error(`no TURN answer from 127.0.0.1:${port} in 3 s`)) }, 3000)
    const onMessage = (data: Buffer): void => {
      const message = parseMessage(data)
      if (!message || !message.transactionId.equals(request.transactionId)) return
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve(message)
    }
    socket.on('message', onMessage)
    socket.send(request.bytes, port, '127.0.0.1')
  })
  const answerOf = (m: Message): TurnAnswer => {
    if (m.messageClass === classes.RESPONSE) return { ok: true }
    const [code, reason] = m.getAttributeValue('ERROR-CODE') as [number, string]
    return { ok: false, code, reason }
  }
  const allocate = (): Message => new Message(methods.ALLOCATE, classes.REQUEST)
    .setAttribute('LIFETIME', 600)
    .setAttribute('REQUESTED-TRANSPORT', UDP_TRANSPORT)
  try {
    const challenge = await exchange(allocate())
    const first = answerOf(challenge)
    if (first.ok || first.code !== 401) throw new Error(`coturn answered an unsigned Allocate with ${JSON.stringify(first)}, not 401`)
    const realm = challenge.getAttributeValue('REALM') as string
    const nonce = challenge.getAttributeValue('NONCE') as Buffer
    const key = makeIntegrityKey(username, realm, password)
    const sign = (m: Message): Message => m
      .setAttribute('USERNAME', username)
      .setAttribute('REALM', realm)
      .setAttribute('NONCE', nonce)
      .addMessageIntegrity(key)
      .addFingerprint()
    const allocated = await exchange(sign(allocate()))
    const answer = answerOf(allocated)
    return {
      answer,
      relayed: answer.ok ? allocated.getAttributeValue('XOR-RELAYED-ADDRESS') as [string, number] : null,
      permit: async (ip) => answerOf(await exchange(sign(new Message(methods.CREATE_PERMISSION, classes.REQUEST).setAttribute('XOR-PEER-ADDRESS', [ip, 9])))),
      close: () => { socket.close() }
    }
  } catch (err) {
    socket.close()
    throw err
  }
}
