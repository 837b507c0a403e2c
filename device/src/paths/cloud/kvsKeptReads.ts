import {
  KEPT_PARTS_PER_SECOND, MAX_CLOUD_KEPT_READ, KeptPartsError, decodeCloudKeptRead, keptAnswerParts,
  type KeptReadFrame, type KeptReadRequest, type Logger
} from '@doorbell/core'
import { readId } from './kvsCommands'

/** Takes the reads of the kept rings that ride the KVS channel (core/src/cloudKept.ts). */
export interface KvsKeptReadHandler {
  read: (senderClientId: unknown, payload: unknown) => void
  /** Drops the parts not sent yet (the channel is closing). */
  stop: () => void
}

export interface KvsKeptReadsOptions {
  /** The doorbell's one kept-read check (../keptRead.ts), the direct path's: the frames to answer. */
  read: (request: KeptReadRequest, max: number) => Promise<KeptReadFrame[]>
  /** Sends a payload on SDP_ANSWER to one viewer; false when it could not be sent. */
  send: (viewerId: string, payload: string) => boolean
  log: Logger
  /** Parts sent a second, every read together (default KEPT_PARTS_PER_SECOND: KVS's 5 SDP_ANSWER a second, less room for calls). */
  partsPerSecond?: number
  /** Reads on their way at once, every viewer together; one more is refused as busy (default 3). */
  maxReads?: number
}

/**
 * The doorbell's own history away from home (docs/history.md): a screen on the cloud path, the
 * hub down, reads the rings this doorbell keeps on its KVS channel. The request is parsed, its
 * viewer id must be the KVS sender's (KVS authenticates the sender, as for a dismissal), and it is
 * checked by the same code as the direct path's; the answer (the direct path's frames) goes back in
 * parts to that viewer alone, paced under KVS's rate limit. One read per viewer at a time.
 */
/** Refusals waiting to go out beyond the screens being answered; past them a refusal is logged only. */
const MAX_REFUSALS_QUEUED = 8

export function kvsKeptReads (o: KvsKeptReadsOptions): KvsKeptReadHandler {
  const gapMs = 1000 / (o.partsPerSecond ?? KEPT_PARTS_PER_SECOND)
  const maxReads = o.maxReads ?? 3
  /** The reads being answered, by viewer: what is left to send. */
  const reading = new Map<string, string[]>()
  /** The viewers whose read is being checked (the signature, the grant). */
  const checking = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | null = null
  let stopped = false

  /** Sends the next part of each read in turn, one part every gapMs. */
  const pump = (): void => {
    timer = null
    if (stopped) return
    const next = reading.entries().next()
    if (next.done === true) return
    const [viewerId, parts] = next.value
    // Round robin: this viewer goes to the back.
    reading.delete(viewerId)
    const payload = parts.shift()!
    if (!o.send(viewerId, payload)) {
      o.log.warn('could not send the kept rings over KVS: the read is dropped', { viewer: viewerId.slice(0, 64) })
    } else if (parts.length > 0) reading.set(viewerId, parts)
    if (reading.size > 0) timer = setTimeout(pump, gapMs)
  }
  const answer = (viewerId: string, id: string | null, frames: KeptReadFrame[]): void => {
    if (stopped) return
    let parts: string[]
    try {
      parts = keptAnswerParts(id, frames)
    } catch (err) {
      if (!(err instanceof KeptPartsError)) throw err
      // Never for MAX_CLOUD_KEPT_READ rings within their bounds; said, not dropped silently.
      o.log.error('the kept rings do not fit a cloud answer', { error: err.message })
      parts = keptAnswerParts(id, [{ kind: 'refused', message: 'the doorbell\'s rings do not fit an answer over KVS' }])
    }
    reading.set(viewerId, [...(reading.get(viewerId) ?? []), ...parts])
    timer ??= setTimeout(pump, 0)
  }
  return {
    read (senderClientId, payload) {
      if (stopped) return
      if (typeof senderClientId !== 'string' || senderClientId === '') { o.log.warn('dropped a KVS read of the kept rings with no sender id'); return }
      const viewerId = senderClientId
      const decoded = decodeCloudKeptRead(payload)
      const refuse = (id: string | null, message: string): void => {
        o.log.warn('refused a cloud read of the kept rings', { from: viewerId.slice(0, 64), error: message.slice(0, 300) })
        // Said to the screen, unless an answer to it is still going out or refusals already wait
        // (a flood under new client ids is not answered part by part: the queue stays bounded).
        if (!reading.has(viewerId) && reading.size + checking.size < maxReads + MAX_REFUSALS_QUEUED) answer(viewerId, id, [{ kind: 'refused', message: message.slice(0, 200) }])
      }
      if (!decoded.ok) { refuse(readId(payload), decoded.error); return }
      const { id, request } = decoded.message
      if (request.viewerId !== viewerId) { refuse(id, `this read is signed for viewer ${request.viewerId}, but KVS names its sender ${viewerId}`); return }
      // Before the signature: a flood costs no signature check. A screen reads once at a time (its answer is on its way: a second one would only slow it).
      if (reading.has(viewerId) || checking.has(viewerId)) { o.log.warn('dropped a KVS read of the kept rings: this screen\'s previous read is still being answered', { from: viewerId.slice(0, 64) }); return }
      if (reading.size + checking.size >= maxReads) { refuse(id, 'the doorbell is busy answering other screens; try again in a few seconds'); return }
      checking.add(viewerId)
      o.read(request, MAX_CLOUD_KEPT_READ).then(
        (frames) => { checking.delete(viewerId); answer(viewerId, id, frames) },
        (err: Error) => { checking.delete(viewerId); o.log.error('a read of the kept rings over KVS failed', { viewer: viewerId, error: err.message }) }
      )
    },
    stop () {
      stopped = true
      if (timer !== null) clearTimeout(timer)
      timer = null
      reading.clear()
      checking.clear()
    }
  }
}
