import { createActor, fromCallback, type Actor, type InspectionEvent } from 'xstate'
import { CredentialResponse, Grant, InspectionBatcher, NO_CALL_SESSION, ReissueList, isGrantReplaced, newId, peek, signReplyCommand, signTracesCommand, type CommandResult, type AwsCredentials, type InspectEvent, type CallRecord, type RingEvent, type Role, type SigningKey, type ViewerCloudConfig } from '@doorbell/core'
import { keptTraceFetcher, type KeptTraceFetcher } from './keptTraces'
import { inspectionRecorder, linkMachine, pathOf, viewerCallMachine, type LinkInput } from '@doorbell/machines'
import { HubClient, type HubClientOptions } from './paths/lan/hubClient'
import { callSession, type CallSessionOptions } from './callSession'
import type { DirectClient, DirectClientOptions } from './paths/direct/directClient'
import type { CloudClient, CloudClientOptions } from './paths/cloud/cloudClient'
import { Paths } from './paths/router'
import { AddressBook } from './paths/direct/addressBook'
import { lanPath } from './paths/lan/lanPath'
import { PeerSpare } from './peerSpare'
import { dismissWithoutHub, keptRingsWithoutHub, repliesWithoutHub, type DoorbellKeptRings, type WithoutHub } from './withoutHub'

/** Inspection events kept while the hub is away (the newest), and how long and how often they are told again once it is back. */
const HELD_INSPECTION = 2000
const RETELL_MS = 20_000
const RETELL_EVERY_MS = 2500

export type DoorbellActor = Actor<typeof viewerCallMachine>
/** One doorbell's kept rings as read on the direct path (history view, hub unreachable). */
/** The rings a doorbell keeps, read from it while the hub is down; `path`: the direct path, or the cloud path away from home. */
export type { DoorbellKeptRings } from './withoutHub'
export type LinkActor = Actor<typeof linkMachine>

/**
 * What a resident does to one doorbell, as events to its call machine (with fresh session and
 * command ids): a doorbell's card sends them to the actor it holds; `Home` by device id.
 */
export const callCommands = {
  answer (actor: DoorbellActor): void { actor.send({ type: 'ANSWER', sessionId: newId('s') }) },
  watch (actor: DoorbellActor): void { actor.send({ type: 'WATCH', sessionId: newId('s') }) },
  /** The resident started holding "Open door": its command is signed now; the machine keeps its id. */
  holdOpen (actor: DoorbellActor): void { actor.send({ type: 'HOLD_OPEN', commandId: newId('c') }) },
  /** The hold ended short: the command signed for it is dropped, never sent. */
  releaseOpen (actor: DoorbellActor): void { actor.send({ type: 'RELEASE_OPEN' }) },
  /** Opens the door: the held command if there is one (signed already), else a new one. Its id, to match its reply. */
  unlock (actor: DoorbellActor): string {
    const fresh = newId('c')
    actor.send({ type: 'UNLOCK', commandId: fresh })
    return actor.getSnapshot().context.pendingCommand ?? fresh
  },
  hangUp (actor: DoorbellActor): void { actor.send({ type: 'HANGUP' }) },
  dismiss (actor: DoorbellActor): void { actor.send({ type: 'DISMISS' }) }
}

/** What pairing gave this viewer: its member id and token (hub sign-in), its grant and its signing key. */
export interface ViewerTrust {
  memberId: string
  token: string
  /** The grant signed by the home. */
  credential: string
  /** Non-extractable in a browser: it signs open-door commands. */
  key: SigningKey
  role: Role
  name: string
}

export interface HomeOptions extends Omit<HubClientOptions, 'auth'> {
  trust: ViewerTrust
  createPeerConnection: CallSessionOptions['createPeerConnection']
  beforeGather?: CallSessionOptions['beforeGather']
  onTrack?: CallSessionOptions['onTrack']
  onClosed?: CallSessionOptions['onClosed']
  onAudioSender?: CallSessionOptions['onAudioSender']
  onTalkLink?: CallSessionOptions['onTalkLink']
  /**
   * Live preview: when a doorbell rings, connect at once and show the visitor live and muted in
   * the ring banner (video only; Answer opens audio on the same connection). Default false (the
   * Vue app turns it on; Node tests choose).
   */
  preview?: boolean
  /**
   * Keep one call's connection made and gathered before anyone rings (peerSpare.ts), so a preview
   * or an Answer sends its offer at once on the home network and the direct path. Default false
   * (the Vue app turns it on; Node tests choose).
   */
  spare?: boolean
  /** Sound, banner, Notification: the page's business. */
  alert?: (deviceId: string, ring: RingEvent | null) => void
  silence?: (deviceId: string) => void
  /**
   * The resident dismissed a ring while it rang (not the "OK" on an ended ring): the page tells the
   * hub (`POST /api/events/dismissed`), so the history says dismissed, by whom, rather than missed.
   */
  onDismissed?: (deviceId: string, ringId: string) => void
  /** Called when a doorbell is first heard of (its actor is created). */
  onDoorbell?: (deviceId: string, actor: DoorbellActor) => void
  /** Publish this viewer's machines for the inspector (the hub says whether). */
  inspect?: boolean
  /** Another inspector to feed as well (Stately's browser inspector, with `?stately`). */
  alsoInspect?: (event: InspectionEvent) => void
  /** Where the doorbells' direct addresses are kept between page loads (localStorage in a browser). */
  storage?: Pick<Storage, 'getItem' | 'setItem'>
  /** The libp2p node for the direct path (default: a webrtc-direct dialer). */
  createDialer?: DirectClientOptions['createNode']
  /** Timings of the link machine (tests shorten the hub's grace period). */
  linkTiming?: LinkInput
  /**
   * The cloud path's settings, read each time the link machine tries it (so settings saved later
   * count without a reload); null when this browser has none.
   */
  cloud?: () => { config: ViewerCloudConfig, credentials: AwsCredentials } | null
  /** Extra options for the cloud client (Node tests trust the stand-ins' CA this way). */
  cloudOptions?: Partial<CloudClientOptions>
  /**
   * This screen's grant signed now (`GET /api/credential`): asked on every connect to the hub and
   * when the hub's list of replaced grants names this member; absent: the grant never changes.
   */
  fetchCredential?: () => Promise<CredentialResponse>
  /** The owner changed this screen's rights and its new grant is in use: keep it (the page saves its pairing). */
  onCredential?: (credential: string) => void
}

/**
 * A viewer's view of its home: one viewer call machine per doorbell, fed by the hub.
 * Shared by the Vue app and the Node integration test.
 */
export class Home {
  readonly hub: HubClient
  /** Events from every path; signaling on the path the link machine has up. */
  readonly paths: Paths
  /** Where each doorbell can be reached with the hub down. */
  readonly book: AddressBook
  /** Which path carries this viewer: the LAN hub, else direct to the doorbells, else the cloud. */
  readonly link: LinkActor
  readonly doorbells = new Map<string, DoorbellActor>()
  readonly history: CallRecord[] = []
  private readonly historyListeners = new Set<() => void>()
  private readonly batcher: InspectionBatcher | null
  /** The connection made ahead of a call (`spare`), shared by every doorbell of this page. */
  readonly spare: PeerSpare | null
  /** This page's inspection (undefined when off): other machines of the page report through it too. */
  readonly inspect: ((event: InspectionEvent) => void) | undefined

  constructor (private readonly o: HomeOptions) {
    this.hub = new HubClient({ ...o, auth: { memberId: o.trust.memberId, token: o.trust.token } })
    this.spare = o.spare === true ? new PeerSpare({ createPeerConnection: o.createPeerConnection, ...(o.beforeGather ? { beforeGather: o.beforeGather } : {}) }) : null
    const source = { kind: 'viewer' as const, id: this.hub.clientId, name: o.viewerName }
    // Away from the hub (on the cloud path, say) what the machines did is kept (the newest
    // HELD_INSPECTION events) and told once the hub is back; then, for RETELL_MS, the actors and
    // states of that time are told again every few seconds (the inspector takes them once), so an
    // inspector that reconnects a moment after this page still shows the machines of the cloud path.
    const held: InspectEvent[] = []
    let retell: { events: InspectEvent[], until: number, last: number } | null = null
    const publish = (events: InspectEvent[]): void => {
      for (let i = 0; i < events.length; i += 200) this.hub.publishInspect({ source, events: events.slice(i, i + 200) })
    }
    this.batcher = o.inspect
      ? new InspectionBatcher((events) => {
        if (!this.hub.connected) { held.push(...events); held.splice(0, Math.max(0, held.length - HELD_INSPECTION)); return }
        const now = Date.now()
        if (held.length > 0) {
          publish(held)
          retell = { events: held.filter((e) => e.type !== 'event'), until: now + RETELL_MS, last: now }
          held.length = 0
        } else if (retell !== null && now > retell.until) {
          retell = null
        } else if (retell !== null && now - retell.last >= RETELL_EVERY_MS) {
          retell.last = now
          publish(retell.events)
        }
        publish(events)
      })
      : null
    const batcher = this.batcher
    const ours = batcher ? inspectionRecorder({ source: this.hub.clientId, now: Date.now, emit: (e) => { batcher.push(e) } }) : undefined
    const theirs = o.alsoInspect
    this.inspect = ours && theirs ? (e) => { ours(e); theirs(e) } : ours ?? theirs
    this.paths = new Paths(this.hub, () => pathOf(this.link.getSnapshot().value))
    this.book = new AddressBook(o.storage)
    const link = linkMachine.provide({ actors: { lan: lanPath(this.hub), direct: this.directPath(), cloud: this.cloudPath() } })
    this.link = createActor(link, { input: o.linkTiming ?? {}, id: 'link', systemId: 'link', ...(this.inspect ? { inspect: this.inspect } : {}) })
    this.link.start()
    // The direct path's code is fetched while the hub can still serve it.
    const warm = this.hub.on('link', (up) => {
      if (!up || o.createDialer) return
      warm()
      setTimeout(() => { import('./paths/direct/directClient').then(async (m) => { await m.preloadDirect() }).catch(() => {}) }, 1000)
    })
    // The owner changed this screen's rights: its old grant is void on the devices; fetch the new one.
    this.hub.on('link', (up) => { if (up) this.renewCredential('connected') })
    this.hub.onGrants((token) => {
      const list = peek(ReissueList, token)
      const mine = list.ok ? list.value.floors.find((f) => f.id === o.trust.memberId) : undefined
      const held = peek(Grant, o.trust.credential)
      if (mine !== undefined && held.ok && isGrantReplaced(held.value, mine.from)) this.renewCredential('named in the replaced grants')
    })
    this.paths.on('ring', (ring) => {
      // The first moment this screen knows of the ring (the preview bench's first hop ends here).
      performance.mark('doorbell:ring-received', { detail: { deviceId: ring.deviceId, ringId: ring.ringId } })
      this.doorbell(ring.deviceId).send({ type: 'RING', ring })
    })
    this.paths.on('state', (state) => { this.doorbell(state.deviceId).send({ type: 'DEVICE_STATE', state }) })
    // A doorbell that reports in gets its card even before it rings; its direct addresses are kept.
    // Its presence goes to its call machine: offline, its lock state is unknown.
    this.paths.on('presence', (p) => { this.book.learn(p); this.doorbell(p.deviceId).send({ type: 'PRESENCE', online: p.online, ...(p.deviceName !== undefined ? { deviceName: p.deviceName } : {}) }) })
    this.paths.on('call', (record) => {
      // The same record can come twice: over the direct path, then late from the hub's queue.
      if (this.history.some((r) => r.deviceId === record.deviceId && r.ringId === record.ringId && r.startedAt === record.startedAt)) return
      this.history.unshift(record)
      this.history.splice(50)
      for (const l of this.historyListeners) l()
    })
  }

  private renewing: Promise<boolean> | null = null

  /**
   * Fetches this screen's grant and uses it from now on if the one held was replaced (the owner
   * changed its rights): every command and offer reads the credential when it signs. Resolves
   * whether it changed. One fetch at a time.
   */
  async refreshCredential (): Promise<boolean> {
    const fetch = this.o.fetchCredential
    if (!fetch) return false
    this.renewing ??= (async () => {
      try {
        const r = CredentialResponse.parse(await fetch())
        const held = peek(Grant, this.o.trust.credential)
        if (!held.ok || !isGrantReplaced(held.value, r.grantsFrom)) return false
        const next = peek(Grant, r.credential)
        // Only the same member's grant, for this screen's key: never someone else's.
        if (!next.ok || next.value.id !== held.value.id || next.value.key !== held.value.key || next.value.sub !== held.value.sub) throw new Error('the hub sent a credential for another member or key')
        this.o.trust.credential = r.credential
        this.o.onCredential?.(r.credential)
        return true
      } finally {
        this.renewing = null
      }
    })()
    return await this.renewing
  }

  private renewCredential (why: string): void {
    this.refreshCredential().then(
      (changed) => { if (changed) this.o.log?.('info', `this screen's rights changed (${why}): using its new credential`) },
      (err: Error) => { this.o.log?.('warn', `could not fetch this screen's new credential: ${err.message}`) }
    )
  }

  /** The rings the doorbells keep, read while the hub is down (withoutHub.ts); null: neither path is up. */
  async keptRings (): Promise<DoorbellKeptRings[] | null> { return await keptRingsWithoutHub(this.withoutHub) }

  /** Tells a doorbell this screen dismissed its ring while the hub is down (withoutHub.ts). */
  async dismissWithoutHub (deviceId: string, ringId: string): Promise<'ringing' | 'dismissed'> { return await dismissWithoutHub(this.withoutHub, deviceId, ringId) }

  /** The quick replies a doorbell plays now, read from it while the hub is down (withoutHub.ts). */
  async repliesWithoutHub (deviceId: string): Promise<string[]> { return await repliesWithoutHub(this.withoutHub, deviceId) }

  private get withoutHub (): WithoutHub {
    return { direct: () => this.direct, cloud: () => this.cloud, homeId: this.o.homeId, viewerId: this.o.viewerId, trust: this.o.trust, deviceName: (id) => this.doorbells.get(id)?.getSnapshot().context.deviceName ?? id }
  }

  private direct: DirectClient | null = null
  private cloud: CloudClient | null = null

  /**
   * The link machine's direct path: lives while the machine is in `direct`, dials every doorbell in
   * the address book, and closes its connections when the hub is back.
   */
  private directPath () {
    return fromCallback(({ sendBack }) => {
      let client: DirectClient | null = null
      let stopped = false
      const trust = this.o.trust
      // libp2p is loaded on first use: a page on a working hub never downloads it.
      import('./paths/direct/directClient').then(({ DirectClient }) => {
        if (stopped) return
        client = new DirectClient({
          homeId: this.o.homeId,
          viewerId: this.o.viewerId,
          viewerName: this.o.viewerName,
          // Read at each hello: a grant replaced meanwhile is the new one.
          get credential () { return trust.credential },
          key: this.o.trust.key,
          devices: () => this.book.list(),
          ...(this.o.createDialer ? { createNode: this.o.createDialer } : {}),
          ...(this.o.log ? { log: this.o.log } : {})
        })
        client.on('link', (up) => { sendBack({ type: up ? 'DIRECT_UP' : 'DIRECT_DOWN' }) })
        this.paths.attach(client)
        this.direct = client
        return client.start()
      }).catch((err: Error) => {
        this.o.log?.('warn', `direct path: ${err.message}`)
        sendBack({ type: 'DIRECT_FAILED', message: err.message })
      })
      return () => {
        stopped = true
        if (client) this.paths.detach(client)
        if (this.direct === client) this.direct = null
        void client?.close()
      }
    })
  }

  /**
   * The link machine's cloud path: lives while the machine is in `cloud`, listens to AWS IoT Core
   * and signals over KVS with this browser's own AWS credentials; closed when the hub is back.
   */
  private cloudPath () {
    return fromCallback(({ sendBack }) => {
      let client: CloudClient | null = null
      let stopped = false
      const settings = this.o.cloud?.() ?? null
      if (!settings) {
        sendBack({ type: 'CLOUD_FAILED', message: 'away from home needs the cloud path: enter your AWS credentials in Settings' })
        return () => {}
      }
      // The AWS and KVS SDKs are loaded on first use: a page at home never downloads them.
      import('./paths/cloud/cloudClient').then(({ CloudClient }) => {
        if (stopped) return
        client = new CloudClient({
          ...this.o.cloudOptions,
          config: settings.config,
          credentials: settings.credentials,
          viewerId: this.o.viewerId,
          ...(this.o.log ? { log: this.o.log } : {}),
          ...(this.inspect ? { inspect: this.inspect } : {})
        })
        // Settings that fail their schemas: say so now rather than wait for the connect timeout.
        if (client.problem) { sendBack({ type: 'CLOUD_FAILED', message: client.problem }); return }
        client.on('link', (up) => { sendBack({ type: up ? 'CLOUD_UP' : 'CLOUD_DOWN' }) })
        this.paths.attach(client)
        this.cloud = client
      }).catch((err: Error) => {
        this.o.log?.('warn', `cloud path: ${err.message}`)
        sendBack({ type: 'CLOUD_FAILED', message: err.message })
      })
      return () => {
        stopped = true
        if (client) this.paths.detach(client)
        if (this.cloud === client) this.cloud = null
        void client?.close()
      }
    })
  }

  onHistory (listener: () => void): () => void {
    this.historyListeners.add(listener)
    return () => { this.historyListeners.delete(listener) }
  }

  /** The call machine of one doorbell, created when the doorbell is first heard of. */
  doorbell (deviceId: string): DoorbellActor {
    let actor = this.doorbells.get(deviceId)
    if (actor) return actor
    const machine = viewerCallMachine.provide({
      actors: {
        call: callSession({
          signaling: this.paths,
          viewerId: this.o.viewerId,
          viewerName: this.o.viewerName,
          homeId: this.o.homeId,
          // The same object: a grant replaced later is read by each command when it signs.
          trust: this.o.trust,
          createPeerConnection: this.o.createPeerConnection,
          ...(this.spare ? { spare: this.spare } : {}),
          ...(this.o.beforeGather ? { beforeGather: this.o.beforeGather } : {}),
          ...(this.o.onTrack ? { onTrack: this.o.onTrack } : {}),
          ...(this.o.onClosed ? { onClosed: this.o.onClosed } : {}),
          ...(this.o.onAudioSender ? { onAudioSender: this.o.onAudioSender } : {}),
          ...(this.o.onTalkLink ? { onTalkLink: this.o.onTalkLink } : {})
        })
      },
      actions: {
        alert: (_, { ring }) => { this.o.alert?.(deviceId, ring) },
        silence: () => { this.o.silence?.(deviceId) }
      }
    })
    actor = createActor(machine, { input: { deviceId, preview: this.o.preview === true }, id: `viewerCall:${deviceId}`, systemId: `viewerCall:${deviceId}`, ...(this.inspect ? { inspect: this.inspect } : {}) })
    const a = actor
    // It rings: ask for the preview at once, with a fresh session id (the machine takes it once per ring).
    if (this.o.preview === true) {
      actor.subscribe((s) => {
        const ring = s.context.ring
        if (!s.matches({ incoming: 'snapshot' }) || ring === null || ring.livePreview === false || s.context.previewedRingId === ring.ringId) return
        a.send({ type: 'PREVIEW', sessionId: newId('s') })
      })
    }
    if (this.o.onDismissed) {
      const onDismissed = this.o.onDismissed
      let ringing: string | null = null
      actor.subscribe((s) => {
        const was = ringing
        ringing = s.matches('incoming') ? s.context.ring?.ringId ?? null : null
        if (was !== null && ringing === null && s.context.dismissedRingId === was) onDismissed(deviceId, was)
      })
    }
    actor.start()
    this.doorbells.set(deviceId, actor)
    this.o.onDoorbell?.(deviceId, actor)
    return actor
  }

  answer (deviceId: string): void { callCommands.answer(this.doorbell(deviceId)) }
  watch (deviceId: string): void { callCommands.watch(this.doorbell(deviceId)) }
  unlock (deviceId: string): string { return callCommands.unlock(this.doorbell(deviceId)) }
  hangUp (deviceId: string): void { callCommands.hangUp(this.doorbell(deviceId)) }
  dismiss (deviceId: string): void { callCommands.dismiss(this.doorbell(deviceId)) }

  /**
   * Plays one of the owner's quick replies on a doorbell without answering (from the ring
   * banner): a reply command signed for no call, on the path in use (docs/commands.md): the hub's
   * MQTT, straight to the doorbell on the direct path, or its KVS channel on the cloud path. A refusal is a result; no answer in
   * time rejects with CommandTimeoutError.
   */
  async replyOutsideCall (deviceId: string, reply: string): Promise<CommandResult> {
    const command = await signReplyCommand({ credential: this.o.trust.credential, key: this.o.trust.key, home: this.o.homeId, device: deviceId, session: NO_CALL_SESSION, command: newId('c'), reply })
    if (this.paths.path === 'direct' && this.direct) return await this.direct.sendCommand(deviceId, command)
    if (this.paths.path === 'cloud' && this.cloud) return await this.cloud.sendCommand(deviceId, command)
    return await this.hub.sendCommand(deviceId, command)
  }

  /** The kept call traces of a doorbell, for the owner (docs/inspector.md): commands signed for no call, over the hub's MQTT. */
  keptTraces (deviceId: string): KeptTraceFetcher {
    return keptTraceFetcher({
      sign: async (a) => await signTracesCommand({ credential: this.o.trust.credential, key: this.o.trust.key, home: this.o.homeId, device: deviceId, session: NO_CALL_SESSION, command: newId('c'), ...a }),
      send: async (command) => await this.hub.sendCommand(deviceId, command)
    })
  }

  async close (): Promise<void> {
    for (const actor of this.doorbells.values()) actor.stop()
    this.spare?.close()
    this.link.stop()
    this.batcher?.stop()
    await this.hub.close()
  }
}
