import type { DeviceConfig, Logger, Startable } from '@doorbell/core'
import { Microphone } from './microphone'
import { Speaker } from './speaker'

export interface DoorbellAudio {
  microphone: Microphone
  speaker: Speaker
}

/** The doorbell's `audio` module: the microphone's encoder, then the speaker's decoder; stopped in reverse. */
export function startAudio (config: DeviceConfig['audio'], log: Logger, onStarted: (audio: DoorbellAudio) => void): Startable {
  let running: DoorbellAudio | null = null
  return {
    name: 'audio',
    async start () {
      const microphone = new Microphone(config, log.child('microphone'))
      const speaker = new Speaker(config, log.child('speaker'))
      await microphone.start()
      try {
        await speaker.start()
      } catch (err) {
        await microphone.stop()
        throw err
      }
      running = { microphone, speaker }
      onStarted(running)
    },
    async stop () {
      await running?.speaker.stop()
      await running?.microphone.stop()
    }
  }
}
