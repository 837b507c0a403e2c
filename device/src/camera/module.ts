import { join } from 'node:path'
import {
  ClipMessage, KeptRing, encode, topics,
  type DeviceConfig, type Logger, type Startable
} from '@doorbell/core'
import type { AnsweringSide } from '../answering'
import type { Camera } from './camera'
import { RingClips } from './clip'
import { RingKeep } from './snapshotKeep'
import { RingSnapshots } from './snapshotRing'

export interface RingCameraModule extends Startable {
  /** The doorbell's own copy of its rings (null before start). */
  readonly keep: RingKeep | null
  readonly snapshots: RingSnapshots | null
  readonly clips: RingClips | null
  /** After a press: the ring's pictures and, when the owner turned it on, its clip. */
  afterRing: (ringId: string) => void
}

/**
 * The doorbell's `snapshots` module (after the answering side, before the paths that carry what it
 * makes): the visitor's pictures after each ring from the camera's cached keyframe, the ring's
 * clip, and the doorbell's own copy of its rings for a hub that was away (docs/history.md).
 */
export function ringCameraModule (o: {
  config: Pick<DeviceConfig, 'deviceId' | 'dataDir' | 'camera'>
  homeId: () => string
  camera: () => Camera
  side: () => AnsweringSide
  /** The owner's signed per-doorbell setting: whether rings are recorded. */
  clipOn: () => boolean
  log: Logger
}): RingCameraModule {
  let keep = null as RingKeep | null
  let snapshots = null as RingSnapshots | null
  let clips = null as RingClips | null
  const { config } = o
  return {
    name: 'snapshots',
    get keep () { return keep },
    get snapshots () { return snapshots },
    get clips () { return clips },
    afterRing (ringId) {
      snapshots?.afterRing(ringId)
      clips?.afterRing(ringId)
    },
    async start () {
      const answering = o.side()
      const homeId = o.homeId()
      const camera = o.camera()
      keep = new RingKeep({
        dir: join(config.dataDir, 'kept-rings'),
        log: o.log.child('kept'),
        connected: () => answering.link?.client.connected === true,
        send: (kept, done) => {
          const link = answering.link
          if (!link) { done(new Error('no hub link')); return }
          link.client.publish(topics.kept(homeId, config.deviceId), encode(KeptRing, kept), { qos: 1 }, (err) => { done(err ?? undefined) })
        }
      })
      answering.answering.attach(keep)
      keep.handOver()
      snapshots = new RingSnapshots({
        deviceId: config.deviceId,
        camera,
        // Every path the ring went on: the hub's link, the direct server, the cloud link.
        publish: (snapshot) => { for (const t of answering.answering.transports()) t.publishSnapshot?.(snapshot) },
        log: o.log.child('snapshot'),
        decoder: config.camera.snapshotDecoder ?? 'running'
      })
      // The ring's clip, when the owner turned it on for this doorbell; the hub keeps it with the event.
      clips = new RingClips({
        deviceId: config.deviceId,
        camera,
        dir: join(config.dataDir, 'clips'),
        enabled: o.clipOn,
        ...(config.camera.clipSeconds !== undefined ? { seconds: config.camera.clipSeconds } : {}),
        send: async (message) => {
          const link = answering.link
          if (!link) throw new Error('no hub link: a clip is kept only by the hub')
          await new Promise<void>((resolve, reject) => {
            link.client.publish(topics.clip(homeId, config.deviceId), encode(ClipMessage, message), { qos: 1 }, (err) => { if (err) reject(err); else resolve() })
          })
        },
        log: o.log.child('clip')
      })
    },
    async stop () {
      clips?.stop()
      snapshots?.stop()
      if (keep) { o.side().answering.detach(keep); await keep.stop() }
    }
  }
}
