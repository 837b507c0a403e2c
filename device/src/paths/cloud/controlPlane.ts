import { Agent } from 'node:https'
import type { RTCIceServer } from 'werift'
import { kvsControlPlane } from '@doorbell/core'
import type { AwsTemporaryCredentials, StaticCredentials } from './credentials'

export interface ChannelInfo { channelARN: string, wssEndpoint: string, httpsEndpoint: string }

/** An ICE server as werift takes it, with how long its credentials last. */
export interface TimedIceServer { server: RTCIceServer, ttlSeconds: number }

/** The KVS control-plane calls KvsMaster makes (its seam: tests give their own). */
export interface KvsControlPlane {
  channel: () => Promise<ChannelInfo>
  iceServers: (channel: ChannelInfo) => Promise<TimedIceServer[]>
  /** The clock correction the SDK learned from AWS's answers (ms; 0 until it sees a skew). */
  readonly clockOffsetMs: number
  destroy: () => void
}

export interface KvsCredentialSource {
  provider: () => Promise<AwsTemporaryCredentials>
  getStatic: () => Promise<StaticCredentials>
}

export interface DeviceControlPlaneOptions {
  region: string
  channelName: string
  /** Control-plane override, https://host:port (stand-ins). */
  kvsEndpoint?: string | undefined
  credentials: KvsCredentialSource
  /** The stand-ins' CA (PEM), trusted for the control plane's HTTPS. */
  ca: string | undefined
}

/**
 * The KVS control plane (core's kvsControlPlane, role MASTER, answers parsed by schemas) in the
 * shape this class uses, over Node's HTTPS with the stand-ins' CA when one is given.
 */
export function deviceControlPlane (o: DeviceControlPlaneOptions): KvsControlPlane {
  const agent = new Agent({ keepAlive: true, ...(o.ca !== undefined ? { ca: o.ca } : {}) })
  const plane = kvsControlPlane({
    region: o.region,
    role: 'MASTER',
    credentials: o.credentials.provider,
    endpoint: o.kvsEndpoint,
    clientOptions: { requestHandler: { httpsAgent: agent, connectionTimeout: 10_000, requestTimeout: 15_000 } }
  })
  return {
    get clockOffsetMs () { return plane.clockOffsetMs },
    channel: async () => await plane.channel(o.channelName),
    iceServers: async (channel) => {
      const { servers, ttlSeconds } = await plane.iceServers(channel)
      return servers.map((server) => ({ server, ttlSeconds }))
    },
    destroy: () => {
      plane.destroy()
      agent.destroy()
    }
  }
}

