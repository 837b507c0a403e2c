import type { AedesPublishPacket, Client } from 'aedes'
import { decodeTopicMessage, describeError, type Logger, type RingEvent, type SnapshotEvent } from '@doorbell/core'
import { decodePublished } from '../broker/decodedOnce'
import type { HistoryBackend } from './backend'
import type { ShownScreen } from './shown'

/**
 * What devices publish, into the history: rings, their snapshots, how each call ended (`…/calls`),
 * open-door attempts (`…/audit`) and the rings a doorbell kept while the hub was away (`…/kept`). A listener of the broker's `publish` event, like the audit
 * ingest: the gate has already refused what a device may not publish (a snapshot that is not a
 * JPEG, too big, or another device's), and the payload is parsed by its schema again here.
 */
export function historyIngest (d: { store: HistoryBackend, deviceName: (deviceId: string) => string, log: Logger, shownTo?: (deviceId: string) => ShownScreen[] | Promise<ShownScreen[]> }): (packet: AedesPublishPacket, client: Client | null) => void {
  const picture = (s: SnapshotEvent): Step => then(d.store.ringEventId(s.deviceId, s.ringId), (id) => {
    if (id === null) { d.log.warn('a snapshot for a ring the history does not have', { device: s.deviceId, ringId: s.ringId }); return }
    const notStored = (err: unknown): void => {
      const code = (err as NodeJS.ErrnoException).code
      // The ring's row is kept (it says the picture could not be stored); only the picture is lost.
      d.log.error(code === 'ENOSPC'
        ? 'the disk is full: the ring is kept in the history without its picture (free space, or lower history.maxMegabytes)'
        : 'could not store a ring\'s picture; the ring is kept without it', { device: s.deviceId, ringId: s.ringId, error: describeError(err) })
    }
    try {
      const stored = d.store.setSnapshot(id, s.seq, s.jpeg === null ? null : Buffer.from(s.jpeg, 'base64'), s.reason)
      if (stored instanceof Promise) return stored.then(() => {}, notStored)
    } catch (err) {
      notStored(err)
    }
  })
  const ring = (r: RingEvent): Step => {
    // Who was shown it (shown.ts), for "dismissed by everyone": the screens connected as it rang.
    const unnoted = (err: unknown): null => { d.log.warn('could not note who was shown a ring', { device: r.deviceId, ringId: r.ringId, error: describeError(err) }); return null }
    let shown: ShownScreen[] | Promise<ShownScreen[]> | null = null
    // Asked before the ring's row is written (so, as it rang); failing, it never costs the ring its row.
    try { if (r.count === 1 && d.shownTo) shown = d.shownTo(r.deviceId) } catch (err) { unnoted(err) }
    // A cluster reads every hub's screens from the shared presence: noted when it answers.
    const later = shown instanceof Promise ? shown.catch(unnoted) : null
    return then(d.store.addRing(r), (id) => {
      const note = (s: ShownScreen[] | null): Step => s === null ? undefined : d.store.addShown(id, [...new Set(s.map((x) => x.memberId))], s)
      if (later !== null) { later.then(note).catch(unnoted); return }
      return note(shown as ShownScreen[] | null)
    })
  }
  const record = (m: Extract<ReturnType<typeof decodeTopicMessage>, { ok: true }>['value']): Step => {
    if (m.kind === 'ring') return ring(m.payload)
    if (m.kind === 'calls') return d.store.endRing(m.payload, d.deviceName(m.payload.deviceId))
    // A request to talk and a quick reply played are talk events, not door openings; the owner's
    // fetch of call traces is in the audit log only.
    if (m.kind === 'audit' && m.payload.kind !== 'traces') {
      if (m.payload.kind === 'talk' || m.payload.kind === 'reply') return d.store.addTalk(m.payload, d.deviceName(m.payload.deviceId))
      return d.store.addDoor(m.payload, d.deviceName(m.payload.deviceId))
    }
    if (m.kind === 'snapshot') return picture(m.payload)
    if (m.kind === 'kept') {
      // The doorbell's own copy of a ring the hub may have missed: each part as if it had come
      // on its own topic, and by ring id, so what the hub already has changes nothing.
      const k = m.payload
      let known = false
      // Every call sent at once, in order (the store keeps the order it was sent): the ring's row
      // is there for whatever the doorbell sends next (its clip, looked up by ring id at once).
      return allOf([
        () => then(d.store.ringEventId(k.deviceId, k.ring.ringId), (id) => { known = id !== null }),
        () => d.store.addRing(k.ring),
        () => k.snapshot ? picture(k.snapshot) : undefined,
        () => k.record ? d.store.endRing(k.record, d.deviceName(k.deviceId)) : undefined,
        // Dismissed on the doorbell while the hub was down (the direct path): as if the screen had
        // told the hub; a member's dismissal already here changes nothing.
        ...(k.dismissals ?? []).map((x) => () => then(d.store.dismiss(k.deviceId, k.ring.ringId, { id: x.memberId, name: x.memberName }, x.at), (r) => {
          if (!r.ok) d.log.info('a dismissal the doorbell kept was not taken', { device: k.deviceId, ringId: k.ring.ringId, error: r.error })
        }))
      ], () => { d.log.info('took a ring the doorbell kept', { device: k.deviceId, ringId: k.ring.ringId, new: !known, picture: k.snapshot?.jpeg != null, ended: k.record !== null, dismissals: k.dismissals?.length ?? 0 }) })
    }
  }
  return (packet, client) => {
    if (!client) return
    const kind = packet.topic.slice(packet.topic.lastIndexOf('/') + 1)
    if (kind !== 'ring' && kind !== 'snapshot' && kind !== 'calls' && kind !== 'audit' && kind !== 'kept') return
    const decoded = decodePublished(packet.topic, packet.payload as Buffer)
    if (!decoded.ok) return
    const failed = (err: unknown): void => { d.log.error('could not record an event in the history', { topic: packet.topic, error: describeError(err) }) }
    try {
      // A message's calls are sent in its order; the next message's go on meanwhile (the store keeps the order it was sent).
      const done = record(decoded.value)
      if (done instanceof Promise) done.catch(failed)
    } catch (err) {
      failed(err)
    }
  }
}

/**
 * One step of recording a message: done at once (a synchronous store: a cluster's, or tests'), or
 * a promise (the history's thread answers later: threadStore.ts).
 */
type Step = unknown

/** `f` of the store's answer: at once when it answered at once, else when it answers. */
function then<T> (v: T | Promise<T>, f: (t: T) => Step): Step {
  return v instanceof Promise ? v.then(f) : f(v)
}

/**
 * The steps sent one after the other in this turn, and `f` once every one is done: at once when all
 * were done at once, else when the last answers. A step that throws stops the rest, as a synchronous
 * store's did (thrown to the caller when nothing is waiting; else a rejection, so that what was
 * already sent is still handled).
 */
function allOf (steps: Array<() => Step>, f: () => void): Step {
  const done: Step[] = []
  for (const step of steps) {
    try {
      done.push(step())
    } catch (err) {
      if (!done.some((s) => s instanceof Promise)) throw err
      done.push(Promise.reject(err))
      break
    }
  }
  if (!done.some((s) => s instanceof Promise)) { f(); return }
  return Promise.all(done).then(f)
}
