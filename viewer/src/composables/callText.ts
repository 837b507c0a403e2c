import type { LockState, Participant } from '@doorbell/core'
import type { EndReason } from '@doorbell/machines'

/** What the door status line says: only what the device reported, never what we hope. */
export function doorText (door: LockState | null, now: number, pending: boolean): string {
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
