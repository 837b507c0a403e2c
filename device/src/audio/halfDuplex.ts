import type { DeviceConfig } from '@doorbell/core'

/** The microphone stays shut this long after the speaker's last packet (the sound still leaving the speaker, and the room's echo). */
export const HALF_DUPLEX_HOLD_MS = 250

/**
 * Half duplex: the doorbell's microphone is gated while its speaker plays (a talker, or a quick
 * reply), so the visitor's side never sends the resident's own voice back to them. The speaker
 * says when it plays (`played`); the microphone asks before each packet (`open`).
 */
export class HalfDuplexGate {
  private lastPlayed = Number.NEGATIVE_INFINITY
  /** Microphone packets not sent because the speaker was playing. */
  gated = 0

  constructor (private readonly holdMs = HALF_DUPLEX_HOLD_MS, private readonly now: () => number = Date.now) {}

  /** The speaker played a packet now. */
  played (): void { this.lastPlayed = this.now() }

  /** May the microphone be sent now? Counts the packets it holds back. */
  open (): boolean {
    if (this.now() - this.lastPlayed >= this.holdMs) return true
    this.gated++
    return false
  }
}

/**
 * Is half duplex on for this config? `on` and `off` say so; `auto` (or absent) turns it on for
 * an ALSA microphone (a sound card with nothing cancelling the echo) and the RTSP camera's (it
 * cannot cancel an echo of a speaker it does not drive), off for PulseAudio or
 * PipeWire (their echo-cancel module is the answer: docs/audio.md) and for the test tone (no
 * room to echo in); never without both a microphone and a speaker.
 */
export function halfDuplexOn (audio: DeviceConfig['audio']): boolean {
  if (audio.source.kind === 'none' || audio.speaker.kind === 'none') return false
  const mode = audio.halfDuplex ?? 'auto'
  if (mode !== 'auto') return mode === 'on'
  return audio.source.kind === 'alsa' || audio.source.kind === 'camera'
}
