import { KEPT_SESSION, REPLIES_SESSION, signViewClaim, type KeptRing } from '@doorbell/core'
import type { DirectClient } from './paths/direct/directClient'
import type { CloudClient } from './paths/cloud/cloudClient'
import type { ViewerTrust } from './home'

/** One doorbell's kept rings as the history view shows them while the hub is down. */
export interface DoorbellKeptRings { deviceId: string, deviceName: string, rings: KeptRing[], more: boolean, error?: string, path?: 'direct' | 'cloud' }

/**
 * What a screen asks the doorbells themselves while the hub is down: on the direct path, else away
 * from home on each doorbell's KVS channel, the same signed request (docs/history.md, docs/audio.md).
 * `Home` lends its paths as they are now and its member's keys.
 */
export interface WithoutHub {
  direct: () => DirectClient | null
  cloud: () => CloudClient | null
  homeId: string
  viewerId: string
  trust: Pick<ViewerTrust, 'key' | 'credential'>
  deviceName: (deviceId: string) => string
}

/** The rings the doorbells keep; null: neither path is up. A doorbell that cannot be read says why. */
export async function keptRingsWithoutHub (w: WithoutHub): Promise<DoorbellKeptRings[] | null> {
  const direct = w.direct()
  if (direct?.connected) return (await direct.keptRings()).map((d) => ({ ...d, deviceName: w.deviceName(d.deviceId), path: 'direct' as const }))
  const cloud = w.cloud()
  if (!cloud?.connected) return null
  const { homeId, viewerId, trust } = w
  return await Promise.all(cloud.deviceIds.map(async (deviceId): Promise<DoorbellKeptRings> => {
    try {
      const proof = await signViewClaim({ key: trust.key, home: homeId, device: deviceId, session: KEPT_SESSION })
      return { deviceId, deviceName: w.deviceName(deviceId), path: 'cloud', ...await cloud.readKeptRings(deviceId, { homeId, viewerId, credential: trust.credential, proof }) }
    } catch (err) {
      return { deviceId, deviceName: w.deviceName(deviceId), path: 'cloud', rings: [], more: false, error: (err as Error).message }
    }
  }))
}

/** Tells a doorbell this screen dismissed its ring (it keeps that for the hub's history); throws when neither path is up or it refuses. */
export async function dismissWithoutHub (w: WithoutHub, deviceId: string, ringId: string): Promise<'ringing' | 'dismissed'> {
  const direct = w.direct()
  if (direct?.connected) return await direct.dismissRing(deviceId, ringId)
  const cloud = w.cloud()
  if (!cloud) throw new Error('neither the direct path nor the cloud path is up')
  const proof = await signViewClaim({ key: w.trust.key, home: w.homeId, device: deviceId, session: ringId })
  return await cloud.dismissRing(deviceId, { homeId: w.homeId, viewerId: w.viewerId, credential: w.trust.credential, proof, ringId })
}

/** The quick replies a doorbell plays now (core/src/repliesRead.ts). */
export async function repliesWithoutHub (w: WithoutHub, deviceId: string): Promise<string[]> {
  const direct = w.direct()
  if (direct?.connected) return await direct.replies(deviceId)
  const cloud = w.cloud()
  if (!cloud) throw new Error('neither the direct path nor the cloud path is up')
  const proof = await signViewClaim({ key: w.trust.key, home: w.homeId, device: deviceId, session: REPLIES_SESSION })
  return await cloud.readReplies(deviceId, { homeId: w.homeId, viewerId: w.viewerId, credential: w.trust.credential, proof })
}
