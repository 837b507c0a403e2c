import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { WebSocketServer, type RawData, type WebSocket } from 'ws'
import type { Pki } from '../pki'
import { verifyHeaderSigned, verifyPresignedUrl, type CredentialStore, type SigV4Result } from '../sigv4'

/**
 * A stand-in for Amazon Kinesis Video Streams WebRTC signaling, following its public API (the
 * control plane the AWS SDK v3 clients call, and the WebSocket protocol of the KVS WebRTC SDK).
 * It is not AWS: see README.md for what it checks and what it does not.
 */

export interface KvsLimits {
  /** Viewer connections per channel (KVS: 10). The next one is refused at upgrade. */
  maxViewers: number
  /** A connection is closed this long after it opened (KVS: 1 hour). */
  connectionMs: number
  /** A connection is closed after this long without a message from its client (KVS: 10 minutes). */
  idleMs: number
  /** Longest `messagePayload` accepted, in characters of its base64 text (KVS: "Maximum length of 10K"). */
  payloadBytes: number
}

export interface IceServerSpec { Uris: string[], Username: string, Password: string, Ttl: number }

export interface KvsLogEntry { at: number, channel: string, from: string, to: string, action: string, outcome: 'routed' | 'refused', reason?: string }

/** How the log names the master (viewer client ids cannot contain parentheses). */
export const MASTER = '(master)'

const DEFAULT_LIMITS: KvsLimits = { maxViewers: 10, connectionMs: 3_600_000, idleMs: 600_000, payloadBytes: 10_240 }
const ACTIONS = new Set(['SDP_OFFER', 'SDP_ANSWER', 'ICE_CANDIDATE'])
/** The pattern KVS documents for client ids, correlation ids and channel names. */
const ID = /^[a-zA-Z0-9_.-]{1,256}$/
const MAX_BODY_BYTES = 1 << 20
const CORS_ALLOW_HEADERS = 'authorization, content-type, x-amz-date, x-amz-security-token, x-amz-user-agent, x-amz-content-sha256, amz-sdk-invocation-id, amz-sdk-request'
const CORS_EXPOSE_HEADERS = 'x-amzn-requestid, x-amzn-errortype'

interface Channel {
  name: string
  arn: string
  createdAt: number
  version: string
  messageTtlSeconds: number
  master?: Connection
  viewers: Map<string, Connection>
}

interface Connection {
  socket: WebSocket
  channel: Channel
  /** The viewer's X-Amz-ClientId; undefined for the master. */
  clientId?: string
  timers: { lifetime: NodeJS.Timeout, idle?: NodeJS.Timeout }
}

/** An error answered the way the AWS SDK v3 parses REST-JSON errors: status, x-amzn-ErrorType, `{ Message }`. */
class AwsError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

export class KvsEmulator {
  readonly endpoint: string
  readonly region: string
  readonly accountId: string
  readonly log: KvsLogEntry[] = []

  private readonly channels = new Map<string, Channel>()
  private readonly byArn = new Map<string, Channel>()
  private readonly limits: KvsLimits
  private readonly iceServers: () => IceServerSpec[]
  private readonly wss: WebSocketServer

  private constructor (
    private readonly server: Server,
    private readonly store: CredentialStore,
    o: { region?: string, accountId?: string, limits?: Partial<KvsLimits>, iceServers?: () => IceServerSpec[] }
  ) {
    this.endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
    this.region = o.region ?? 'us-east-1'
    this.accountId = o.accountId ?? '123456789012'
    this.limits = { ...DEFAULT_LIMITS, ...o.limits }
    this.iceServers = o.iceServers ?? (() => [])
    // Frames far larger than a payload could be are cut off by ws itself (close 1009); anything
    // up to this size reaches the message checks, so an oversized payload gets its STATUS_RESPONSE.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: Math.max(128 * 1024, 4 * this.limits.payloadBytes) })
    server.on('request', (req, res) => { this.onRequest(req, res) })
    server.on('upgrade', (req, socket: Socket, head: Buffer) => { this.onUpgrade(req, socket, head) })
  }

  static async start (o: { pki: Pki, store: CredentialStore, region?: string, accountId?: string, limits?: Partial<KvsLimits>, iceServers?: () => IceServerSpec[] }): Promise<KvsEmulator> {
    const tls = await o.pki.issueServer(['127.0.0.1', 'localhost'])
    const server = createServer({ key: tls.keyPem, cert: tls.certPem })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    return new KvsEmulator(server, o.store, o)
  }

  /** Test convenience: creates the channel if needed and returns its ARN. */
  createChannel (name: string): string {
    return (this.channels.get(name) ?? this.addChannel(name, 60)).arn
  }

  connections (channelName: string): { master: boolean, viewers: string[] } {
    const channel = this.channels.get(channelName)
    return { master: channel?.master !== undefined, viewers: [...channel?.viewers.keys() ?? []] }
  }

  /** Close every socket of a channel (or all) abruptly, as a network drop would: no close frame. */
  drop (channelName?: string): void {
    for (const channel of this.channels.values()) {
      if (channelName !== undefined && channel.name !== channelName) continue
      for (const c of connectionsOf(channel)) {
        this.forget(c)
        c.socket.terminate()
      }
    }
  }

  async stop (): Promise<void> {
    for (const channel of this.channels.values()) {
      for (const c of connectionsOf(channel)) this.forget(c)
    }
    for (const socket of this.wss.clients) socket.terminate()
    this.wss.close()
    const closed = new Promise<void>((resolve) => this.server.close(() => { resolve() }))
    this.server.closeAllConnections()
    await closed
  }

  // ---- control plane (HTTPS, REST-JSON, SigV4 header auth) ----

  private onRequest (req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('x-amzn-RequestId', randomUUID())
    const origin = req.headers.origin
    if (origin !== undefined) {
      res.setHeader('Access-Control-Allow-Origin', origin)
      res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS)
      res.setHeader('Vary', 'Origin')
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(200, {
        'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
        'Access-Control-Allow-Headers': CORS_ALLOW_HEADERS,
        'Access-Control-Max-Age': '600',
        'Content-Length': '0'
      }).end()
      return
    }
    readBody(req).then((body) => {
      const [rawPath = '/', rawQuery = ''] = (req.url ?? '/').split(/\?(.*)/s)
      const auth = verifyHeaderSigned({ method: req.method ?? 'GET', rawPath, rawQuery, headers: req.headers, body }, this.store, { service: 'kinesisvideo' })
      this.checkAuth(auth)
      if (req.method !== 'POST') throw new AwsError(404, 'UnknownOperationException', `No operation at ${req.method} ${rawPath}`)
      let input: Record<string, unknown>
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8')) as Record<string, unknown>
      } catch {
        throw new AwsError(400, 'SerializationException', 'The request body is not valid JSON.')
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new AwsError(400, 'SerializationException', 'The request body must be a JSON object.')
      return this.operation(rawPath, input)
    }).then((output) => {
      const text = JSON.stringify(output)
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text)
    }, (err: unknown) => {
      const e = err instanceof AwsError ? err : new AwsError(500, 'InternalFailure', (err as Error).message)
      const text = JSON.stringify({ Message: e.message })
      if (res.headersSent) return
      res.writeHead(e.status, { 'Content-Type': 'application/json', 'x-amzn-ErrorType': e.code, 'Content-Length': Buffer.byteLength(text) }).end(text)
    })
  }

  /** A refused signature becomes the error AWS answers with; a valid one must be scoped to this region. */
  private checkAuth (auth: SigV4Result): void {
    if (!auth.ok) throw new AwsError(auth.status, auth.code, auth.message)
    if (auth.region !== this.region) throw new AwsError(403, 'InvalidSignatureException', `Credential should be scoped to a valid region, not '${auth.region}'.`)
  }

  private operation (path: string, input: Record<string, unknown>): unknown {
    switch (path) {
      case '/createSignalingChannel': {
        const name = requiredString(input, 'ChannelName')
        if (!ID.test(name)) throw invalid('ChannelName must match [a-zA-Z0-9_.-]{1,256}.')
        if ((input.ChannelType ?? 'SINGLE_MASTER') !== 'SINGLE_MASTER') throw invalid('Only SINGLE_MASTER channels are emulated.')
        if (this.channels.has(name)) throw new AwsError(400, 'ResourceInUseException', `The signaling channel ${name} already exists.`)
        const ttl = (input.SingleMasterConfiguration as { MessageTtlSeconds?: unknown } | undefined)?.MessageTtlSeconds ?? 60
        if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 5 || ttl > 120) throw invalid('MessageTtlSeconds must be an integer from 5 to 120.')
        return { ChannelARN: this.addChannel(name, ttl).arn }
      }
      case '/describeSignalingChannel': {
        const channel = this.channelFor(input)
        return { ChannelInfo: channelInfo(channel) }
      }
      case '/deleteSignalingChannel': {
        const channel = this.channelByArn(requiredString(input, 'ChannelARN'))
        if (input.CurrentVersion !== undefined && input.CurrentVersion !== channel.version) {
          throw new AwsError(400, 'VersionMismatchException', `The channel's version is ${channel.version}, not ${String(input.CurrentVersion)}.`)
        }
        for (const c of connectionsOf(channel)) this.close(c, 1001, 'channel deleted')
        this.channels.delete(channel.name)
        this.byArn.delete(channel.arn)
        return {}
      }
      case '/listSignalingChannels': {
        const condition = input.ChannelNameCondition as { ComparisonOperator?: unknown, ComparisonValue?: unknown } | undefined
        const prefix = typeof condition?.ComparisonValue === 'string' ? condition.ComparisonValue : ''
        const all = [...this.channels.values()].filter((c) => c.name.startsWith(prefix)).sort((a, b) => a.name.localeCompare(b.name))
        const start = typeof input.NextToken === 'string' ? Number(input.NextToken) : 0
        if (!Number.isInteger(start) || start < 0) throw invalid('NextToken is not one this service gave.')
        const max = typeof input.MaxResults === 'number' ? input.MaxResults : 500
        const page = all.slice(start, start + max)
        return { ChannelInfoList: page.map(channelInfo), ...(start + max < all.length ? { NextToken: String(start + max) } : {}) }
      }
      case '/getSignalingChannelEndpoint': {
        this.channelByArn(requiredString(input, 'ChannelARN'))
        const config = (input.SingleMasterChannelEndpointConfiguration ?? {}) as { Protocols?: unknown, Role?: unknown }
        const protocols = config.Protocols ?? ['WSS', 'HTTPS']
        const role = config.Role ?? 'MASTER'
        if (role !== 'MASTER' && role !== 'VIEWER') throw invalid('Role must be MASTER or VIEWER.')
        if (!Array.isArray(protocols) || protocols.some((p) => p !== 'WSS' && p !== 'HTTPS')) throw invalid('Protocols may only hold WSS and HTTPS here.')
        const host = this.endpoint.slice('https://'.length)
        // Real KVS gives each role its own host; one server answers both here.
        return { ResourceEndpointList: (protocols as string[]).map((p) => ({ Protocol: p, ResourceEndpoint: `${p === 'WSS' ? 'wss' : 'https'}://${host}` })) }
      }
      case '/v1/get-ice-server-config': {
        this.channelByArn(requiredString(input, 'ChannelARN'))
        if (input.Service !== undefined && input.Service !== 'TURN') throw invalid('Service must be TURN.')
        return { IceServerList: this.iceServers() }
      }
      default:
        throw new AwsError(404, 'UnknownOperationException', `No operation at POST ${path}`)
    }
  }

  private addChannel (name: string, messageTtlSeconds: number): Channel {
    const createdAt = Date.now()
    const channel: Channel = {
      name,
      arn: `arn:aws:kinesisvideo:${this.region}:${this.accountId}:channel/${name}/${createdAt}`,
      createdAt,
      version: randomUUID().replace(/-/g, '').slice(0, 20),
      messageTtlSeconds,
      viewers: new Map()
    }
    this.channels.set(name, channel)
    this.byArn.set(channel.arn, channel)
    return channel
  }

  private channelFor (input: Record<string, unknown>): Channel {
    if (typeof input.ChannelARN === 'string') return this.channelByArn(input.ChannelARN)
    if (typeof input.ChannelName === 'string') {
      const channel = this.channels.get(input.ChannelName)
      if (channel === undefined) throw notFound()
      return channel
    }
    throw invalid('Either ChannelName or ChannelARN is required.')
  }

  private channelByArn (arn: string): Channel {
    const channel = this.byArn.get(arn)
    if (channel === undefined) throw notFound()
    return channel
  }

  // ---- signaling (WebSocket, SigV4 presigned URL) ----

  private onUpgrade (req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => { /* a client that goes away mid-handshake is not the emulator's problem */ })
    const host = req.headers.host ?? ''
    const url = new URL(req.url ?? '/', `https://${host}`)
    const arn = url.searchParams.get('X-Amz-ChannelARN') ?? ''
    const clientId = url.searchParams.get('X-Amz-ClientId') ?? undefined
    const from = clientId ?? MASTER
    let channel: Channel
    try {
      if (url.pathname !== '/') throw new AwsError(404, 'ResourceNotFoundException', `Nothing at ${url.pathname}.`)
      this.checkAuth(verifyPresignedUrl(url, host, this.store, { service: 'kinesisvideo' }))
      if (arn === '') throw invalid('X-Amz-ChannelARN is required.')
      channel = this.channelByArn(arn)
      if (clientId !== undefined && (!ID.test(clientId) || /^aws_/i.test(clientId))) throw invalid('X-Amz-ClientId must match [a-zA-Z0-9_.-]{1,256} and not start with AWS_.')
      if (clientId !== undefined && !channel.viewers.has(clientId) && channel.viewers.size >= this.limits.maxViewers) {
        throw new AwsError(400, 'ClientLimitExceededException', `The channel already has ${channel.viewers.size} viewers connected.`)
      }
    } catch (err) {
      const e = err instanceof AwsError ? err : new AwsError(500, 'InternalFailure', (err as Error).message)
      this.record(this.byArn.get(arn)?.name ?? '', from, '', 'CONNECT', 'refused', `${e.status} ${e.code}: ${e.message}`)
      refuseUpgrade(socket, e)
      return
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => { this.attach(ws, channel, clientId) })
  }

  /**
   * The newest connection wins, as KVS documents for both roles. KVS only overwrites its routing
   * metadata; here the replaced socket is also closed (1000, "replaced"), so a test sees it happen.
   */
  private attach (socket: WebSocket, channel: Channel, clientId: string | undefined): void {
    const previous = clientId === undefined ? channel.master : channel.viewers.get(clientId)
    const c: Connection = {
      socket,
      channel,
      ...(clientId !== undefined ? { clientId } : {}),
      timers: { lifetime: setTimeout(() => { this.close(c, 1001, 'connection duration limit reached') }, this.limits.connectionMs).unref() }
    }
    if (clientId === undefined) channel.master = c
    else channel.viewers.set(clientId, c)
    if (previous !== undefined) this.close(previous, 1000, 'replaced by a newer connection')
    this.touch(c)
    socket.on('message', (data: RawData, isBinary: boolean) => { this.onMessage(c, data, isBinary) })
    // ws reports oversized frames and protocol errors here, then closes the socket itself.
    socket.on('error', (err) => { this.record(channel.name, clientId ?? MASTER, '', '', 'refused', err.message) })
    socket.on('close', () => { this.forget(c) })
  }

  /** Restarts the idle timer: a connection lives idleMs after its client's last message. */
  private touch (c: Connection): void {
    if (c.timers.idle !== undefined) clearTimeout(c.timers.idle)
    c.timers.idle = setTimeout(() => { this.close(c, 1001, 'idle timeout') }, this.limits.idleMs).unref()
  }

  /** Closes `c` from the service's side; it stops being routed to at once, not when the client acknowledges. */
  private close (c: Connection, code: number, reason: string): void {
    this.forget(c)
    c.socket.close(code, reason)
  }

  /** Stops routing to `c` and clears its timers; only removes it if it is still the registered one. */
  private forget (c: Connection): void {
    clearTimeout(c.timers.lifetime)
    if (c.timers.idle !== undefined) clearTimeout(c.timers.idle)
    if (c.clientId === undefined) {
      if (c.channel.master === c) delete c.channel.master
    } else if (c.channel.viewers.get(c.clientId) === c) {
      c.channel.viewers.delete(c.clientId)
    }
  }

  private onMessage (c: Connection, data: RawData, isBinary: boolean): void {
    this.touch(c)
    const channel = c.channel.name
    const from = c.clientId ?? MASTER
    let message: Record<string, unknown>
    try {
      if (isBinary) throw new Error('binary frame')
      const parsed: unknown = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'))
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object')
      message = parsed as Record<string, unknown>
    } catch (err) {
      // Without a parsed message there is no correlationId to answer to: dropped.
      this.record(channel, from, '', '', 'refused', `malformed message: ${(err as Error).message}`)
      return
    }
    const action = typeof message.action === 'string' ? message.action : ''
    const correlationId = typeof message.correlationId === 'string' && ID.test(message.correlationId) ? message.correlationId : undefined
    const refuse = (to: string, errorType: string, statusCode: number, description: string): void => {
      this.record(channel, from, to, action, 'refused', `${errorType}: ${description}`)
      if (correlationId === undefined) return
      send(c.socket, { messageType: 'STATUS_RESPONSE', statusResponse: { correlationId, errorType, statusCode: String(statusCode), description } })
    }

    if (!ACTIONS.has(action)) return refuse('', 'InvalidArgumentException', 400, `action must be one of ${[...ACTIONS].join(', ')}.`)
    if (message.correlationId !== undefined && correlationId === undefined) return refuse('', 'InvalidArgumentException', 400, 'correlationId must match [a-zA-Z0-9_.-]{1,256}.')
    const payload = message.messagePayload
    if (typeof payload !== 'string' || payload.length === 0) return refuse('', 'InvalidArgumentException', 400, 'messagePayload is required.')
    if (payload.length > this.limits.payloadBytes) return refuse('', 'InvalidArgumentException', 400, `messagePayload is ${payload.length} characters, over the limit of ${this.limits.payloadBytes}.`)

    if (c.clientId !== undefined) {
      // A viewer always talks to the master; KVS documents that a recipientClientId from a viewer is ignored.
      const master = c.channel.master
      if (master === undefined) return refuse(MASTER, 'ResourceNotFoundException', 404, 'The master is not connected.')
      send(master.socket, { messageType: action, messagePayload: payload, senderClientId: c.clientId })
      this.record(channel, from, MASTER, action, 'routed')
      return
    }
    const recipient = message.recipientClientId
    if (typeof recipient !== 'string' || recipient === '') return refuse('', 'InvalidArgumentException', 400, 'recipientClientId is required for messages from the master.')
    const viewer = c.channel.viewers.get(recipient)
    if (viewer === undefined) return refuse(recipient, 'ResourceNotFoundException', 404, `The viewer ${recipient} is not connected.`)
    send(viewer.socket, { messageType: action, messagePayload: payload })
    this.record(channel, from, recipient, action, 'routed')
  }

  private record (channel: string, from: string, to: string, action: string, outcome: 'routed' | 'refused', reason?: string): void {
    this.log.push({ at: Date.now(), channel, from, to, action, outcome, ...(reason !== undefined ? { reason } : {}) })
  }
}

function connectionsOf (channel: Channel): Connection[] {
  return [...(channel.master ? [channel.master] : []), ...channel.viewers.values()]
}

function channelInfo (c: Channel): Record<string, unknown> {
  return {
    ChannelName: c.name,
    ChannelARN: c.arn,
    ChannelType: 'SINGLE_MASTER',
    ChannelStatus: 'ACTIVE',
    // REST-JSON timestamps are epoch seconds.
    CreationTime: c.createdAt / 1000,
    SingleMasterConfiguration: { MessageTtlSeconds: c.messageTtlSeconds },
    Version: c.version
  }
}

function send (socket: WebSocket, message: Record<string, unknown>): void {
  socket.send(JSON.stringify(message))
}

/** Refuses a WebSocket upgrade with an HTTP response, as the service does before switching protocols. */
function refuseUpgrade (socket: Socket, e: AwsError): void {
  const body = JSON.stringify({ Message: e.message })
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? ''}\r\n` +
    `Content-Type: application/json\r\nx-amzn-ErrorType: ${e.code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  )
}

function requiredString (input: Record<string, unknown>, name: string): string {
  const value = input[name]
  if (typeof value !== 'string' || value === '') throw invalid(`${name} is required.`)
  return value
}

function invalid (message: string): AwsError {
  return new AwsError(400, 'InvalidArgumentException', message)
}

function notFound (): AwsError {
  return new AwsError(404, 'ResourceNotFoundException', 'The requested channel is not found or not active.')
}

/** The whole body; one over MAX_BODY_BYTES is read to its end (so the answer can still be sent) and refused. */
function readBody (req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    })
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) reject(new AwsError(413, 'InvalidArgumentException', `The request body is over ${MAX_BODY_BYTES} bytes.`))
      else resolve(Buffer.concat(chunks))
    })
    req.on('error', reject)
  })
}
