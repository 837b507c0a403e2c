import nodeDataChannel, { type DataChannel, type PeerConnection, type Track } from 'node-datachannel'
import { Home, type DataChannelLike, type PeerConnectionLike } from '@doorbell/viewer/lib'
import type { IceServerInit } from '@doorbell/core'
import type { PairedViewer } from './trust'

/**
 * The viewer app's own call logic (Home, callSession) on libdatachannel (node-datachannel's
 * native API: libjuice for ICE, OpenSSL for DTLS, usrsctp for SCTP, the stack of Firefox's data
 * channels and many embedded viewers), as a third WebRTC stack beside werift and Chromium.
 * node-datachannel's RTCPeerConnection polyfill has no media, so this adapts its own API to the
 * subset the call uses (`PeerConnectionLike`).
 */

export interface NdcViewer {
  home: Home
  /** Video RTP packets received (libdatachannel hands them over whole). */
  videoPackets: () => number
  close: () => Promise<void>
}

const H264_PT = 102
const OPUS_PT = 111
const H264_PROFILE = 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f'

type Listener = () => void

/** One libdatachannel peer connection, shaped as the call wants it. */
class NdcPeer implements PeerConnectionLike {
  readonly pc: PeerConnection
  private gatheringListeners = new Set<Listener>()
  private offer: Promise<string> | null = null
  private mids = 0
  /**
   * Held for the call's life: node-datachannel closes a track whose JavaScript object is
   * collected, and its video stops there (mid-call, at whichever garbage collection came first:
   * the "third call with no video" of issue 21).
   */
  private readonly tracks: Track[] = []
  onicegatheringstatechange: ((ev: unknown) => void) | null | undefined = null
  onconnectionstatechange: ((ev: unknown) => void) | null | undefined = null
  oniceconnectionstatechange: ((ev: unknown) => void) | null | undefined = null
  ontrack: ((ev: unknown) => void) | null | undefined = null
  iceGatheringState = 'new'
  connectionState = 'new'
  iceConnectionState = 'new'

  constructor (iceServers: IceServerInit[], private readonly onVideo: (packet: Buffer) => void) {
    const urls = iceServers.flatMap((s) => [s.urls].flat().map((u) => s.username === undefined ? u : u.replace(/^(turns?):/, `$1:${encodeURIComponent(s.username)}:${encodeURIComponent(String(s.credential))}@`)))
    // The offer waits for gathering, as the call does: no trickle.
    this.pc = new nodeDataChannel.PeerConnection('viewer', { iceServers: urls, disableAutoNegotiation: true })
    this.pc.onGatheringStateChange((state) => {
      this.iceGatheringState = state === 'in-progress' ? 'gathering' : state
      this.onicegatheringstatechange?.({})
      for (const l of this.gatheringListeners) l()
    })
    this.pc.onStateChange((state) => { this.connectionState = state; this.onconnectionstatechange?.({}) })
    this.pc.onIceStateChange((state) => { this.iceConnectionState = state; this.oniceconnectionstatechange?.({}) })
  }

  get localDescription (): { sdp: string } | null {
    const d = this.pc.localDescription()
    return d === null ? null : { sdp: d.sdp }
  }

  createDataChannel (label: string, init?: { ordered?: boolean }): DataChannelLike {
    return adaptChannel(this.pc.createDataChannel(label, { unordered: init?.ordered === false }))
  }

  addTransceiver (kind: 'video' | 'audio', init: { direction: 'recvonly' | 'sendrecv' }): { sender: { replaceTrack: () => Promise<void> } } {
    const mid = String(this.mids++)
    if (kind === 'video') {
      const video = new nodeDataChannel.Video(mid, init.direction === 'recvonly' ? 'RecvOnly' : 'SendRecv')
      video.addH264Codec(H264_PT, H264_PROFILE)
      const track = this.pc.addTrack(video)
      track.onMessage((packet) => { this.onVideo(packet) })
      this.tracks.push(track)
    } else {
      const audio = new nodeDataChannel.Audio(mid, init.direction === 'recvonly' ? 'RecvOnly' : 'SendRecv')
      audio.addOpusCodec(OPUS_PT)
      this.tracks.push(this.pc.addTrack(audio))
    }
    // This viewer never talks: there is no microphone to swap in.
    return { sender: { replaceTrack: async () => { throw new Error('a node-datachannel viewer has no microphone') } } }
  }

  async createOffer (): Promise<{ type: string, sdp: string }> {
    this.offer ??= new Promise<string>((resolve) => {
      this.pc.onLocalDescription((sdp, type) => { if (type === 'offer') resolve(sdp) })
      this.pc.setLocalDescription('offer')
    })
    return { type: 'offer', sdp: await this.offer }
  }

  /** The offer was set by `createOffer` (libdatachannel makes and sets it in one step). */
  async setLocalDescription (): Promise<void> {}

  async setRemoteDescription (d: { type: 'answer', sdp: string }): Promise<void> {
    this.pc.setRemoteDescription(d.sdp, 'answer')
  }

  addEventListener (_type: 'icegatheringstatechange', listener: Listener): void { this.gatheringListeners.add(listener) }
  removeEventListener (_type: 'icegatheringstatechange', listener: Listener): void { this.gatheringListeners.delete(listener) }

  close (): void { this.pc.close() }
}

function adaptChannel (dc: DataChannel): DataChannelLike {
  const channel: DataChannelLike & { readyState: string } = {
    readyState: 'connecting',
    onopen: null,
    onmessage: null,
    send: (data: string) => { dc.sendMessage(data) },
    close: () => { dc.close() }
  }
  dc.onOpen(() => { channel.readyState = 'open'; channel.onopen?.({}) })
  dc.onClosed(() => { channel.readyState = 'closed' })
  dc.onMessage((msg) => { channel.onmessage?.({ data: typeof msg === 'string' ? msg : new TextDecoder().decode(msg as ArrayBuffer) }) })
  return channel
}

/** A viewer on libdatachannel, signed in to the hub as `paired`. */
export function ndcViewer (url: string, paired: PairedViewer): NdcViewer {
  let video = 0
  const peers = new Set<NdcPeer>()
  const home = new Home({
    url,
    homeId: paired.homeId,
    viewerId: paired.viewerId,
    viewerName: paired.name,
    trust: paired,
    log: () => {},
    createPeerConnection: (iceServers) => {
      const peer = new NdcPeer(iceServers, () => { video++ })
      peers.add(peer)
      return peer
    },
    alert: () => {}
  })
  return {
    home,
    videoPackets: () => video,
    close: async () => {
      await home.close()
      for (const p of peers) p.close()
    }
  }
}
