import { markRaw, ref, shallowRef } from 'vue'
import type { InspectionEvent } from 'xstate'
import type { CallActorInput } from '@doorbell/machines'
import type { AudioSenderLike, DoorbellActor, ReplyLink, TalkLink, TalkerView } from '../lib'
import { FeedKeeper, callPhaseOf, type TileState } from './feed'
import { figuresOf, type Descriptions, type Figures, type Sample, type StatsEntry } from './stats'
import type { StatsSource } from './statsLoop'

/** Readings in a row without a new frame before the picture counts as frozen. */
const FROZEN_READINGS = 3

export interface TileFeedOptions {
  deviceId: string
  name: string
  zone: string
  /** The device's viewer call machine (Home.doorbell). */
  actor: DoorbellActor
  /** Starts a call: fresh ICE settings, then WATCH (Home.watch). */
  start: () => Promise<void>
  hangUp: () => void
  dismiss: () => void
  /** The page's inspection: the tile's feed machine (`feed:<deviceId>`) is shown in /inspector. */
  inspect?: ((event: InspectionEvent) => void) | undefined
}

/**
 * One tile's feed: the call machine of its device, the keeper that calls it again when it drops,
 * the video element, and the figures of the current call. The media itself never goes through
 * Vue: the stream is set on the <video> here, and the figures change once a second.
 */
export class TileFeed implements StatsSource {
  readonly deviceId: string
  readonly zone: string
  readonly name = ref('')
  readonly state = ref<TileState>('connecting')
  readonly figures = shallowRef<Figures | null>(null)
  /** Stats readings of this call, and when the last one was taken (the page's clock): the e2e test reads them. */
  readonly readings = ref(0)
  readonly readAt = ref(0)
  /** The camera sends sound in this call (a Node doorbell's microphone, a camera node with sound on). */
  readonly hasAudio = ref(false)
  /** Audio bytes received in this call (getStats' inbound-rtp): the tile shows them as `data-audio-bytes`. */
  readonly audioBytes = ref(0)
  /** Why the last call ended, in the machine's words. */
  readonly note = ref<string | null>(null)
  readonly keeper: FeedKeeper
  pc: RTCPeerConnection | null = null
  /** The current call's audio sender and talk lease (the console's talk swaps the microphone in): null between calls. */
  readonly sender = shallowRef<AudioSenderLike | null>(null)
  readonly link = shallowRef<(TalkLink & ReplyLink) | null>(null)
  /** Who is talking to this camera, as it last said (anyone: this console, a resident, another operator). */
  readonly talker = shallowRef<TalkerView>({ talker: null, self: false, ended: null })
  private offTalker: (() => void) | null = null
  private voiceSession: string | null = null

  private sessionId: string | null = null
  private startedAt: number | null = null
  private firstFrameAt: number | null = null
  private previous: Sample | null = null
  private frozenFor = 0
  private stream: MediaStream | null = null
  private video: HTMLVideoElement | null = null
  private audioStream: MediaStream | null = null
  private audio: HTMLAudioElement | null = null
  private readonly stopWatching: () => void

  constructor (private readonly o: TileFeedOptions) {
    this.deviceId = o.deviceId
    this.zone = o.zone
    this.name.value = o.name
    this.keeper = new FeedKeeper({
      start: o.start,
      hangUp: o.hangUp,
      dismiss: o.dismiss,
      onState: (s) => { this.state.value = s },
      deviceId: o.deviceId,
      ...(o.inspect ? { inspect: o.inspect } : {})
    })
    const sub = o.actor.subscribe((snap) => {
      const phase = callPhaseOf(snap)
      if (phase === 'ended') this.note.value = snap.context.error ?? snap.context.endReason
      this.keeper.update({ call: phase })
    })
    this.stopWatching = () => { sub.unsubscribe() }
    markRaw(this)
  }

  /** A call was just asked for (`at`: the page's clock before WATCH): the figures start over. */
  begin (sessionId: string | null, at: number): void {
    this.sessionId = sessionId
    if (this.voiceSession !== null && this.voiceSession !== sessionId) this.dropVoice()
    this.startedAt = at
    this.firstFrameAt = null
    this.previous = null
    this.frozenFor = 0
    this.figures.value = null
    this.readings.value = 0
    this.hasAudio.value = false
    this.audioBytes.value = 0
    this.keeper.update({ firstFrame: false, mediaOk: true })
  }

  /**
   * The remote video or sound of a call (Home's onTrack); a late one from an older call is ignored.
   * The sound goes to the tile's own <audio>, muted until the operator unmutes that tile. Its
   * track always exists (offers carry an audio line); `hasAudio` waits for a camera that sends.
   */
  takeTrack (call: CallActorInput, event: RTCTrackEvent, pc: RTCPeerConnection): void {
    if (call.sessionId !== this.sessionId) return
    if (event.track.kind === 'audio') {
      this.audioStream = new MediaStream([event.track])
      this.sound()
      return
    }
    if (event.track.kind !== 'video') return
    if (this.pc !== pc) {
      this.pc = pc
      const mediaState = (): void => {
        if (this.pc !== pc) return
        const s = pc.connectionState
        if (s === 'disconnected' || s === 'failed' || s === 'closed') this.keeper.update({ mediaOk: false })
        else if (s === 'connected' && this.frozenFor < FROZEN_READINGS) this.keeper.update({ mediaOk: true })
      }
      pc.addEventListener('connectionstatechange', mediaState)
    }
    this.stream = event.streams[0] ?? new MediaStream([event.track])
    this.show()
  }

  /**
   * The call's audio sender and talk lease (Home's onAudioSender / onTalkLink). They come as the
   * call's session starts, before `begin` knows its id: the newest call's are kept.
   */
  takeSender (call: CallActorInput, sender: AudioSenderLike): void {
    if (this.voiceSession !== call.sessionId) this.dropVoice()
    this.voiceSession = call.sessionId
    this.sender.value = sender
  }

  takeLink (call: CallActorInput, link: TalkLink & ReplyLink): void {
    if (this.voiceSession !== call.sessionId) this.dropVoice()
    this.voiceSession = call.sessionId
    this.offTalker?.()
    this.link.value = link
    this.offTalker = link.onTalker((v) => { this.talker.value = v })
  }

  /** Is this the call whose sender and lease the tile holds? */
  talksOn (sessionId: string): boolean {
    return this.voiceSession === sessionId
  }

  private dropVoice (): void {
    this.voiceSession = null
    this.offTalker?.()
    this.offTalker = null
    this.sender.value = null
    this.link.value = null
    this.talker.value = { talker: null, self: false, ended: null }
  }

  /** The call's session ended (Home's onClosed). */
  closed (call: CallActorInput): void {
    if (call.sessionId === this.voiceSession) this.dropVoice()
    if (call.sessionId !== this.sessionId) return
    this.pc = null
    this.stream = null
    this.audioStream = null
    this.hasAudio.value = false
    this.audioBytes.value = 0
    this.show()
    this.sound()
  }

  /** The tile's <audio>, or null when it unmounts (muting is the tile's, per the console's one-at-a-time rule). */
  attachAudio (audio: HTMLAudioElement | null): void {
    this.audio = audio
    this.sound()
  }

  private sound (): void {
    const a = this.audio
    if (!a || a.srcObject === this.audioStream) return
    a.srcObject = this.audioStream
    if (this.audioStream) a.play().catch(() => {})
  }

  /** The tile's <video>, or null when it unmounts. */
  attach (video: HTMLVideoElement | null): void {
    this.video = video
    this.show()
  }

  private show (): void {
    const v = this.video
    if (!v || v.srcObject === this.stream) return
    v.srcObject = this.stream
    if (!this.stream) return
    const session = this.sessionId
    // Time to first frame: the first frame the page presents, for this call.
    if ('requestVideoFrameCallback' in v) {
      v.requestVideoFrameCallback(() => {
        if (this.sessionId !== session || this.firstFrameAt !== null) return
        this.firstFrameAt = performance.now()
        this.keeper.update({ firstFrame: true })
      })
    }
    v.play().catch(() => {})
  }

  /** A stats reading (the page's one loop). */
  take (entries: StatsEntry[], now: number, sdp: Descriptions): void {
    const f = figuresOf(entries, this.previous, now, { startedAt: this.startedAt, firstFrameAt: this.firstFrameAt }, sdp)
    this.previous = f.sample
    this.figures.value = f
    this.readings.value++
    this.readAt.value = now
    // Sound: the audio line's received bytes (0 while the camera sends none: an inactive line has no inbound-rtp).
    const heard = entries.filter((e) => e.type === 'inbound-rtp' && (e.kind ?? e.mediaType) === 'audio')
      .reduce((sum, e) => sum + (typeof e.bytesReceived === 'number' ? e.bytesReceived : 0), 0)
    this.audioBytes.value = heard
    if (heard > 0) this.hasAudio.value = true
    // Without requestVideoFrameCallback (or a hidden tab): the first reading with a decoded frame.
    if (this.firstFrameAt === null && f.sample.firstFrameAt !== null) {
      this.firstFrameAt = f.sample.firstFrameAt
      this.keeper.update({ firstFrame: true })
    }
    if (this.firstFrameAt !== null) {
      this.frozenFor = f.frozen ? this.frozenFor + 1 : 0
      const up = this.pc?.connectionState === 'connected'
      this.keeper.update({ mediaOk: up && this.frozenFor < FROZEN_READINGS })
    }
  }

  stop (): void {
    this.dropVoice()
    this.keeper.stop()
    this.stopWatching()
    if (this.video) this.video.srcObject = null
    if (this.audio) this.audio.srcObject = null
  }
}
