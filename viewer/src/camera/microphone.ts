/**
 * The camera node's microphone setting. Off unless the person setting up the camera turns it on:
 * recording sound in public spaces is restricted in many places (docs/operators.md), so a camera
 * node sends no audio unless configured. Kept in this browser (localStorage), next to the pairing.
 */

export const MICROPHONE_KEY = 'doorbell.cameraNode.microphone'

/** What the node asks the browser for: sound for a listener far away, no speaker to cancel. */
export const NODE_MICROPHONE_CONSTRAINTS = { audio: { echoCancellation: false, noiseSuppression: true, autoGainControl: true }, video: false } as const

/** On only when it was turned on here: anything else stored (absent, damaged) is off. */
export function loadMicrophoneSetting (storage: Pick<Storage, 'getItem'>): boolean {
  return storage.getItem(MICROPHONE_KEY) === 'on'
}

export function saveMicrophoneSetting (storage: Pick<Storage, 'setItem' | 'removeItem'>, on: boolean): void {
  if (on) storage.setItem(MICROPHONE_KEY, 'on')
  else storage.removeItem(MICROPHONE_KEY)
}

/** Why the camera sends no sound although it was asked to, from getUserMedia's error. The picture goes on. */
export function microphoneErrorText (err: unknown): string {
  const name = (err as { name?: string } | null)?.name ?? ''
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'No sound: the browser was not allowed to use the microphone. Allow it for this site, then turn sound off and on again. The picture is still sent.'
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No sound: this device has no microphone. The picture is still sent.'
    case 'NotReadableError':
    case 'AbortError':
      return 'No sound: the microphone is in use by another application. The picture is still sent.'
    default: {
      const message = (err as { message?: string } | null)?.message
      return `No sound: the microphone could not be started${message ? ` (${message})` : ''}. The picture is still sent.`
    }
  }
}
