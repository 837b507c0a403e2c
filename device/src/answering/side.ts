import type { InspectionEvent } from 'xstate'
import { DoorGuard, type SignatureCheck, type CommandResult, type DirectReach, type LockState, type Logger, type SnapshotEvent, type TransportPath } from '@doorbell/core'
import { startAnswering, type Answering } from '@doorbell/machines'
import { HubOutbox, MqttLink, heldTransport } from '../paths/lan'
import { answeringSession, type MediaPeers } from './session'
import { noSpeaker, type TalkFloor } from './talk'
import type { Door } from './door'
import { outOfCallCommands, type CommandKinds } from './commands'

/** What the answering side needs of the pairing record (the doorbell's or a camera node's). */
export interface AnsweringPairing {
  homeId: string
  memberId: string
  token: string
  homeKey: string
  zone?: string | undefined
  /** The home CA for a TLS hub (Node); null in a browser, or for a development hub. */
  ca?: string | null
}

export interface AnsweringSideOptions {
  pairing: AnsweringPairing
  deviceId: string
  deviceName: string
  ringTimeoutMs: number
  maxCallMs: number
  maxViewers: number
  /** The owner's setting: live preview in the ring banner (default true; false: the snapshot only); a function is read at each new ring. */
  livePreview?: boolean | (() => boolean)
  /** The platform's peer connections and media. */
  peers: MediaPeers
  /** Who may be heard on the speaker: the doorbell's talk lease (checked by this side's guard); default: no speaker (a camera node). */
  talk?: (guard: DoorGuard) => TalkFloor
  /** The doorbell's lock (its commands checked by this side's guard), or a camera node's "no door". */
  door: (guard: DoorGuard) => Door
  /**
   * More kinds of command outside a call (docs/commands.md), beside the door's own (`unlock`),
   * each checked by this side's guard: e.g. the quick replies' `reply`.
   */
  commands?: (guard: DoorGuard) => CommandKinds
  /** How the guard checks signatures (the doorbell: Node's synchronous check, peer/nativeEd25519.ts); default: WebCrypto's. */
  checkSignature?: SignatureCheck
  /** The door's state for the published state; null: no door. */
  lock: () => LockState | null
  log: Logger
  inspect?: (event: InspectionEvent) => void
  /** Keeps a revocation list that changed (the doorbell writes it to disk, to hold across restarts). */
  keepRevocations?: (token: string) => void
  /** Keeps a list of replaced grants that changed (core/src/grants.ts), likewise. */
  keepReissues?: (token: string) => void
  /** The owner's signed per-doorbell stock KVS settings, as the hub sent them (the doorbell checks and keeps its own). */
  stockSettings?: (tokens: string[]) => void
}

export interface HubLinkOptions {
  log: Logger
  /** The device's direct addresses, told to viewers in its presence while the hub is up. */
  direct?: () => DirectReach | undefined
}

/** The answering side of a device, with its guard, its revocation list and its link to the hub. */
export interface AnsweringSide {
  answering: Answering
  /** Checks every viewer's credential and every open-door command. */
  guard: DoorGuard
  /** The link to the hub; null before `connectHub` (a doorbell finds its hub by mDNS). */
  readonly link: MqttLink | null
  /**
   * Takes a signed revocation list (from the hub, or the one kept on disk): a list the guard
   * refuses is logged and ignored; a newer one is kept and ends the calls of removed members.
   * Resolves whether it changed anything.
   */
  takeRevocations: (token: string, from: string) => Promise<boolean>
  /** Takes the home's signed list of replaced grants (from the hub, or kept on disk), as for revocations. */
  takeReissues: (token: string, from: string) => Promise<boolean>
  /** Connects to the hub at `url`, replacing (and stopping) the link to the previous address. */
  connectHub: (url: string, o: HubLinkOptions) => MqttLink | null
  /** Stops the link to the hub (the device goes offline there). */
  disconnectHub: () => Promise<void>
  /** The visitor's picture to the hub: on the link, or held with the ring until a hub is found. */
  publishSnapshot: (snapshot: SnapshotEvent) => void
  /**
   * A command outside a call that came another way than the hub's MQTT (the direct path's command
   * protocol, the cloud path's KVS channel): the same kinds and checks, audited with its path.
   */
  takeCommand: (path: TransportPath, viewerId: string, payload: string | Uint8Array) => Promise<CommandResult>
  /** Stops the answering side and the hub link. */
  stop: () => Promise<void>
}

/**
 * The answering side of every device, written once: the doorbell (werift, ffmpeg, its lock) and
 * the browser camera node (RTCPeerConnection, getUserMedia, no door) plug in their media and
 * their door. It holds the home's guard (the pinned home key and this device's zone), the
 * shared call machine (admission, sessions, routing, state: `startAnswering`), the revocation
 * list and the link to the hub. Platform-free: no Node and no DOM imports.
 */
export function startAnsweringSide (o: AnsweringSideOptions): AnsweringSide {
  const { pairing, log } = o
  const guard = new DoorGuard({ homeId: pairing.homeId, deviceId: o.deviceId, homeKey: pairing.homeKey, ...(pairing.zone ? { zone: pairing.zone } : {}), ...(o.checkSignature ? { checkSignature: o.checkSignature } : {}) })
  const floor = o.talk ? o.talk(guard) : noSpeaker()
  const door = o.door(guard)
  // Commands outside a call (the hub's MQTT, or straight to the device on the direct and cloud
  // paths): the door's own command kinds, checked by the same guard whichever path brought them.
  const kinds: CommandKinds = { ...door.commands, ...floor.commands, ...o.commands?.(guard) }
  const byPath = Object.fromEntries((['lan', 'direct', 'cloud'] as const).map((path) => [path, outOfCallCommands({ kinds, path, log: log.child('commands') })])) as Record<TransportPath, ReturnType<typeof outOfCallCommands>>
  const commands = byPath.lan
  const answering = startAnswering({
    deviceId: o.deviceId,
    deviceName: o.deviceName,
    ringTimeoutMs: o.ringTimeoutMs,
    maxCallMs: o.maxCallMs,
    maxViewers: o.maxViewers,
    ...(o.livePreview !== undefined ? { livePreview: o.livePreview } : {}),
    guard,
    lock: o.lock,
    log,
    ...(o.inspect ? { inspect: o.inspect } : {}),
    session: answeringSession({ peers: o.peers, door, log, talk: floor })
  })

  const takeRevocations = async (token: string, from: string): Promise<boolean> => {
    const r = await guard.takeRevocations(token)
    if (!r.ok) { log.warn('ignored a revocation list', { from, error: r.message }); return false }
    if (r.changed) {
      try { o.keepRevocations?.(token) } catch (err) { log.error('could not keep the revocation list', { error: (err as Error).message }) }
      answering.endRevokedSessions()
    }
    return r.changed
  }

  const takeReissues = async (token: string, from: string): Promise<boolean> => {
    const r = await guard.takeReissues(token)
    if (!r.ok) { log.warn('ignored a list of replaced grants', { from, error: r.message }); return false }
    if (r.changed) {
      try { o.keepReissues?.(token) } catch (err) { log.error('could not keep the list of replaced grants', { error: (err as Error).message }) }
    }
    return r.changed
  }

  let link: MqttLink | null = null
  // Rings, pictures and call records wait here until a hub link is up: before mDNS has found the
  // hub (the held transport stands in for the link), and across a move to a hub at a new address.
  const outbox = new HubOutbox(log)
  const held = heldTransport(outbox, pairing.homeId, o.deviceId)
  answering.attach(held)
  return {
    answering,
    guard,
    get link () { return link },
    takeRevocations,
    takeReissues,
    connectHub (url, l) {
      // Paired over TLS: the token never goes out in clear, whatever a hub on the LAN advertises.
      if (pairing.ca && !/^(mqtts|wss):\/\//.test(url)) {
        log.error('refused a hub address without TLS: this device was paired with a TLS hub', { url })
        return null
      }
      const previous = link
      const current = new MqttLink({
        url,
        homeId: pairing.homeId,
        deviceId: o.deviceId,
        deviceName: o.deviceName,
        log: l.log,
        ...(l.direct ? { direct: l.direct } : {}),
        auth: { memberId: pairing.memberId, token: pairing.token, ca: pairing.ca ?? null },
        outbox
      })
      link = current
      answering.detach(held)
      current.onRevocations((token, stockSettings) => {
        takeRevocations(token, 'hub').catch((err: Error) => { log.error('could not take the revocation list', { error: err.message }) })
        if (stockSettings.length > 0) o.stockSettings?.(stockSettings)
      })
      current.onGrants((token) => {
        takeReissues(token, 'hub').catch((err: Error) => { log.error('could not take the list of replaced grants', { error: err.message }) })
      })
      current.onCommand((viewerId, payload) => {
        commands.take(viewerId, payload).then(
          (result) => { current.publishCommandResult(viewerId, result) },
          (err: Error) => { log.error('a command failed', { error: err.message }) }
        )
      })
      if (previous) {
        answering.detach(previous)
        void previous.stop()
      }
      answering.attach(current)
      return current
    },
    async takeCommand (path, viewerId, payload) { return await byPath[path].take(viewerId, payload) },
    publishSnapshot (snapshot) { (link ?? held).publishSnapshot?.(snapshot) },
    async disconnectHub () {
      const current = link
      link = null
      if (!current) return
      answering.detach(current)
      await current.stop()
    },
    async stop () {
      answering.stop()
      floor.stop()
      await this.disconnectHub()
    }
  }
}
