import { z } from 'zod'
import { ChannelArn } from './cloud'
import type { IceServerInit } from './transport'

/**
 * The KVS control-plane calls of the cloud path, written once for the doorbell (MASTER) and the
 * viewer (VIEWER): DescribeSignalingChannel → the channel's ARN; GetSignalingChannelEndpoint
 * (WSS + HTTPS, for the role) → where to connect; GetIceServerConfig on the HTTPS endpoint → the
 * TURN servers. AWS SDK v3 clients, which run in browsers and in Node, loaded on first use (a
 * page that never goes to the cloud never downloads them). Every answer is parsed by a schema
 * before it is used: an ARN that is not a channel's, an endpoint that is not wss:// or https://,
 * a TURN URI that is not turn: or turns:, a server without credentials are refused or dropped.
 */

/** Where a role connects to a channel. */
export interface KvsChannel { channelARN: string, wssEndpoint: string, httpsEndpoint: string }
/** TURN servers in the browser's (and werift's) shape, and how long their credentials last (the shortest). */
export interface KvsIceConfig { servers: IceServerInit[], ttlSeconds: number }

export interface KvsControlPlane {
  /** DescribeSignalingChannel, then GetSignalingChannelEndpoint for this plane's role. */
  channel: (channelName: string, signal?: AbortSignal) => Promise<KvsChannel>
  /** GetIceServerConfig (TURN) on the channel's HTTPS endpoint; `clientId` for a viewer. */
  iceServers: (channel: KvsChannel, clientId?: string, signal?: AbortSignal) => Promise<KvsIceConfig>
  /** The clock correction the SDK learned from AWS's answers (ms; 0 until it sees a skew). */
  readonly clockOffsetMs: number
  destroy: () => void
}

/** An answer from the control plane that is not what the API promises; its message is said to a person as is. */
export class UnexpectedKvsAnswer extends Error {
  override readonly name = 'UnexpectedKvsAnswer'
}

/** AWS credentials as the SDK takes them: fixed, or a provider it asks when they run out. */
export type KvsCredentials =
  | { accessKeyId: string, secretAccessKey: string, sessionToken?: string | undefined }
  | (() => Promise<{ accessKeyId: string, secretAccessKey: string, sessionToken?: string | undefined, expiration?: Date | undefined }>)

export interface KvsControlPlaneOptions {
  region: string
  role: 'MASTER' | 'VIEWER'
  credentials: KvsCredentials
  /** Control-plane override, https://host:port (stand-ins); default: the region's. */
  endpoint?: string | undefined
  /** More SDK client settings (the device's HTTPS agent trusting a stand-in's CA, timeouts, retries). */
  clientOptions?: Record<string, unknown>
}

/** ICE servers KVS hands out last this long when it does not say (its documented default). */
const DEFAULT_TTL_S = 300
const MAX_URL = 2048

// The answers, as far as we use them (AWS may add fields: not strict).
const Described = z.object({
  ChannelInfo: z.object({ ChannelARN: ChannelArn, ChannelStatus: z.string().optional() })
})
const Endpoints = z.object({
  ResourceEndpointList: z.array(z.object({ Protocol: z.string().optional(), ResourceEndpoint: z.string().optional() })).optional()
})
const TurnUri = z.string().regex(/^turns?:[^\s]{1,500}$/)
const IceServerConfig = z.object({
  IceServerList: z.array(z.object({
    Uris: z.array(z.unknown()).optional(),
    Username: z.string().optional(),
    Password: z.string().optional(),
    Ttl: z.number().optional()
  })).optional()
})

type KvsSdk = [typeof import('@aws-sdk/client-kinesis-video'), typeof import('@aws-sdk/client-kinesis-video-signaling')]

/** The KVS control plane for one role, with AWS SDK v3 clients made on first use. */
export function kvsControlPlane (o: KvsControlPlaneOptions): KvsControlPlane {
  let sdk: Promise<KvsSdk> | null = null
  const load = async (): Promise<KvsSdk> => await (sdk ??= Promise.all([import('@aws-sdk/client-kinesis-video'), import('@aws-sdk/client-kinesis-video-signaling')]))
  const base = { region: o.region, credentials: o.credentials, ...o.clientOptions }
  let control: import('@aws-sdk/client-kinesis-video').KinesisVideoClient | null = null
  // One signaling client per HTTPS endpoint (a channel's endpoint may move).
  const signaling = new Map<string, import('@aws-sdk/client-kinesis-video-signaling').KinesisVideoSignalingClient>()
  const send = (signal: AbortSignal | undefined) => (signal ? { abortSignal: signal } : {})
  return {
    get clockOffsetMs (): number {
      return (control?.config as { systemClockOffset?: number } | undefined)?.systemClockOffset ?? 0
    },

    async channel (channelName, signal) {
      const [kv] = await load()
      control ??= new kv.KinesisVideoClient({ ...base, ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}) })
      const described = Described.safeParse(await control.send(new kv.DescribeSignalingChannelCommand({ ChannelName: channelName }), send(signal)))
      if (!described.success) throw new UnexpectedKvsAnswer(`KVS described "${channelName}" without a valid channel ARN`)
      const { ChannelARN: channelARN, ChannelStatus: status } = described.data.ChannelInfo
      if (status !== undefined && status !== 'ACTIVE') throw new UnexpectedKvsAnswer(`the signaling channel "${channelName}" is not active (${status})`)
      const ends = Endpoints.safeParse(await control.send(new kv.GetSignalingChannelEndpointCommand({
        ChannelARN: channelARN,
        SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS', 'HTTPS'], Role: o.role }
      }), send(signal)))
      const of = (protocol: string, scheme: string): string => {
        const url = ends.success ? ends.data.ResourceEndpointList?.find((e) => e.Protocol === protocol)?.ResourceEndpoint : undefined
        if (typeof url !== 'string' || !url.startsWith(`${scheme}://`) || url.length > MAX_URL) throw new UnexpectedKvsAnswer(`KVS gave no ${protocol} endpoint for "${channelName}"`)
        return url
      }
      return { channelARN, wssEndpoint: of('WSS', 'wss'), httpsEndpoint: of('HTTPS', 'https') }
    },

    async iceServers (channel, clientId, signal) {
      const [, ks] = await load()
      let client = signaling.get(channel.httpsEndpoint)
      if (!client) {
        client = new ks.KinesisVideoSignalingClient({ ...base, endpoint: channel.httpsEndpoint })
        signaling.set(channel.httpsEndpoint, client)
      }
      const parsed = IceServerConfig.safeParse(await client.send(new ks.GetIceServerConfigCommand({
        ChannelARN: channel.channelARN,
        ...(clientId !== undefined ? { ClientId: clientId } : {}),
        Service: 'TURN'
      }), send(signal)))
      if (!parsed.success) throw new UnexpectedKvsAnswer('KVS gave ICE servers that are not a list of TURN servers')
      const servers: IceServerInit[] = []
      let ttl = Infinity
      for (const s of parsed.data.IceServerList ?? []) {
        const urls = (s.Uris ?? []).filter((u): u is string => TurnUri.safeParse(u).success)
        if (urls.length === 0 || s.Username === undefined || s.Password === undefined) continue
        servers.push({ urls, username: s.Username, credential: s.Password })
        if (s.Ttl !== undefined && s.Ttl > 0) ttl = Math.min(ttl, s.Ttl)
      }
      return { servers, ttlSeconds: Number.isFinite(ttl) ? ttl : DEFAULT_TTL_S }
    },

    destroy () {
      control?.destroy()
      for (const c of signaling.values()) c.destroy()
      signaling.clear()
    }
  }
}
