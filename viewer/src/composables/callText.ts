import type { LockState, Participant } from '@doorbell/core'
import type { EndReason, LinkPath } from '@doorbell/machines'

/**
 * What each path is called, in one place: the link line says its `name`, a call's badge and the
 * ring banner its `short` name, their tooltip its `title`. What a resident needs to trust the ring.
 */
export const PATH_TEXT: Readonly<Record<LinkPath, { name: string, short: string, title: string }>> = {
  lan: { name: 'Home network', short: 'Home network', title: 'Through the home hub; the call runs directly over your home network' },
  direct: { name: 'Direct to the doorbell', short: 'Direct', title: 'The hub is unreachable: this screen talks to the doorbell directly' },
  cloud: { name: 'Cloud', short: 'Cloud', title: 'Away from home: through the cloud' }
}

/** The link line: the path in use, else whether a round is still under way or the machine waits to retry. */
export function linkText (path: LinkPath | null, offline: boolean): string {
  if (path !== null) return PATH_TEXT[path].name
  return offline ? 'No connection, retrying…' : 'Connecting…'
}

/**
 * What the door status line says: only what the device reported, never what we hope. `offline`
 * names a doorbell whose presence says offline: with no report since, its lock is unknown (its
 * last report may say open, and only the doorbell can relock it).
 */
export function doorText (door: LockState | null, now: number, pending: boolean, offline: { name: string } | null = null): string {
  if (door === null && offline !== null) return `${offline.name} is offline · lock state unknown`
  if (pending && (door === null || door.status === 'locked')) return 'Opening…'
  if (door === null) return 'Door state unknown'
  switch (door.status) {
    case 'locked': return 'Locked'
    case 'unlocking': return 'Opening…'
    case 'unlocked': {
      if (door.relockAt === null) return 'Door open'
      const s = Math.max(0, Math.ceil((door.relockAt - now) / 1000))
      return `Door open · locks in ${s} s`
    }
    case 'relocking': return 'Locking…'
    case 'fault': return `Lock fault: ${door.error ?? 'unknown error'}`
  }
}

export function endText (reason: EndReason | null, error: string | null): string {
  switch (reason) {
    case 'hung-up': return 'Call ended'
    case 'device-ended': return error ? `The doorbell ended the call: ${error}` : 'The doorbell ended the call'
    case 'answered-elsewhere': return 'Answered on another screen'
    case 'missed': return 'Missed ring'
    case 'busy': return error ? `The doorbell is busy: ${error}` : 'The doorbell is busy'
    case 'failed': return `The call failed: ${error ?? 'unknown error'}. Check that this device is on the home network.`
    case null: return ''
  }
}

/** "Answered on Kitchen tablet and Hall phone" */
export function whoIsIn (participants: Participant[], selfId: string): string {
  if (participants.length === 0) return ''
  const names = participants.map((p) => p.viewerId === selfId ? 'you' : p.viewerName)
  const unique = [...new Set(names)]
  const list = unique.length === 1 ? unique[0] : `${unique.slice(0, -1).join(', ')} and ${unique.at(-1)}`
  return `In the call: ${list}`
}
