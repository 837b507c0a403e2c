import type { DoorRequest, DeviceState, LockState, Reply, RingEvent } from '@doorbell/core'

/** The viewer call machine's types (viewerCall.ts): its input, context, events and what it sends its call actor. */
export type EndReason =
  | 'hung-up' // we closed it
  | 'device-ended' // the doorbell closed it (call time limit, restart)
  | 'answered-elsewhere' // someone else took the ring and it is over
  | 'missed' // nobody answered in time
  | 'busy' // the doorbell had no room for another viewer
  | 'failed' // the connection could not be made or was lost

export interface ViewerCallInput {
  deviceId: string
  connectTimeoutMs?: number
  commandTimeoutMs?: number
  /** Connect a live preview when it rings (the screen may see the doorbell); default false. */
  preview?: boolean
}

export interface ViewerCallContext {
  deviceId: string
  connectTimeoutMs: number
  commandTimeoutMs: number
  ring: RingEvent | null
  device: DeviceState | null
  /**
   * Newest lock report, from the state topic or the data channel, whichever is newer; null while
   * unknown: nothing heard yet, or the doorbell went offline (a dead doorbell's last report may say
   * `unlocked`, and nothing relocks it but the doorbell itself or systemd's lock-now).
   */
  door: LockState | null
  /** The doorbell's presence on the hub: null until it is heard. */
  online: boolean | null
  /** Its name as its presence says (a screen may have no state from an offline doorbell). */
  deviceName: string | null
  sessionId: string | null
  endReason: EndReason | null
  error: string | null
  pendingCommand: string | null
  /** The command signed while the resident holds "Open door" (`HOLD_OPEN`): the hold's end sends it. */
  heldCommand: string | null
  commandError: string | null
  /** Rings the resident dismissed, so a retained state does not bring them back. */
  dismissedRingId: string | null
  preview: boolean
  /** The call actor is a preview (video only, muted) while it rings: Answer takes it over. */
  previewing: boolean
  /** The ring whose preview was tried (once per ring: a refused one is not retried). */
  previewedRingId: string | null
  /** Why the banner shows the snapshot instead of the live preview (over the cap, turned off, ended). */
  previewNote: string | null
  /**
   * Answered on the preview, not yet confirmed (`CALL_TAKEN`): if the doorbell ends the preview
   * first (someone else answered a moment earlier), the call goes on as a join with this session.
   */
  fallbackSessionId: string | null
}

export interface CallActorInput {
  deviceId: string
  sessionId: string
  /** A preview while it rings: offered with `preview: true`; audio opens when the machine sends `TAKE_CALL`. */
  preview: boolean
}

export type ViewerCallEvent =
  | { type: 'RING', ring: RingEvent }
  | { type: 'DEVICE_STATE', state: DeviceState }
  | { type: 'PRESENCE', online: boolean, deviceName?: string }
  | { type: 'ANSWER', sessionId: string }
  | { type: 'WATCH', sessionId: string }
  /** The screen's runtime asks for a live preview of the ring (a fresh session id); the machine decides. */
  | { type: 'PREVIEW', sessionId: string }
  | { type: 'DISMISS' }
  | { type: 'HANGUP' }
  /**
   * The resident started holding "Open door": the call actor signs the command now, so that the
   * hold's end (`UNLOCK`) sends it at once, under the held id. A released hold (`RELEASE_OPEN`) sends nothing.
   */
  | { type: 'HOLD_OPEN', commandId: string }
  | { type: 'RELEASE_OPEN' }
  /** Open the door: the held command if there is one (its id wins), else a new one with `commandId`. */
  | { type: 'UNLOCK', commandId: string }
  // from the call actor
  | { type: 'CONNECTED' }
  | { type: 'FAILED', message: string }
  | { type: 'REMOTE_BYE', reason: 'hang-up' | 'device-ended' | 'failed' | 'busy' | 'rejected', message?: string }
  | { type: 'REPLY', reply: Reply }
  /** The doorbell opened audio on the preview this screen answered on. */
  | { type: 'CALL_TAKEN' }

/** What the call actor is sent while the call is up. */
export type CallActorCommand =
  | { type: 'SEND_COMMAND', command: DoorRequest }
  /** Sign this command now and keep it for a `SEND_COMMAND` with its id; it leaves only then. */
  | { type: 'PREPARE_COMMAND', command: DoorRequest }
  /** Forget the prepared command (the hold was released): nothing is sent. */
  | { type: 'DROP_COMMAND' }
  /** The resident answered on the preview: open audio and talk on the same connection. */
  | { type: 'TAKE_CALL' }
