/**
 * How soon the doorbell's data channel sends a lost message again: the retransmission timeout
 * (RTO) of its SCTP association, and a resend at the first report of a loss when so few messages
 * are in flight that three reports would never come.
 *
 * werift (0.25) keeps RFC 9260's defaults: 3 s before the first round-trip sample, never under
 * 1 s after, up to 60 s. A door report lost once on the home's Wi-Fi ("Door open", the reply to an
 * opening) then reaches the screen a second or more late: the screen's acknowledgements report the
 * gap, but werift sends a chunk again early only after three such reports, and a door answers an
 * opening with two or three messages, so it is the timer that resends. WebRTC's own stack, the one
 * the screens run (dcsctp, in Chromium), bounds its RTO for data channels at 220 ms to 800 ms,
 * starting at 500 ms; its floor is above the 200 ms a peer may hold an acknowledgement back. The
 * doorbell's associations use those bounds (`WEBRTC_RTO`), computed as before from the measured
 * round trip (smoothed, plus four times its variation).
 *
 * And when fewer than four messages are in flight with nothing more waiting to be sent, a missing
 * one is sent again after as many reports as messages in flight after it (RFC 5827, early
 * retransmit: at least one), not three: a lost "unlocked" followed by the door's acknowledgement is
 * resent on the screen's first report of the gap, one round trip later, instead of on the timer.
 */

/** dcsctp's data-channel bounds, in seconds as werift keeps its RTO. */
export const WEBRTC_RTO = { initial: 0.5, min: 0.22, max: 0.8 } as const

/** The parts of werift's SCTP association this needs. */
interface Association { rto: number, srtt?: number, rttvar?: number, updateRto: (r: number) => void }

/** A DATA chunk sent and not yet acknowledged, as werift keeps it (`misses`: reports of it missing; at 3 it is resent). */
interface SentChunk { tsn: number, acked?: boolean, retransmit?: boolean, misses: number }
/** What early retransmit needs of the association. */
interface Sender { sentQueue: SentChunk[], outboundQueue: unknown[], lastSackedTsn?: number, receiveSackChunk: (sack: Sack) => Promise<void> }
/** A SACK as werift parses it: the cumulative TSN and the gap blocks, as offsets from it. */
interface Sack { cumulativeTsn: number, gaps: Array<[number, number]> }

/** werift resends a chunk reported missing this many times (RFC 9260 §7.2.4). */
const WERIFT_DUP_THRESHOLD = 3
/** TSNs are serial numbers (RFC 1982): a is after b. */
const after = (a: number, b: number): boolean => { const d = (a - b) >>> 0; return d !== 0 && d < 2 ** 31 }

const bounded = new WeakSet<object>()

/**
 * The association's RTO within `WEBRTC_RTO`: at once (if it has no round-trip sample yet) and after
 * every sample. False, changing nothing, when the association is not shaped as werift's.
 */
export function webrtcRto (association: unknown): boolean {
  if (typeof association !== 'object' || association === null) return false
  if (bounded.has(association)) return true
  const a = association as Partial<Association>
  if (typeof a.rto !== 'number' || typeof a.updateRto !== 'function') return false
  const update = a.updateRto.bind(association)
  const clamp = (s: number): number => Math.min(WEBRTC_RTO.max, Math.max(WEBRTC_RTO.min, s))
  const bound = association as Association
  bound.updateRto = (r: number): void => {
    update(r)
    // werift's own formula (RFC 9260 §6.3.1) floors at 1 s: the same estimate, within WebRTC's bounds.
    if (typeof bound.srtt === 'number' && typeof bound.rttvar === 'number') bound.rto = clamp(bound.srtt + 4 * bound.rttvar)
  }
  if (typeof bound.srtt !== 'number' || bound.srtt === 0) bound.rto = Math.min(bound.rto, WEBRTC_RTO.initial)
  bounded.add(association)
  return true
}

const early = new WeakSet<object>()

/**
 * RFC 5827's early retransmit on werift's association: with fewer than four chunks in flight and
 * none waiting, a chunk reported missing is resent after `in flight - 1` reports (at least one)
 * instead of three. werift counts the reports (`misses`) and resends at three: before werift reads
 * a SACK, each chunk that SACK reports missing is counted that much closer. False, changing
 * nothing, when the association is not shaped as werift's.
 */
export function earlyRetransmit (association: unknown): boolean {
  if (typeof association !== 'object' || association === null) return false
  if (early.has(association)) return true
  const a = association as Partial<Sender>
  if (!Array.isArray(a.sentQueue) || !Array.isArray(a.outboundQueue) || typeof a.receiveSackChunk !== 'function') return false
  const receive = a.receiveSackChunk.bind(association)
  const sender = association as Sender
  sender.receiveSackChunk = async (sack: Sack): Promise<void> => {
    const gaps = Array.isArray(sack?.gaps) ? sack.gaps : []
    const cum = sack?.cumulativeTsn
    const stale = typeof sender.lastSackedTsn === 'number' && typeof cum === 'number' && after(sender.lastSackedTsn, cum)
    if (gaps.length > 0 && typeof cum === 'number' && !stale && sender.outboundQueue.length === 0) {
      const inFlight = sender.sentQueue.filter((c) => after(c.tsn, cum) && c.acked !== true)
      if (inFlight.length > 0 && inFlight.length < 4) {
        const threshold = Math.max(1, inFlight.length - 1)
        const seen = new Set<number>()
        let highest = cum
        for (const [from, to] of gaps) {
          for (let off = from; off <= to; off++) seen.add((cum + off) >>> 0)
          highest = (cum + to) >>> 0
        }
        // Those this SACK reports missing (below the highest it has): werift adds this report to them.
        for (const c of inFlight) {
          if (!seen.has(c.tsn) && after(highest, c.tsn) && c.retransmit !== true) c.misses = Math.max(c.misses, WERIFT_DUP_THRESHOLD - threshold)
        }
      }
    }
    await receive(sack)
  }
  early.add(association)
  return true
}

/** Both on one association: WebRTC's timeout bounds and early retransmit. False if either could not be applied. */
export function fasterRecovery (association: unknown): boolean {
  const rto = webrtcRto(association)
  const resend = earlyRetransmit(association)
  return rto && resend
}
