/** A microphone or speaker named in the config is not there (or not usable); the message names it and how to list devices. */
export class AudioDeviceError extends Error {
  override readonly name = 'AudioDeviceError'
}
