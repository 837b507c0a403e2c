import { fromCallback, type EventObject } from 'xstate'
import { MediaStreamTrack, type RTCDataChannel, type RTCIceServer, type RTCPeerConnection } from 'werift'
import { CONTROL_CHANNEL, DoorCommand, Reply, asDtlsServer, decode, describeError, encode, newId, type DoorAttempt, type DoorGuard, type SignalToViewer } from '@doorbell/core'
import type { DeviceCallEvent, SessionInput } from '@doorbell/machines'
import type { Camera } from '../camera/camera'
import type { LockControl } from '../lock/lockControl'
import type { Logger } from '@doorbell/core'
import { createPeerConnection, withoutDefaultStun } from './werift'

export interface SessionDeps {
  camera: Camera
  lock: LockControl
  /**
   * ICE for one session: none on a plain LAN; the doorbell's STUN/TURN (TURN REST credentials
   * minted for this call) and relay policy; the cloud's TURN for a call that came that way.
   */
  ice: (sessionId: string) => Promise<{ iceServers: RTCIceServer[], iceTransportPolicy: 'all' | 'relay' }>
  iceAdditionalHostAddresses: string[]
  /** Sends a signaling message to the viewer of this session, on whichever path carries it. */
  signal: (viewerId: string, sessionId: string, message: SignalToViewer) => void
  /** Checks every open-door command (credential, role, signature, freshness, nonce, rate). */
  guard: DoorGuard
  /** Where each attempt, allowed or denied, is recorded (the audit outbox). */
  audit: (attempt: DoorAttempt) => void
  /** Which path carries this session's signaling (for the audit record). */
  pathOf: (sessionId: string) => DoorAttempt['path']
  deviceId: string
  log: Logger
}

/** Kept here for the doorbell's callers; the one definition is core's. */
export { describeError }

/** A nack's message is bounded by the Reply schema; a longer reason (a schema error, a forged name) is cut, never thrown on. */
const NACK_MESSAGE_MAX = 300

/** A peer that has not connected by then is given up. */
const CONNECT_TIMEOUT_MS = 20_000

/**
 * One viewer's session on the device: a werift peer connection that answers the viewer's
 * offer, sends the shared camera's RTP, and takes commands on the data channel. It is the
 * `session` actor of the device call machine, which spawns and stops it.
 */
export function sessionActor (deps: SessionDeps) {
  return fromCallback<EventObject, SessionInput>(({ input, sendBack }) => {
    const { sessionId, viewerId, viewerName } = input
    const log = deps.log.child(`session ${sessionId}`)
    let over = false
    const end = (reason: string, message?: string): void => {
      if (over) return
      over = true
      if (reason !== 'hang-up') deps.signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'failed', ...(message ? { message } : {}) })
      sendBack({ type: 'SESSION_ENDED', sessionId, reason } satisfies DeviceCallEvent)
    }

    const connectTimer = setTimeout(() => { end('failed', 'the connection was not established in time') }, CONNECT_TIMEOUT_MS)
    // Made once this session's ICE settings are known (at once without TURN).
    let pc: RTCPeerConnection | null = null
    const track = new MediaStreamTrack({ kind: 'video' })
    // Video starts once the sender can encrypt, with the camera's last group of pictures, so
    // the first packet the viewer gets starts a keyframe. Each viewer has its own track:
    // werift rewrites headers per sender.
    let stopVideo: (() => void) | null = null
    const startVideo = (): void => {
      if (stopVideo || over) return
      stopVideo = deps.camera.subscribe((packet) => { track.writeRtp(packet) }, { fromKeyframe: true })
    }

    let channel: RTCDataChannel | null = null
    const reply = (message: Reply): void => {
      if (channel?.readyState === 'open') channel.send(encode(Reply, message))
    }
    const stopLockReports = deps.lock.subscribe((lock) => { reply({ type: 'lock', lock }) })

    const wire = (pc: RTCPeerConnection): void => {
    pc.onDataChannel.subscribe((dc) => {
      if (dc.label !== CONTROL_CHANNEL) {
        log.warn('ignored a data channel with an unknown label', { label: dc.label })
        return
      }
      channel = dc
      dc.onMessage.subscribe((data) => { void onCommand(data) })
      dc.stateChanged.subscribe((state) => {
        if (state === 'open') reply({ type: 'lock', lock: deps.lock.state() })
      })
      if (dc.readyState === 'open') reply({ type: 'lock', lock: deps.lock.state() })
    })

    pc.connectionStateChange.subscribe((state) => {
      log.info('peer', { state })
      if (state === 'connected') {
        clearTimeout(connectTimer)
        startVideo()
      }
      if (state === 'failed' || state === 'closed') end('failed', `connection ${state}`)
    })
    }

    const record = (outcome: DoorAttempt['outcome'], reason: DoorAttempt['reason'], message: string, grant: { id: string, name: string, role: DoorAttempt['role'] } | null): void => {
      deps.audit({
        id: newId('a'),
        deviceId: deps.deviceId,
        at: Date.now(),
        outcome,
        reason,
        message: message.slice(0, 300),
        memberId: grant?.id ?? null,
        viewerId,
        viewerName: grant?.name ?? viewerName,
        role: grant?.role ?? null,
        path: deps.pathOf(sessionId)
      })
    }

    const onCommand = async (data: string | Buffer): Promise<void> => {
      const parsed = decode(DoorCommand, data, `data channel of ${viewerName}`)
      if (!parsed.ok) {
        log.warn('rejected a command', { error: parsed.error.message })
        record('denied', 'malformed', parsed.error.message, null)
        reply({ type: 'nack', id: idOf(data), error: { code: 'invalid-command', message: parsed.error.message.slice(0, NACK_MESSAGE_MAX) } })
        return
      }
      const command = parsed.value
      // The device's own check, whatever path carried the call: the lock moves only after it.
      const verdict = await deps.guard.check(command, { sessionId, viewerId })
      if (!verdict.ok) {
        log.warn('open-door refused', { viewer: viewerName, reason: verdict.reason, message: verdict.message })
        record('denied', verdict.reason, verdict.message, verdict.grant)
        reply({ type: 'nack', id: command.id, error: { code: 'denied', message: verdict.message.slice(0, NACK_MESSAGE_MAX) } })
        return
      }
      const who = verdict.grant
      log.info('open-door requested', { viewer: who.name, role: who.role })
      const result = await deps.lock.unlock(who.name)
      if (result.ok) {
        record('allowed', 'ok', `opened by ${who.name}`, who)
        sendBack({ type: 'UNLOCKED', sessionId, at: Date.now() } satisfies DeviceCallEvent)
        reply({ type: 'ack', id: command.id, lock: result.lock })
      } else {
        record('denied', result.code, result.message, who)
        reply({ type: 'nack', id: command.id, error: { code: result.code, message: result.message.slice(0, NACK_MESSAGE_MAX) } })
      }
    }

    void (async () => {
      const { iceServers, iceTransportPolicy } = await deps.ice(sessionId)
      if (over) return
      pc = createPeerConnection({ codec: deps.camera.codec, iceServers, iceTransportPolicy, iceAdditionalHostAddresses: deps.iceAdditionalHostAddresses })
      const { sender } = pc.addTransceiver(track, { direction: 'sendonly' })
      wire(pc)
      await pc.setRemoteDescription({ type: 'offer', sdp: input.sdp })
      // The first moment SRTP can carry video; the peer's own 'connected' comes a little later.
      sender.dtlsTransport?.onStateChange.subscribe((s) => { if (s === 'connected') startVideo() })
      withoutDefaultStun(pc, iceServers)
      await pc.setLocalDescription(asDtlsServer(await pc.createAnswer()))
      const sdp = pc.localDescription?.sdp
      if (!sdp) throw new Error('werift produced no answer')
      if (!over) deps.signal(viewerId, sessionId, { type: 'answer', sessionId, sdp })
    })().catch((err: unknown) => {
      // werift throws some parse failures without a message (a TypeError on a missing line): say what it was.
      const why = describeError(err)
      log.error('could not answer the offer', { error: why })
      end('failed', `the doorbell could not answer: ${why}`)
    })

    return () => {
      clearTimeout(connectTimer)
      stopVideo?.()
      stopLockReports()
      if (!over) {
        // Stopped by the call machine: the viewer hung up (BYE) or the device ended the call.
        over = true
        deps.signal(viewerId, sessionId, { type: 'bye', sessionId, reason: 'device-ended' })
      }
      void pc?.close().catch(() => {})
    }
  })
}

/** Moved to core (the browser camera node answers the same way); kept here for existing imports. */
export { asDtlsServer }

/** The id of a command that failed validation, if one can be read, so the nack can name it. */
function idOf (data: string | Buffer): string | null {
  try {
    const id = (JSON.parse(data.toString()) as { id?: unknown }).id
    return typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : null
  } catch {
    return null
  }
}
