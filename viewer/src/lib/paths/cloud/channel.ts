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
