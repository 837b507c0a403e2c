import { join } from 'node:path'
import {
  ClipMessage, KeptRing, encode, topics,
  type DeviceConfig, type Logger, type Startable
} from '@doorbell/core'
import type { AnsweringSide } from '../answering'
import type { Camera } from './camera'
import { ClipError, RingClips } from './clip'
import { ClipKeep } from './clipKeep'
import { RingKeep } from './snapshotKeep'
import { RingSnapshots } from './snapshotRing'

export interface RingCameraModule extends Startable {
  /** The doorbell's own copy of its rings (null before start). */
  readonly keep: RingKeep | null
  readonly snapshots: RingSnapshots | null
  readonly clips: RingClips | null
  /** The doorbell's copy of the clips the hub could not take (null before start). */
  readonly keptClips: ClipKeep | null
  /** After a press: the ring's pictures and, when the owner turned it on, its clip. */
  afterRing: (ringId: string) => void
}

/**
 * The doorbell's `snapshots` module (after the answering side, before the paths that carry what it
 * makes): the visitor's pictures after each ring from the camera's cached keyframe, the ring's
 * clip, and the doorbell's own copy of its rings and their clips for a hub that was away
 * (docs/history.md).
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
  let keptClips = null as ClipKeep | null
  const { config } = o
  return {
    name: 'snapshots',
    get keep () { return keep },
    get snapshots () { return snapshots },
    get clips () { return clips },
    get keptClips () { return keptClips },
    afterRing (ringId) {
      snapshots?.afterRing(ringId)
      clips?.afterRing(ringId)
    },
    async start () {
      const answering = o.side()
      const homeId = o.homeId()
      const camera = o.camera()
      const connected = (): boolean => answering.link?.client.connected === true
      // One clip message to the hub, acknowledged. A part is refused at once while the hub is
      // unreachable, and when the link drops before the hub acknowledged it (mqtt.js would send it
      // again only to a hub that came back without the parts before it): the clip is then kept
      // whole (clipKeep.ts). Why there is no clip waits in mqtt.js's queue, as it always did.
      const sendClip = async (message: ClipMessage): Promise<void> => {
        const link = answering.link
        if (!link) throw new ClipError('no hub link: a clip is kept only by the hub')
        const client = link.client
        const part = message.type === 'clip'
        if (part && !client.connected) throw new ClipError('the hub is unreachable')
        await new Promise<void>((resolve, reject) => {
          const lost = (): void => { if (part) reject(new ClipError('the hub link closed before the hub had the clip')) }
          client.once('close', lost)
          client.publish(topics.clip(homeId, config.deviceId), encode(ClipMessage, message), { qos: 1 }, (err) => {
            client.off('close', lost)
            if (err) reject(err); else resolve()
          })
        })
      }
      keptClips = new ClipKeep({
        dir: join(config.dataDir, 'kept-clips'),
        deviceId: config.deviceId,
        log: o.log.child('kept'),
        send: sendClip,
        connected,
        // The hub files a clip by its ring's event: the kept ring goes first.
        ringHeld: (ringId) => keep?.holds(ringId) === true
      })
      keep = new RingKeep({
        dir: join(config.dataDir, 'kept-rings'),
        log: o.log.child('kept'),
        connected,
        send: (kept, done) => {
          const link = answering.link
          if (!link) { done(new Error('no hub link')); return }
          link.client.publish(topics.kept(homeId, config.deviceId), encode(KeptRing, kept), { qos: 1 }, (err) => { done(err ?? undefined) })
        },
        afterHandOver: () => { keptClips?.handOver() }
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
        send: sendClip,
        connected,
        keep: (ringId, clip) => { keptClips?.keep(ringId, clip) },
        log: o.log.child('clip')
      })
    },
    async stop () {
      clips?.stop()
      snapshots?.stop()
      await keptClips?.stop()
      if (keep) { o.side().answering.detach(keep); await keep.stop() }
    }
  }
}
