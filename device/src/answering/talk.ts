/**
 * Who may be heard on the device's speaker. The seam for the talk lease (issue 17's next
 * slice: a signed talk command, one talker, a maximum): until then, `onlyTalker` lets a
 * viewer be heard while no other viewer is talking.
 */
export interface TalkFloor {
  /** Asked for each packet of a viewer's audio: may this session be heard now? */
  mayTalk: (sessionId: string) => boolean
  /** The session ended: the floor is free at once. */
  left: (sessionId: string) => void
}

/** After this long without a packet from the one talking, another viewer may be heard. */
export const QUIET_MS = 1000

/**
 * The first viewer whose audio arrives holds the speaker until it has been quiet for `quietMs`
 * or its session ends (one decoder, one voice: two viewers at once would be noise).
 * Browsers send no audio packets while their microphone track is swapped out.
 */
export function onlyTalker (o: { quietMs?: number, now?: () => number } = {}): TalkFloor {
  const quietMs = o.quietMs ?? QUIET_MS
  const now = o.now ?? Date.now
  let holder: string | null = null
  let lastAt = 0
  return {
    mayTalk (sessionId) {
      const t = now()
      if (holder !== null && holder !== sessionId && t - lastAt < quietMs) return false
      holder = sessionId
      lastAt = t
      return true
    },
    left (sessionId) { if (holder === sessionId) holder = null }
  }
}
