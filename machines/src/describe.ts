import type { SnapshotFrom } from 'xstate'
import type { CallStatus, LockState, LockStatus, Participant } from '@doorbell/core'
import type { deviceCallMachine } from './deviceCall'
import type { lockMachine } from './lock'

/** The call status a device publishes, read off its call machine. */
export function callStatusOf (snapshot: SnapshotFrom<typeof deviceCallMachine>): CallStatus {
  if (snapshot.matches('ringing')) return 'ringing'
  if (snapshot.matches('inCall')) return 'in-call'
  return 'idle'
}

export function participantsOf (snapshot: SnapshotFrom<typeof deviceCallMachine>): Participant[] {
  // Who is in the call, not which member or path (the published state says no more); a preview is not in it.
  return Object.values(snapshot.context.sessions).filter((s) => !s.preview).map(({ sessionId, viewerId, viewerName, since }) => ({ sessionId, viewerId, viewerName, since }))
}

/** The lock state a device publishes. `relockAt` is the device's to fill: the machine keeps no clock. */
export function lockStateOf (snapshot: SnapshotFrom<typeof lockMachine>, relockAt: number | null, boot: string): LockState {
  return {
    status: snapshot.value as LockStatus,
    relockAt: snapshot.matches('unlocked') ? relockAt : null,
    version: snapshot.context.version,
    boot,
    error: snapshot.context.error
  }
}
