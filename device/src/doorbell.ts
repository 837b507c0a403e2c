import type { Actor } from 'xstate'
import {
  ConfigError, DeviceConfig, InspectionBatcher, consoleLogger, describeError, encode, iceSettingsFor, newId, parseConfig, startInOrder, topics,
  type DeviceConfigInput, type DeviceState, type DoorGuard, type Logger, type Startable
} from '@doorbell/core'
import { inspectionRecorder, type deviceCallMachine } from '@doorbell/machines'
import { join } from 'node:path'
import { readFileSync, writeFileSync } from 'node:fs'
import { Camera } from './camera/camera'
import type { RingSnapshots } from './camera/snapshotRing'
import type { RingClips } from './camera/clip'
import { ringCameraModule } from './camera/module'
import { startAudio, type DoorbellAudio } from './audio/module'
import { quickRepliesModule } from './audio/repliesModule'
import { createDrivers, type Drivers } from './drivers'
import { LockControl } from './lock/lockControl'
import { weriftPeers } from './peer/session'
import { warmKeyExchange } from './peer/warmKeyExchange'
import { nativeX25519ForDtls } from './peer/nativeX25519'
import { nativeEd25519Check } from './peer/nativeEd25519'
import { startMesh, type Mesh } from './paths/direct/mesh'
import { hubDownRequests } from './paths/hubDown'
import { MqttLink } from './paths/lan'
import { lockDoor, startAnsweringSide, talkLease, type AnsweringSide, type MediaPeers } from './answering'
import { loadPairing, pairDevice, savePairing, PairingError, type DevicePairing } from './trust/pairing'
import { AuditOutbox } from './trust/auditOutbox'
import { CloudLink } from './paths/cloud/cloudLink'
import { OwnerStockSetting } from './paths/cloud/stockSetting'
import { systemdNotify } from './sdNotify'
import { TraceKeeper } from './traces/keeper'
import { traceCommands } from './traces/commands'

export interface DeviceOptions {
  log?: Logger
  /** Hardware to use instead of what config names (tests pass simulated parts they hold). */
  drivers?: Drivers
  /** Where the simulated relay prints DOOR UNLOCKED / DOOR LOCKED. */
  print?: (line: string) => void
  /**
   * A started camera to share instead of the one config names (many camera nodes fed by one
   * encoder, as the operator console's load test does). The doorbell does not stop it.
   */
  camera?: Camera
  /** Aborting it gives up a start under way (what started is stopped). */
  signal?: AbortSignal
}

export interface Doorbell {
  config: DeviceConfig
  call: Actor<typeof deviceCallMachine>
  lock: LockControl
  camera: Camera
  /** The microphone sent to every connected session and the speaker viewers are heard on. */
  audio: DoorbellAudio
  /** The connection to the hub: null until the hub is found (mDNS) when no hubUrl is configured. */
  readonly link: MqttLink | null
  /** Resolves once the device is connected to a hub. */
  hubConnected: (signal?: AbortSignal) => Promise<void>
  /** The LAN mesh (libp2p), unless mesh.enabled is off. */
  mesh: Mesh | null
  /** AWS IoT Core and KVS signaling, when the config has a cloud section. */
  cloud: CloudLink | null
  /** The home this doorbell is paired with. */
  pairing: DevicePairing
  /** Checks every viewer's credential and every open-door command. */
  guard: DoorGuard
  /** Open-door attempts not yet acknowledged by the hub. */
  audit: AuditOutbox
  drivers: Drivers
  /** The modules that started, in order. */
  modules: readonly string[]
  /** What a press of the button does. */
  ring: () => void
  /** The ring's pictures (the press's and the one a few seconds later). */
  snapshots: RingSnapshots
  /** The ring's clip, when the owner turned it on (docs/history.md). */
  clips: RingClips
  /** The last calls' traces, kept for the owner; null unless config.keepTraces is set. */
  traces: TraceKeeper | null
  state: () => DeviceState
  stop: () => Promise<void>
}

/**
 * The doorbell's composition root: an ordered list of modules, each started after the one
 * before it and stopped in reverse; when one cannot start, the ones before it are stopped and
 * nothing is left running (the relay is left locked). A ring's whole path is this list: the
 * button rings the answering side, which announces it on every path; a viewer's offer comes
 * back on one of them, is admitted there, and its session sends the camera's video and takes
 * the door commands that move the lock.
 */
export async function startDoorbell (input: DeviceConfigInput, options: DeviceOptions = {}): Promise<Doorbell> {
  const config = parseConfig(DeviceConfig, input, 'device config')
  const log = options.log ?? consoleLogger('device')
  const drivers = options.drivers ?? createDrivers(config.gpio, options.print)

  // Each module fills in its part when it starts; the ones after it use it.
  let lock = null as LockControl | null
  let pairing = null as DevicePairing | null
  let audit = null as AuditOutbox | null
  let camera = null as Camera | null
  let audio = null as DoorbellAudio | null
  let side = null as AnsweringSide | null
  let mesh = null as Mesh | null
  let cloud = null as CloudLink | null
  /** The owner's signed "accept unsigned OPEN_DOOR from KVS viewers" (default: the cloud config's). */
  let ownerStock = null as OwnerStockSetting | null
  /** The doorbell's media per viewer: our sessions' and stock KVS viewers'. */
  let peers = null as MediaPeers | null
  let stopHubDown = null as (() => Promise<void>) | null
  const started = <T>(part: T | null, name: string): T => {
    if (part === null) throw new Error(`the ${name} has not started`)
    return part
  }
  const hubWaiters = new Set<() => void>()
  const quickReplies = quickRepliesModule({ audio: config.audio, dataDir: config.dataDir, speaker: () => started(audio, 'audio').speaker, log: log.child('replies') })

  // Inspection: off by default, and then no inspector is attached at all.
  const batcher = config.inspect
    ? new InspectionBatcher((events) => {
      side?.link?.publishInspect({ source: { kind: 'device', id: config.deviceId, name: config.deviceName }, events })
    })
    : null
  // Keeping the last calls' traces: off by default too (docs/inspector.md); then nothing is recorded.
  const traces = config.keepTraces
    ? new TraceKeeper({ dir: join(config.dataDir, 'traces'), source: { kind: 'device', id: config.deviceId, name: config.deviceName }, ...config.keepTraces, log: log.child('traces') })
    : null
  const inspect = batcher ?? traces
    ? inspectionRecorder({ source: config.deviceId, now: Date.now, emit: (e) => { batcher?.push(e); traces?.push(e) } })
    : undefined

  let linkClosed = false
  const connectHub = (url: string): void => {
    if (linkClosed) return
    const answering = started(side, 'answering side')
    const link = answering.connectHub(url, { log: log.child('mqtt'), direct: () => mesh?.direct() })
    // The owner's quick replies, retained on the hub: checked by the guard, then rendered.
    link?.onReplies((signed) => { void quickReplies.take(signed, 'hub', answering.guard) })
    link?.client.on('connect', () => {
      audit?.flush()
      ringCamera.keep?.handOver()
      for (const w of hubWaiters) w()
    })
  }
  const ring = (): void => {
    if (!side) return
    side.answering.ring(newId('r'))
    // The ring has gone out; its pictures follow (a press while ringing keeps the ring's id).
    const ringId = side.answering.state().call.ringId
    if (ringId) ringCamera.afterRing(ringId)
  }

  const ringCamera = ringCameraModule({
    config,
    homeId: () => started(pairing, 'pairing').homeId,
    camera: () => started(camera, 'camera'),
    side: () => started(side, 'answering side'),
    clipOn: () => ownerStock?.clip === true,
    log
  })
  // What a screen may ask the doorbell itself while the hub is down, on the direct and cloud paths: one handler each.
  const hubDown = hubDownRequests({ pairing: () => started(pairing, 'pairing'), guard: () => started(side, 'answering side').guard, keep: () => ringCamera.keep, replies: quickReplies, perScreen: config.commandsPerScreen, log })

  const modules: Startable[] = [
    {
      // First: the relay is driven locked before anything else can ask for it (fail-secure).
      name: 'lock',
      async start () {
        lock = new LockControl(drivers.lock, config.relockSeconds * 1000, log.child('lock'), inspect)
        lock.start()
      },
      async stop () {
        lock?.stop()
        await drivers.lock.stop().catch((err: Error) => log.error('could not lock the door on stop', { error: err.message }))
      }
    },
    {
      name: 'pairing',
      async start () { pairing = await pairedHome(config, log) },
      async stop () {}
    },
    {
      // Every open-door attempt is on disk before anything else, and reaches the hub when it can.
      name: 'audit outbox',
      async start () {
        const outbox = audit = new AuditOutbox(join(config.dataDir, 'audit-outbox.jsonl'), log.child('audit'))
        outbox.setSender(async (attempt) => {
          const link = side?.link
          if (!link) throw new Error('no hub yet')
          await link.publishAudit(attempt)
        })
      },
      async stop () { audit?.stop() }
    },
    {
      name: 'camera',
      async start () {
        camera = options.camera ?? new Camera(config.camera, log.child('camera'))
        if (!options.camera) await camera.start()
      },
      async stop () { if (!options.camera) await camera?.stop() }
    },
    // The microphone and the speaker (docs/audio.md); a sound device that is not there stops the start, naming it.
    startAudio(config, log.child('audio'), (started) => { audio = started }),
    // Quick replies rendered by espeak-ng (docs/audio.md); without it a warning, and replies are off.
    quickReplies,
    {
      // Admission, sessions, door commands and revocations: the same code as a browser camera node's.
      name: 'answering side',
      async start () {
        const door = started(lock, 'lock')
        const outbox = started(audit, 'audit outbox')
        const revocationsFile = join(config.dataDir, 'revocations.txt')
        const reissuesFile = join(config.dataDir, 'replaced-grants.txt')
        const stockSettingFile = join(config.dataDir, 'stock-setting.txt')
        let keptStock = null as string | null
        try { keptStock = readFileSync(stockSettingFile, 'utf8').trim() || null } catch {}
        const paired = started(pairing, 'pairing')
        const owner = ownerStock = await OwnerStockSetting.start({
          homeId: paired.homeId,
          deviceId: config.deviceId,
          homeKey: paired.homeKey,
          configDefault: config.cloud?.acceptUnsignedOpenDoor ?? false,
          kept: keptStock,
          keep: (token) => { writeFileSync(stockSettingFile, token, { mode: 0o600 }) },
          log: log.child('stock-setting')
        })
        // Before the first call: the first P-256 DTLS handshake would otherwise build noble's table (peer/warmKeyExchange.ts).
        const warm = warmKeyExchange()
        if (warm.ok) log.info('DTLS key exchange ready', { ms: Math.round(warm.ms) })
        else log.warn('DTLS key exchange not warmed: the first call from an OpenSSL-based viewer may connect ~1 s late', { reason: warm.reason })
        // Chromium's X25519 by OpenSSL, not tweetnacl's JavaScript, in every handshake (peer/nativeX25519.ts).
        const native = nativeX25519ForDtls()
        if (!native.ok) log.warn('DTLS X25519 stays in JavaScript: each call from a browser connects a few ms later', { reason: native.reason })
        peers = weriftPeers({
          camera: started(camera, 'camera'),
          microphone: started(audio, 'audio').microphone,
          speaker: started(audio, 'audio').speaker,
          // The doorbell's own ICE settings (TURN REST credentials minted per call), plus the cloud's TURN for a call that came that way.
          ice: async (path) => {
            const own = await iceSettingsFor(config, config.deviceId, Date.now())
            const viaCloud = path === 'cloud' && cloud ? cloud.iceServers() : []
            return { iceServers: [...own.iceServers, ...viaCloud], iceTransportPolicy: own.iceTransportPolicy }
          },
          iceAdditionalHostAddresses: config.iceAdditionalHostAddresses,
          keepEarlyDtls: config.keepEarlyDtls
        })
        side = startAnsweringSide({
          pairing: started(pairing, 'pairing'),
          deviceId: config.deviceId,
          deviceName: config.deviceName,
          ringTimeoutMs: config.ringTimeoutSeconds * 1000,
          maxCallMs: config.maxCallSeconds * 1000,
          maxViewers: config.maxViewers,
          // The owner's signed setting from Home settings, else the config's; read at each new ring.
          livePreview: () => owner.livePreview ?? config.livePreview,
          lock: () => door.state(),
          log,
          ...(inspect ? { inspect } : {}),
          keepRevocations: (token) => { writeFileSync(revocationsFile, token, { mode: 0o600 }) },
          keepReissues: (token) => { writeFileSync(reissuesFile, token, { mode: 0o600 }) },
          stockSettings: (tokens) => { owner.take(tokens, 'hub').catch((err: unknown) => { log.error('could not take the owner stock setting', { error: describeError(err) }) }) },
          peers,
          door: (guard) => lockDoor({ lock: door, guard, audit: (attempt) => { outbox.add(attempt) }, deviceId: config.deviceId }),
          // Signatures checked on the loop, not through the thread pool: one wait fewer for "Door open".
          ...(config.signatureCheck === 'webcrypto' ? {} : { checkSignature: nativeEd25519Check }),
          // The owner fetches the kept call traces from Home settings (docs/inspector.md).
          commands: (guard) => traceCommands({ guard, keeper: traces, audit: (attempt) => { outbox.add(attempt) }, deviceId: config.deviceId }),
          // The talk lease, where there is a speaker to talk on; without one, asking to talk is refused with no-speaker.
          ...(started(audio, 'audio').speaker.enabled
            ? { talk: (guard: DoorGuard) => talkLease({ guard, audit: (attempt) => { outbox.add(attempt) }, deviceId: config.deviceId, log: log.child('talk'), maxMs: (config.audio.talkMaxSeconds ?? 60) * 1000, ...(quickReplies.replies ? { replies: quickReplies.replies } : {}), ...(inspect ? { inspect } : {}) }) }
            : {})
        })
        // The newest revocation list this doorbell has seen, kept across restarts.
        let kept = null as string | null
        try { kept = readFileSync(revocationsFile, 'utf8').trim() } catch {}
        // A list that cannot be read costs nothing but itself: the hub sends the current one.
        if (kept) await side.takeRevocations(kept, revocationsFile).catch((err: unknown) => { log.error('could not take the kept revocation list', { error: describeError(err) }) })
        // And the newest list of replaced grants (a member's rights changed): its old grants stay void across a restart on any path.
        let keptReissues = null as string | null
        try { keptReissues = readFileSync(reissuesFile, 'utf8').trim() } catch {}
        if (keptReissues) await side.takeReissues(keptReissues, reissuesFile).catch((err: unknown) => { log.error('could not take the kept list of replaced grants', { error: describeError(err) }) })
        // The last quick replies this doorbell took (rendered in the background: the cache makes it quick after the first time).
        void quickReplies.takeKept(side.guard)
        door.subscribe(side.answering.publishState)
      },
      async stop () { side?.answering.stop() }
    },
    // The visitor's pictures, the ring's clip and the doorbell's own copy of its rings (docs/history.md).
    ringCamera,
    {
      // Before the hub link: the link tells the hub (and so the viewers) the mesh's direct addresses.
      name: 'mesh',
      async start () {
        if (!config.mesh.enabled) return
        const answering = started(side, 'answering side')
        mesh = await startMesh(config, {
          homeId: started(pairing, 'pairing').homeId,
          admit: async (credential, viewerId, possession) => await answering.guard.admit(credential, viewerId, possession),
          log: log.child('mesh'),
          hasHub: () => answering.link?.client.connected === true,
          onHub: (hub) => {
            // The same URL: the client is already retrying it. (A new address gets a new link; the held events move with it.)
            if (answering.link?.url === hub.mqttUrl) return
            log.info('found the hub', { hub: hub.hubName, mqtt: hub.mqttUrl })
            connectHub(hub.mqttUrl)
          }
        })
        answering.answering.attach(mesh.server)
        // While the hub is down, a screen reads the rings this doorbell keeps, dismisses one, sends a quick reply, reads the replies.
        stopHubDown = await hubDown.serveDirect(mesh.node, async (viewerId, payload) => await answering.takeCommand('direct', viewerId, payload))
      },
      async stop () {
        await stopHubDown?.()
        if (!mesh) return
        side?.answering.detach(mesh.server)
        await mesh.stop()
      }
    },
    {
      // The home network: the hub at hubUrl, or the one the mesh finds by mDNS.
      name: 'home-network link',
      async start () { if (config.hubUrl) connectHub(config.hubUrl) },
      async stop () {
        // The mesh stops after this: a hub it finds meanwhile must not open a new link.
        linkClosed = true
        await side?.disconnectHub()
      }
    },
    {
      name: 'cloud',
      async start () {
        if (!config.cloud) return
        const outbox = started(audit, 'audit outbox')
        const away = new CloudLink(config.cloud, {
          deviceId: config.deviceId,
          log: log.child('cloud'),
          ...(inspect ? { inspect } : {}),
          // Stock KVS viewers (AWS's test page, the seed's viewer): the same media, the same lock, the same audit outbox.
          stock: {
            peers: started(peers, 'answering side'),
            lock: started(lock, 'lock'),
            audit: (attempt) => { outbox.add(attempt) },
            acceptUnsignedOpenDoor: () => ownerStock?.acceptUnsignedOpenDoor ?? config.cloud?.acceptUnsignedOpenDoor ?? false
          },
          // A quick reply from a ring banner away from home: the same commands as from the hub (docs/commands.md).
          commands: async (viewerId, payload) => await started(side, 'answering side').takeCommand('cloud', viewerId, payload),
          // …and what a screen may ask with the hub down, checked as on the direct path (paths/hubDown.ts).
          ...hubDown.cloud
        })
        try {
          // Does not wait for AWS: a doorbell on a LAN without internet starts all the same.
          await away.start()
          cloud = away
          started(side, 'answering side').answering.attach(away)
        } catch (err) {
          // A broken cloud section (its certificate unreadable) costs the cloud path, not the door.
          log.error('the cloud path is off: its config cannot be used', { error: (err as Error).message })
        }
      },
      async stop () { await cloud?.stop() }
    },
    {
      // After the paths: the state goes out on every one of them; on stop, the calls end while
      // the paths can still carry each viewer's bye.
      name: 'calls',
      async start () { started(side, 'answering side').answering.publishState() },
      async stop () {
        side?.answering.stop()
        // Fail-secure first: the relay is driven locked now, not only when the lock module stops
        // last (a link that hangs on stop must not hold the door open until then).
        await drivers.lock.set(false).catch((err: unknown) => { log.error('could not lock the door on stop', { error: describeError(err) }) })
      }
    },
    {
      // Last: a press rings only once there is someone to tell.
      name: 'button',
      async start () { await drivers.button.start(ring) },
      async stop () { await drivers.button.stop() }
    },
    // Under systemd (Type=notify): ready once everything above is up, then the watchdog's keep-alive.
    systemdNotify({ log: (line) => { log.warn(line) } })
  ]

  const running = await startInOrder(modules, { log: log.child('modules'), ...(options.signal ? { signal: options.signal } : {}) })
    .catch((err: unknown) => { batcher?.stop(); traces?.stop(); throw err })
  const answering = started(side, 'answering side')
  return {
    config,
    call: answering.answering.call,
    lock: started(lock, 'lock'),
    camera: started(camera, 'camera'),
    audio: started(audio, 'audio'),
    get link () { return answering.link },
    mesh,
    get cloud () { return cloud },
    pairing: started(pairing, 'pairing'),
    guard: answering.guard,
    audit: started(audit, 'audit outbox'),
    async hubConnected (signal?: AbortSignal) {
      if (answering.link?.client.connected) return
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { hubWaiters.delete(done); resolve() }
        hubWaiters.add(done)
        signal?.addEventListener('abort', () => { hubWaiters.delete(done); reject(signal.reason) }, { once: true })
      })
    },
    drivers,
    modules: running.names,
    ring,
    snapshots: started(ringCamera.snapshots, 'snapshots'),
    clips: started(ringCamera.clips, 'clip recorder'),
    traces,
    state: answering.answering.state,
    async stop () {
      await running.stop()
      batcher?.stop()
      traces?.stop()
    }
  }
}

/** The stored pairing; else the invite in the config is redeemed now; else the doorbell cannot start. */
async function pairedHome (config: DeviceConfig, log: Logger): Promise<DevicePairing> {
  let pairing = loadPairing(config.dataDir)
  if (!pairing && config.pairing) {
    pairing = await pairDevice({ url: config.pairing.url, deviceId: config.deviceId, deviceName: config.deviceName, log: log.child('pairing') })
    savePairing(config.dataDir, pairing)
  }
  if (!pairing) {
    throw new PairingError(`this doorbell (${config.deviceId}) is not paired with a home. The owner creates a doorbell invite in Home settings; ` +
      'then start with "pairing": { "url": "<the invite URL>" } in the config, or run: npm run pair --workspace device -- <invite URL>')
  }
  if (config.homeId !== pairing.homeId && config.homeId !== 'home') {
    throw new ConfigError(`invalid config: homeId is ${config.homeId} but this doorbell is paired with home ${pairing.homeId}`)
  }
  return pairing
}
