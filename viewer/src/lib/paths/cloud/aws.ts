import {
  UnexpectedKvsAnswer, kvsControlPlane,
  type AwsCredentials, type CloudDevice, type IceServerInit, type KvsChannel, type KvsIceConfig, type ViewerCloudConfig
} from '@doorbell/core'

/**
 * The cloud path's dealings with AWS, for the viewer: the KVS control plane (core's, per
 * doorbell), the KVS SDK's SignalingClient loaded on first use, KVS's STUN server, and what went
 * wrong said in a resident's words.
 */

/** What the control plane tells about one channel (core/src/kvsControlPlane.ts). */
export type { KvsChannel, KvsIceConfig }

/** The KVS control plane (default: AWS SDK v3; tests inject their own). */
export interface KvsControlPlane {
  /** DescribeSignalingChannel, then GetSignalingChannelEndpoint (VIEWER, WSS + HTTPS). */
  channel: (device: CloudDevice, signal: AbortSignal) => Promise<KvsChannel>
  /** GetIceServerConfig (TURN) on the channel's HTTPS endpoint. */
  iceServers: (channel: KvsChannel, clientId: string, signal: AbortSignal) => Promise<KvsIceConfig>
}

/** What the KVS SDK's SignalingClient is given. */
export interface SignalingConfig {
  role: 'VIEWER'
  clientId: string
  region: string
  channelARN: string
  channelEndpoint: string
  credentials: AwsCredentials
}

/** The part of the KVS SDK's SignalingClient this client uses. */
export interface SignalingLike {
  open: () => void
  close: () => void
  sendSdpOffer: (payload: any) => void
  /** Trickle ICE (the stock protocol only: our offers carry every candidate). */
  sendIceCandidate?: (candidate: any) => void
  on(event: 'open' | 'close', listener: () => void): unknown
  on(event: 'iceCandidate', listener: (candidate: unknown, senderClientId?: string) => void): unknown
  on(event: 'error', listener: (error: unknown) => void): unknown
  on(event: 'sdpAnswer', listener: (payload: unknown, senderClientId?: string) => void): unknown
}


/** KVS's STUN server of the region, on AWS only (stand-ins have no internet, and need none). */
export function kvsStun (config: Pick<ViewerCloudConfig, 'region' | 'kvsEndpoint'>): IceServerInit[] {
  if (config.kvsEndpoint !== undefined) return []
  const domain = config.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'
  return [{ urls: `stun:stun.kinesisvideo.${config.region}.${domain}:443` }]
}

/** KVS refused for now: too many viewers on the channel (`ClientLimitExceededException`) or throttled. */
export const KVS_BUSY = 'cloud signaling is busy right now: try again in a moment'

/**
 * What went wrong, for a resident: the AWS error codes and network failures this path meets,
 * each said with what to do. Used as the `bye` message of the offers that fail with it.
 */
export function describeCloudError (err: unknown, device: Pick<CloudDevice, 'channelName'>, region: string): string {
  const e = (err ?? {}) as { name?: string, message?: string, code?: string, $metadata?: { httpStatusCode?: number } }
  const name = e.name ?? ''
  const message = e.message ?? String(err)
  const status = e.$metadata?.httpStatusCode
  if (err instanceof UnexpectedKvsAnswer) return message
  if (/Signature (expired|not yet current)/i.test(message)) return 'AWS refused the request because this device\'s clock is off: set the clock right and try again'
  switch (name) {
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
    case 'InvalidSignatureException':
    case 'SignatureDoesNotMatch':
    case 'IncompleteSignatureException':
    case 'MissingAuthenticationTokenException':
      return 'cloud signaling refused the credentials: check them in Settings'
    case 'ExpiredTokenException':
    case 'ExpiredToken':
      return 'the AWS session token has expired: enter fresh credentials in Settings'
    case 'AccessDeniedException':
    case 'AccessDenied':
      return `these AWS credentials may not use the signaling channel "${device.channelName}": check their policy`
    case 'ResourceNotFoundException':
      return `there is no signaling channel "${device.channelName}" in ${region}: check the channel in Settings`
    case 'ClientLimitExceededException':
    case 'ThrottlingException':
    case 'TooManyRequestsException':
      return KVS_BUSY
    case 'AbortError':
    case 'TimeoutError':
      return 'AWS did not answer in time: check the internet connection'
  }
  if (status === 401 || status === 403) return 'cloud signaling refused the credentials: check them in Settings'
  if (status === 404) return `there is no signaling channel "${device.channelName}" in ${region}: check the channel in Settings`
  if (status === undefined) return 'cannot reach AWS (no internet, or a wrong endpoint in Settings)'
  return `cloud signaling failed (${name || 'error'} ${status}: ${message})`.slice(0, 300)
}

/**
 * Fetches the cloud path's code (this module's chunk is loaded by then; the KVS and AWS SDKs here)
 * while the hub can still serve it: the service worker keeps every asset it has served, so a page
 * whose hub is gone still has them. Only homes with a cloud path call it.
 */
export async function preloadCloud (): Promise<void> {
  await Promise.all([
    import('amazon-kinesis-video-streams-webrtc/lib/SignalingClient.js'),
    import('amazon-kinesis-video-streams-webrtc/lib/Role.js'),
    import('@aws-sdk/client-kinesis-video'),
    import('@aws-sdk/client-kinesis-video-signaling')
  ])
  performance.mark(CLOUD_READY_MARK)
}
export const CLOUD_READY_MARK = 'doorbell:cloud-ready'

/** The KVS SDK's SignalingClient, unmodified, loaded on first use (its entry point reads `process`, so the class's own module). */
export async function createKvsSignalingClient (config: SignalingConfig): Promise<SignalingLike> {
  const [sc, role] = await Promise.all([
    import('amazon-kinesis-video-streams-webrtc/lib/SignalingClient.js'),
    import('amazon-kinesis-video-streams-webrtc/lib/Role.js')
  ])
  const SignalingClient = sc.SignalingClient ?? (sc as unknown as { default: typeof sc }).default.SignalingClient
  const Role = role.Role ?? (role as unknown as { default: typeof role }).default.Role
  return new SignalingClient({ ...config, role: Role.VIEWER }) as unknown as SignalingLike
}

/** The KVS control plane (core's kvsControlPlane: role VIEWER, answers checked by schemas), per doorbell. */
export function awsControlPlane (config: ViewerCloudConfig, credentials: AwsCredentials): KvsControlPlane {
  const plane = kvsControlPlane({ region: config.region, role: 'VIEWER', credentials, endpoint: config.kvsEndpoint, clientOptions: { maxAttempts: 2 } })
  return {
    channel: async (device, signal) => await plane.channel(device.channelName, signal),
    iceServers: async (channel, clientId, signal) => await plane.iceServers(channel, clientId, signal)
  }
}
