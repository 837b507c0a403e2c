import type { CloudDevice, IceServerInit, KvsChannel, ViewerCloudConfig } from '@doorbell/core'
import { describeCloudError, kvsStun, type KvsControlPlane } from './aws'

const CONTROL_TIMEOUT_MS = 10_000

/**
 * What the viewer asks KVS's control plane, asked once per doorbell and kept: each channel's ARN
 * and endpoints (again after a failure, or when told they are stale), and its ICE servers until
 * their Ttl.
 */
export class KvsControlCache {
  private readonly info = new Map<string, Promise<KvsChannel>>()
  private readonly ice = new Map<string, { servers: IceServerInit[], until: number } | Promise<IceServerInit[]>>()

  constructor (
    private readonly control: KvsControlPlane,
    private readonly config: ViewerCloudConfig,
    private readonly viewerId: string,
    private readonly log: (level: 'warn', message: string) => void
  ) {}

  /** ARN and endpoints of a doorbell's channel, asked once (again after a failure). */
  async channel (device: CloudDevice): Promise<KvsChannel> {
    let p = this.info.get(device.deviceId)
    if (!p) {
      p = this.control.channel(device, AbortSignal.timeout(CONTROL_TIMEOUT_MS))
      this.info.set(device.deviceId, p)
      p.catch(() => { if (this.info.get(device.deviceId) === p) this.info.delete(device.deviceId) })
    }
    return await p
  }

  /** The channel's endpoint may be stale (a connection was refused): asked again next time. */
  forget (deviceId: string): void { this.info.delete(deviceId) }

  /**
   * The ICE servers for a cloud call with this doorbell, in the browser's shape: KVS's TURN servers
   * (GetIceServerConfig, cached until their Ttl) and, on AWS itself, KVS's STUN server. Never
   * rejects: on any failure it logs and resolves [] (the offer then fails with the reason).
   */
  async iceServers (device: CloudDevice): Promise<IceServerInit[]> {
    const deviceId = device.deviceId
    const cached = this.ice.get(deviceId)
    if (cached instanceof Promise) return await cached
    if (cached && cached.until > Date.now()) return cached.servers
    const p = (async (): Promise<IceServerInit[]> => {
      try {
        const info = await this.channel(device)
        const got = await this.control.iceServers(info, this.viewerId, AbortSignal.timeout(CONTROL_TIMEOUT_MS))
        const servers = [...kvsStun(this.config), ...got.servers]
        this.ice.set(deviceId, { servers, until: Date.now() + Math.max(0, got.ttlSeconds - 60) * 1000 })
        return servers
      } catch (err) {
        this.ice.delete(deviceId)
        this.log('warn', `no TURN servers for ${deviceId}: ${describeCloudError(err, device, this.config.region)}`)
        return []
      }
    })()
    this.ice.set(deviceId, p)
    return await p
  }
}
