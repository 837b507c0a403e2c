import { weriftPeers, type WeriftPeersOptions } from '../src/peer/session'
import type { AnsweringPeer, PeerEvents, PeerSession } from '../src/answering'
import type { Camera } from '../src/camera/camera'
import type { Microphone } from '../src/audio/microphone'
import type { Speaker } from '../src/audio/speaker'

/**
 * The doorbell's own peers (`weriftPeers`) with a camera and a microphone that send nothing and a
 * speaker that plays nothing: for tests whose subject is the connection or the answer, not the media.
 */
export function silentPeers (o: Partial<Pick<WeriftPeersOptions, 'iceAdditionalHostAddresses' | 'keepEarlyDtls'>> & { codec?: 'h264' | 'vp8' } = {}): ReturnType<typeof weriftPeers> {
  const camera = { codec: o.codec ?? 'h264', subscribe: () => () => {} } as unknown as Camera
  const microphone = { subscribe: () => () => {} } as unknown as Microphone
  const speaker = { enabled: false, play: () => {} } as unknown as Speaker
  return weriftPeers({ camera, microphone, speaker, ice: async () => ({ iceServers: [], iceTransportPolicy: 'all' }), iceAdditionalHostAddresses: o.iceAdditionalHostAddresses ?? [], ...(o.keepEarlyDtls !== undefined ? { keepEarlyDtls: o.keepEarlyDtls } : {}) })
}

/** One session of them: no audio, no preview, the home network, unless `session` says otherwise. */
export async function openSession (peers: ReturnType<typeof weriftPeers>, events: Partial<PeerEvents> = {}, session: Partial<PeerSession> = {}): Promise<AnsweringPeer> {
  return await peers.open({ sessionId: 's1', viewerId: 'v1', audio: false, preview: false, path: null, mayTalk: () => false, ...session } as unknown as PeerSession, { connectionState: () => {}, channel: () => {}, ...events } as PeerEvents)
}
