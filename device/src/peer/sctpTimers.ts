/**
 * How long the doorbell's data channel waits before it sends a lost message again: the
 * retransmission timeout (RTO) of its SCTP association.
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
 */

/** dcsctp's data-channel bounds, in seconds as werift keeps its RTO. */
export const WEBRTC_RTO = { initial: 0.5, min: 0.22, max: 0.8 } as const

/** The parts of werift's SCTP association this needs. */
interface Association { rto: number, srtt?: number, rttvar?: number, updateRto: (r: number) => void }

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
