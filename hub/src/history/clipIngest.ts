import { createHash } from 'node:crypto'
import type { AedesPublishPacket, Client } from 'aedes'
import { clipMimeType, decodeTopicMessage, describeError, type ClipContainer, type ClipPart, type EventClip, type Logger } from '@doorbell/core'
import type { ClipBackend } from './clipStore'

/** Clips being put together at once at most, and how long one may take between parts. */
const MAX_ASSEMBLING = 8
const PART_TIMEOUT_MS = 60_000

interface Assembly { head: Omit<ClipPart, 'part' | 'data'>, parts: Array<Buffer | undefined>, got: number, timer: NodeJS.Timeout }

/**
 * A doorbell's clip parts (`…/clip`, after the broker's gate: only the device itself, each part's
 * schema) put together and kept with the ring's event when the whole matches its size and SHA-256.
 * A clip of a ring the history does not have, one whose parts disagree, or one that stops coming
 * is dropped and logged; `clip-failed` is kept as the event's reason. The ring's row is never
 * touched: a clip that fails leaves the event as it was.
 */
export function clipIngest (d: { clips: ClipBackend, eventOf: (deviceId: string, ringId: string) => number | null | Promise<number | null>, log: Logger }): { listener: (packet: AedesPublishPacket, client: Client | null) => void, stop: () => void } {
  const assembling = new Map<string, Assembly>()
  const drop = (key: string): void => {
    const a = assembling.get(key)
    if (a) clearTimeout(a.timer)
    assembling.delete(key)
  }
  const same = (a: Assembly['head'], p: ClipPart): boolean =>
    a.sha256 === p.sha256 && a.bytes === p.bytes && a.parts === p.parts && a.container === p.container && a.seconds === p.seconds

  const take = (p: ClipPart): void => {
    const key = `${p.deviceId}/${p.ringId}`
    let a = assembling.get(key)
    if (a && !same(a.head, p)) {
      d.log.warn('a clip\'s parts disagree: the clip so far is dropped', { device: p.deviceId, ringId: p.ringId })
      drop(key)
      a = undefined
    }
    if (!a) {
      if (assembling.size >= MAX_ASSEMBLING) { d.log.warn('too many clips at once: this one is dropped', { device: p.deviceId, ringId: p.ringId }); return }
      const { part: _part, data: _data, ...head } = p
      a = { head, parts: new Array<Buffer | undefined>(p.parts), got: 0, timer: setTimeout(() => { d.log.warn('a clip stopped coming: dropped', { device: p.deviceId, ringId: p.ringId }); drop(key) }, PART_TIMEOUT_MS) }
      a.timer.unref()
      assembling.set(key, a)
    }
    a.timer.refresh()
    if (a.parts[p.part] === undefined) { a.parts[p.part] = Buffer.from(p.data, 'base64'); a.got++ }
    if (a.got < a.parts.length) return
    drop(key)
    const video = Buffer.concat(a.parts as Buffer[])
    if (video.length !== p.bytes || createHash('sha256').update(video).digest('hex') !== p.sha256) {
      d.log.warn('a clip does not match its hash: dropped', { device: p.deviceId, ringId: p.ringId })
      return
    }
    // One hub's history answers from its thread (threadStore.ts): the clip is kept when it does.
    const event = d.eventOf(p.deviceId, p.ringId)
    if (event instanceof Promise) event.then((id) => { keep(p, video, id) }).catch((err: unknown) => { d.log.error('could not take a clip', { device: p.deviceId, ringId: p.ringId, error: describeError(err) }) })
    else keep(p, video, event)
  }

  const keep = (p: ClipPart, video: Buffer, id: number | null): void => {
    if (id === null) { d.log.warn('a clip for a ring the history does not have: dropped', { device: p.deviceId, ringId: p.ringId }); return }
    // Not the video it says it is (a clip the doorbell kept, damaged on its disk): refused, and the
    // event says why; the ring itself is untouched.
    const malformed = containerProblem(p.container, video)
    if (malformed !== null) {
      d.log.warn('refused a clip: it is not a video', { device: p.deviceId, ringId: p.ringId, reason: malformed })
      // A cluster's store records it later (its pool): a failure there is logged, not thrown.
      Promise.resolve(d.clips.failed(id, `the doorbell's clip was refused: ${malformed}`)).catch((err: unknown) => { d.log.error('could not record why a ring has no clip', { device: p.deviceId, ringId: p.ringId, error: describeError(err) }) })
      return
    }
    // The same clip again (a doorbell's kept clip handed over twice, an acknowledgement lost): nothing changes.
    const held = (have: EventClip | undefined): boolean => have !== undefined && 'bytes' in have && have.bytes === video.length && have.seconds === p.seconds && have.type === clipMimeType(p.container)
    const kept = (): void => { d.log.info('kept a ring\'s clip', { device: p.deviceId, ringId: p.ringId, event: id, bytes: video.length, seconds: p.seconds }) }
    const notKept = (err: unknown): void => {
      const full = (err as NodeJS.ErrnoException).code === 'ENOSPC'
      const unrecorded = (e: unknown): void => { d.log.error('could not record why a ring has no clip', { device: p.deviceId, ringId: p.ringId, error: describeError(e) }) }
      try {
        Promise.resolve(d.clips.failed(id, full ? 'the hub\'s disk is full: the clip was not kept' : 'the hub could not store the clip')).catch(unrecorded)
      } catch (e) {
        unrecorded(e)
      }
      d.log.error(full
        ? 'the disk is full: the ring is kept in the history without its clip (free space, or lower history.maxMegabytes)'
        : 'could not store a ring\'s clip; the ring is kept without it', { device: p.deviceId, ringId: p.ringId, error: describeError(err) })
    }
    const put = (have: EventClip | undefined): void => {
      if (held(have)) { d.log.info('the hub has this clip already', { device: p.deviceId, ringId: p.ringId, event: id }); return }
      let stored: void | Promise<void>
      try {
        stored = d.clips.put(id, p.container, p.seconds, video)
      } catch (err) {
        notKept(err)
        return
      }
      // A cluster's store writes through its pool: the result comes later, the loop goes on meanwhile.
      if (stored instanceof Promise) stored.then(kept, notKept)
      else kept()
    }
    // A cluster's store answers what it holds later too (its pool).
    const have = d.clips.state(id)
    if (have instanceof Promise) have.then(put, notKept)
    else put(have)
  }

  return {
    listener: (packet, client) => {
      if (!client || !packet.topic.endsWith('/clip')) return
      const decoded = decodeTopicMessage(packet.topic, packet.payload as Buffer)
      if (!decoded.ok || decoded.value.kind !== 'clip') return
      const m = decoded.value.payload
      try {
        if (m.type === 'clip') { take(m); return }
        const notTaken = (err: unknown): void => { d.log.error('could not take a clip', { topic: packet.topic, error: describeError(err) }) }
        const recorded = (): void => { d.log.info('a ring has no clip', { device: m.deviceId, ringId: m.ringId, reason: m.reason }) }
        const noClip = (id: number | null): void => {
          if (id === null) return
          const failed = d.clips.failed(id, m.reason)
          // A cluster's store answers later (its pool): the loop goes on meanwhile.
          if (failed instanceof Promise) failed.then(recorded, notTaken)
          else recorded()
        }
        const event = d.eventOf(m.deviceId, m.ringId)
        if (event instanceof Promise) event.then(noClip).catch(notTaken)
        else noClip(event)
      } catch (err) {
        d.log.error('could not take a clip', { topic: packet.topic, error: describeError(err) })
      }
    },
    stop: () => { for (const key of [...assembling.keys()]) drop(key) }
  }
}

/**
 * Why these bytes are not the container they claim, or null: an MP4 opens with its `ftyp` box
 * (ISO/IEC 14496-12 §4.3, which `-movflags +faststart` keeps first), a WebM with the EBML magic
 * 1A 45 DF A3 (RFC 8794 §8). Enough to refuse what no player would open; a player checks the rest.
 */
export function containerProblem (container: ClipContainer, video: Buffer): string | null {
  if (container === 'mp4') {
    const size = video.length >= 8 ? video.readUInt32BE(0) : 0
    return video.length >= 8 && video.toString('latin1', 4, 8) === 'ftyp' && size >= 8 && size <= video.length ? null : 'not an MP4 file (no ftyp box first)'
  }
  return video.length >= 4 && video.readUInt32BE(0) === 0x1a45dfa3 ? null : 'not a WebM file (no EBML header)'
}
