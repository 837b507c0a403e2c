import type { DeviceConfig, Logger, Startable } from '@doorbell/core'
import { Microphone } from './microphone'
import { Speaker } from './speaker'
import { HalfDuplexGate, halfDuplexOn } from './halfDuplex'

export interface DoorbellAudio {
  microphone: Microphone
  speaker: Speaker
  /** Half duplex (the microphone shut while the speaker plays), or null when it is off. */
  halfDuplex: HalfDuplexGate | null
}

/**
 * The doorbell's `audio` module: the microphone's encoder, then the speaker's decoder; stopped in
 * reverse. The camera's source: audio.source "camera" is the RTSP camera's sound.
 */
export function startAudio ({ audio: config, camera }: Pick<DeviceConfig, 'audio' | 'camera'>, log: Logger, onStarted: (audio: DoorbellAudio) => void): Startable {
  let running: DoorbellAudio | null = null
  return {
    name: 'audio',
    async start () {
      const halfDuplex = halfDuplexOn(config) ? new HalfDuplexGate() : null
      if (halfDuplex) log.info('half duplex: the microphone is shut while the speaker plays', { mode: config.halfDuplex ?? 'auto' })
      const microphone = new Microphone(config, log.child('microphone'), halfDuplex, camera.source.kind === 'rtsp' ? camera.source.url : null)
      const speaker = new Speaker(config, log.child('speaker'), halfDuplex)
      await microphone.start()
      try {
        await speaker.start()
      } catch (err) {
        await microphone.stop()
        throw err
      }
      running = { microphone, speaker, halfDuplex }
      onStarted(running)
    },
    async stop () {
      await running?.speaker.stop()
      await running?.microphone.stop()
    }
  }
}
