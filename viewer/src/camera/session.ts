import { fromCallback, type EventObject } from 'xstate'
import { CONTROL_CHANNEL, Reply, asDtlsServer, describeError, encode, type IceSettings, type Logger } from '@doorbell/core'
import type { DeviceCallEvent, SessionInput, SessionRouting } from '@doorbell/machines'
import { controlReply } from './control'

/** A peer that has not connected by then is given up (as on the Node doorbell). */
export const CONNECT_TIMEOUT_MS = 20_000
/** Our protocol has no trickle: the answer carries every candidate, so gathering is waited for, this long at most. */
export const GATHER_TIMEOUT_MS = { lan: 2000, withServers: 4000 }
/** A bye's message is bounded by the Bye schema. */
const BYE_MESSAGE_MAX = 300

export interface CameraSessionDeps {
  /** The camera's video track: one getUserMedia stream, shared by every session (each has its own sender). */
  track: () => MediaStreamTrack | null
  /** ICE servers and policy from the hub (`GET /api/ice`), asked for each session: TURN credentials expire. */
  ice: () => Promise<IceSettings>
  log: Logger
  /** Default: the browser's. */
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection
  connectTimeoutMs?: number
}


/**
 * One watcher's session on a browser camera node: an RTCPeerConnection that answers the
 * watcher's offer (the watcher always offers, on every path), sends the camera's track, and
 * takes the `control` data channel, where every door command is refused (no door). It is the
 * `session` actor of the shared answering side (`startAnswering` in @doorbell/machines), which
 * admits the offer, spawns this actor and stops it; `routing` sends on the offer's own path.
 */
export function cameraSession (deps: CameraSessionDeps) {
  return (routing: SessionRouting) => fromCallback<EventObject, SessionInput>(({ input, sendBack }) => {
    const { sessionId, viewerId, viewerName } = input
    const log = deps.log.child(`session ${sessionId}`)
    let over = false
    let pc: RTCPeerConnection | null = null
    const end = (reason: string, message?: string): void => {
      if (over) return
      over = true
      routing.signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'failed', ...(message ? { message: message.slice(0, BYE_MESSAGE_MAX) } : {}) })
      sendBack({ type: 'SESSION_ENDED', sessionId, reason } satisfies DeviceCallEvent)
    }
    const connectTimer = setTimeout(() => { end('failed', 'the connection was not established in time') }, deps.connectTimeoutMs ?? CONNECT_TIMEOUT_MS)

    const open = (ice: IceSettings): RTCPeerConnection => {
      const config: RTCConfiguration = { iceServers: ice.iceServers, iceTransportPolicy: ice.iceTransportPolicy, bundlePolicy: 'max-bundle' }
      const peer = deps.createPeerConnection ? deps.createPeerConnection(config) : new RTCPeerConnection(config)
      peer.ondatachannel = ({ channel }) => {
        if (channel.label !== CONTROL_CHANNEL) {
          log.warn('ignored a data channel with an unknown label', { label: channel.label })
          return
        }
        channel.binaryType = 'arraybuffer'
        channel.onmessage = (ev: MessageEvent) => {
          const reply = controlReply(ev.data)
          if (reply.type === 'nack' && reply.error.code === 'no-door') log.info('refused a door command: no door', { viewer: viewerName })
          else log.warn('rejected a command', { viewer: viewerName, error: reply.type === 'nack' ? reply.error.message : '' })
          if (channel.readyState === 'open') channel.send(encode(Reply, reply))
        }
      }
      peer.onconnectionstatechange = () => {
        const state = peer.connectionState
        log.info('peer', { state })
        if (state === 'connected') clearTimeout(connectTimer)
        if (state === 'failed' || state === 'closed') end('failed', `connection ${state}`)
      }
      return peer
    }

    void (async () => {
      // Without the hub's settings the node cannot know the home's policy (relay-only must never
      // fall back to revealing its addresses): the call ends, saying why; the watcher calls again.
      const ice = await deps.ice().catch((err: unknown) => {
        log.warn('no ICE settings from the hub', { error: describeError(err) })
        end('failed', `the camera could not get its connection settings from the hub: ${describeError(err)}`)
        return null
      })
      if (over || ice === null) return
      const peer = pc = open(ice)
      await peer.setRemoteDescription({ type: 'offer', sdp: input.sdp })
      const video = peer.getTransceivers().find((t) => t.receiver.track.kind === 'video' && t.currentDirection !== 'stopped')
      if (!video) throw new Error('the offer asks for no video')
      const track = deps.track()
      if (!track || track.readyState !== 'live') throw new Error('the camera is off')
      // The offer's recvonly video line becomes our sendonly one, with this session's own sender.
      video.direction = 'sendonly'
      await video.sender.replaceTrack(track)
      const answer = await peer.createAnswer()
      await peer.setLocalDescription(asDtlsServer({ type: answer.type, sdp: answer.sdp ?? '' }))
      await gathered(peer, ice.iceServers.length > 0 ? GATHER_TIMEOUT_MS.withServers : GATHER_TIMEOUT_MS.lan)
      const sdp = peer.localDescription?.sdp
      if (!sdp) throw new Error('the browser produced no answer')
      if (!over) routing.signal(viewerId, sessionId, { type: 'answer', sessionId, sdp })
    })().catch((err: unknown) => {
      const why = describeError(err)
      log.error('could not answer the offer', { viewer: viewerName, error: why })
      end('failed', `the camera could not answer: ${why}`)
    })

    return () => {
      clearTimeout(connectTimer)
      if (!over) {
        // Stopped by the call machine: the watcher hung up (bye) or the node ended the call.
        over = true
        routing.signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'device-ended' })
      }
      pc?.close()
    }
  })
}

/** Waits for ICE gathering to finish, or the timeout (host candidates on a LAN take milliseconds). */
export async function gathered (pc: Pick<RTCPeerConnection, 'iceGatheringState' | 'addEventListener' | 'removeEventListener'>, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      if (pc.iceGatheringState !== 'complete') return
      clearTimeout(timer)
      pc.removeEventListener('icegatheringstatechange', done)
      resolve()
    }
    const timer = setTimeout(() => { pc.removeEventListener('icegatheringstatechange', done); resolve() }, timeoutMs)
    pc.addEventListener('icegatheringstatechange', done)
  })
}
