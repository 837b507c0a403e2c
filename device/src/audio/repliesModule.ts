import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describeError, type DeviceConfig, type DoorGuard, type Logger, type Startable } from '@doorbell/core'
import { findFfmpeg } from '../camera/camera'
import { QuickReplies } from './replies'
import type { Speaker } from './speaker'

export interface QuickRepliesModule extends Startable {
  /** The player, once started (null before). */
  readonly replies: QuickReplies | null
  /**
   * A signed list from `from` (the hub, or the copy kept on disk): checked by the guard (a live
   * owner's signature, newer than the one held); a newer one is kept on disk and rendered. A
   * list refused is logged and changes nothing. Never throws.
   */
  take: (signed: unknown, from: string, guard: Pick<DoorGuard, 'takeReplies'>) => Promise<void>
  /** The list kept on disk at the last change, taken at start (the hub may be away). */
  takeKept: (guard: Pick<DoorGuard, 'takeReplies'>) => Promise<void>
}

/**
 * The doorbell's `quick replies` module (after `audio`, before the answering side, whose talk
 * floor plays them): espeak-ng found or a warning, the cache in `dataDir/replies`, and the
 * owner's signed list taken from the hub (retained there) or from the copy kept on disk.
 */
export function quickRepliesModule (o: { audio: DeviceConfig['audio'], dataDir: string, speaker: () => Speaker, log: Logger }): QuickRepliesModule {
  let replies: QuickReplies | null = null
  const keptFile = join(o.dataDir, 'replies.json')
  const take = async (signed: unknown, from: string, guard: Pick<DoorGuard, 'takeReplies'>): Promise<void> => {
    try {
      const r = await guard.takeReplies(signed)
      if (!r.ok) { o.log.warn('ignored quick replies', { from, error: r.message }); return }
      if (!r.changed) return
      o.log.info('quick replies changed', { from, count: r.list.replies.length })
      if (from !== keptFile) writeFileSync(keptFile, JSON.stringify(signed), { mode: 0o600 })
      await replies?.use(r.list.replies)
    } catch (err) {
      o.log.error('could not take the quick replies', { from, error: describeError(err) })
    }
  }
  return {
    name: 'quick replies',
    get replies () { return replies },
    async start () {
      const speaker = o.speaker()
      // No speaker, no replies (and no ffmpeg needed for them).
      if (!speaker.enabled) return
      replies = new QuickReplies({
        dir: join(o.dataDir, 'replies'),
        ffmpeg: findFfmpeg(o.audio.ffmpegPath),
        ...(o.audio.espeakPath ? { espeak: o.audio.espeakPath } : {}),
        ...(o.audio.replyVoice ? { voice: o.audio.replyVoice } : {}),
        speaker,
        log: o.log
      })
      await replies.start()
    },
    async stop () { replies?.stop() },
    take,
    async takeKept (guard) {
      let kept: unknown = null
      try { kept = JSON.parse(readFileSync(keptFile, 'utf8')) } catch { return }
      await take(kept, keptFile, guard)
    }
  }
}
