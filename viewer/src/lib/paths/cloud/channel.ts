import type { Actor } from 'xstate'
import type { CloudDevice, SignalToDevice } from '@doorbell/core'
import type { cloudChannelMachine } from '@doorbell/machines'
import type { SignalingLike } from './aws'

/** The CloudClient's signaling connections (cloudClient.ts): their shapes and the messages their failures show. */

export interface Queued { sessionId: string, message: SignalToDevice, payload: string }
/** One doorbell's signaling connection: its lifecycle is a cloudChannel machine (machines/src/cloudChannel.ts). */
export interface Channel {
  device: CloudDevice
  client: SignalingLike | null
  queue: Queued[]
  actor: Actor<typeof cloudChannelMachine>
  /** A preview on it ended: close it as soon as nothing else uses it (a KVS viewer slot goes back). */
  release?: boolean
}
/** `preview`: offered as a ring's live preview; when it ends, its KVS connection is given back at once (`release`). */
export interface Session { deviceId: string, answered: boolean, preview: boolean }

/** Why a signaling connection failed when its WebSocket was refused (KVS's answer is not visible to a WebSocket). */
export const REFUSED = 'the cloud signaling connection was refused or could not be opened: check the credentials in Settings and the internet connection'
/**
 * What a preview says when its signaling connection was refused or KVS was busy: KVS takes 10
 * viewers per channel and refuses the 11th, so this is most likely a full channel, not an error.
 */
export const PREVIEW_UNAVAILABLE = 'Live preview unavailable away from home: the doorbell\'s cloud channel has no room for this screen now (KVS takes 10 at once; Answer tries again)'

/** What `wireChannel` tells its client about: a stale channel is ignored; a refusal forgets the control plane's endpoint. */
export interface ChannelHooks {
  current: (ch: Channel) => boolean
  warn: (message: string) => void
  forget: (deviceId: string) => void
  onAnswer: (ch: Channel, payload: unknown) => void
}

/** The SDK client's events, turned into the channel machine's (OPENED, CLOSED, REFUSED) and answers. */
export function wireChannel (ch: Channel, client: SignalingLike, h: ChannelHooks): void {
  const refused = (): void => {
    // Refused before it opened: the endpoint may be stale, the control plane is asked again next time.
    h.forget(ch.device.deviceId)
    ch.actor.send({ type: 'REFUSED', message: REFUSED })
  }
  // An error listener always: an EventEmitter without one throws.
  client.on('error', (err) => {
    if (!h.current(ch)) return
    h.warn(`cloud signaling (${ch.device.channelName}): ${(err as Error)?.message ?? 'WebSocket error'}`)
    if (!ch.actor.getSnapshot().matches('open')) refused()
  })
  client.on('open', () => { if (h.current(ch)) ch.actor.send({ type: 'OPENED' }) })
  client.on('close', () => {
    if (!h.current(ch)) return
    if (ch.actor.getSnapshot().matches('open')) ch.actor.send({ type: 'CLOSED' })
    else refused()
  })
  client.on('sdpAnswer', (payload) => { h.onAnswer(ch, payload) })
}
