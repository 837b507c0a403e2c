import { z } from 'zod'
import { Id } from './ids'
import { ConfigError } from './errors'
import { DeviceCloudConfig, ViewerCloudConfig } from './cloud'
import { IceConfigFields, relayNeedsTurn } from './ice'
import { ClusterConfig } from './clusterConfig'

const Port = z.number().int().min(0).max(65535)
const RELAY_WITHOUT_TURN = 'iceTransportPolicy "relay" needs a TURN server: add turn (or a turn: URL in iceServers)'

export const CameraSource = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('test-pattern'), width: z.number().int().min(16).max(3840).default(640), height: z.number().int().min(16).max(2160).default(480), fps: z.number().int().min(1).max(60).default(30) }),
  z.strictObject({ kind: z.literal('v4l2'), device: z.string().default('/dev/video0'), width: z.number().int().default(1280), height: z.number().int().default(720), fps: z.number().int().default(30) }),
  z.strictObject({ kind: z.literal('picam'), width: z.number().int().default(1280), height: z.number().int().default(720), fps: z.number().int().default(30) }),
  z.strictObject({ kind: z.literal('rtsp'), url: z.string().regex(/^rtsps?:\/\//, 'an RTSP URL starts with rtsp:// or rtsps://') })
])
export type CameraSource = z.infer<typeof CameraSource>

/** An ALSA device name: what `arecord -l` / `aplay -l` list as card,device ("plughw:1,0", "default", "hw:CARD=Device,DEV=0"). */
const AlsaDevice = z.string().min(1).max(128).regex(/^[\w:,=.-]+$/, 'an ALSA device name such as plughw:1,0 (list them with arecord -l or aplay -l)')
/** A PulseAudio/PipeWire source or sink name (`pactl list sources short`); absent: the server's default. */
const PulseDevice = z.string().min(1).max(256).regex(/^[\w:.@-]+$/, 'a PulseAudio source or sink name (list them with pactl list sources short / sinks short)').optional()
/** The camera encoder's niceness when the config gives none (`camera.niceness`). */
export const CAMERA_NICENESS = 10
const NICENESS_ERROR = 'camera.niceness is a whole number from 0 (as the doorbell) to 19 steps nicer than the doorbell (the kernel stops at 19); absent: 10'

/** "none", "test-tone" and "camera" may be written as plain strings. */
const byKind = (v: unknown): unknown => typeof v === 'string' ? { kind: v } : v

/**
 * What the doorbell's microphone is: nothing, a sine (the demo's default, so a new user hears
 * something), ALSA, PulseAudio/PipeWire, or "camera": the sound track of the RTSP camera
 * (`camera.source`, its URL and password given once; docs/audio.md).
 */
export const AudioSource = z.preprocess(byKind, z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({ kind: z.literal('test-tone'), frequencyHz: z.number().min(20).max(20_000).default(660) }),
  z.strictObject({ kind: z.literal('alsa'), device: AlsaDevice }),
  z.strictObject({ kind: z.literal('pulse'), device: PulseDevice }),
  z.strictObject({ kind: z.literal('camera') })
], { error: 'audio.source is "none", "test-tone", "camera" (the RTSP camera\'s sound), { "kind": "alsa", "device": "plughw:1,0" } or { "kind": "pulse" }' }))
export type AudioSource = z.infer<typeof AudioSource>

/**
 * Where a viewer's voice is played: nowhere, a WAV file (tests; "record what was said", off by
 * default), ALSA or PulseAudio/PipeWire. `optional`: a missing sound device is a warning and no
 * speaker, instead of a start-up error.
 */
export const SpeakerSink = z.preprocess(byKind, z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('none') }),
  z.strictObject({ kind: z.literal('wav'), path: z.string().min(1) }),
  z.strictObject({ kind: z.literal('alsa'), device: AlsaDevice, optional: z.boolean().default(false) }),
  z.strictObject({ kind: z.literal('pulse'), device: PulseDevice, optional: z.boolean().default(false) })
], { error: 'audio.speaker is "none", { "kind": "wav", "path": … }, { "kind": "alsa", "device": "plughw:1,0" } or { "kind": "pulse" }' }))
export type SpeakerSink = z.infer<typeof SpeakerSink>

/** The LAN mesh (libp2p): discovery by mDNS and the direct path for viewers when the hub is down. */
const Mesh = (tcpPort: number, directPort: number) => z.strictObject({
  enabled: z.boolean().default(true),
  /** Interface to listen on (IPv4). */
  host: z.string().default('0.0.0.0'),
  /** libp2p over TCP (device <-> hub). Fixed by default so addresses survive restarts; 0 picks a free one. */
  tcpPort: Port.default(tcpPort),
  /** webrtc-direct over UDP (browsers). Fixed by default: viewers keep these addresses for when the hub is down. */
  directPort: Port.default(directPort),
  /** How often mDNS asks the LAN who is there (a newcomer is found within this). */
  queryIntervalMs: z.number().int().min(100).max(60_000).default(1000)
}).default({ enabled: true, host: '0.0.0.0', tcpPort, directPort, queryIntervalMs: 1000 })

/** BCM numbering: a GPIO's line offset on the Pi's pin controller (BCM17 is header pin 11). */
const Line = z.number().int().min(0).max(127)
const LineFields = {
  /** The button, to ground: BCM17 (header pin 11) by default. */
  buttonLine: Line.default(17),
  /** The relay module's input: BCM27 (header pin 13) by default. */
  lockLine: Line.default(27),
  /** A press pulls the line low (button to ground, with the pull-up the driver sets). */
  buttonActiveLow: z.boolean().default(true),
  /** The relay opens the door when driven high (true) or low (false). */
  lockActiveHigh: z.boolean().default(true),
  /** Edges closer together than this are one press (contact bounce). */
  debounceMs: z.number().int().min(0).max(1000).default(20),
  /**
   * The GPIO chip's label (gpiodetect's [label], sysfs's gpiochipN/label). Default: the Pi's own
   * pin controller, pinctrl-rp1 (Pi 5), pinctrl-bcm2711 (Pi 4, 400, CM4), pinctrl-bcm2835 (older, Zero 2 W).
   */
  chip: z.string().min(1).max(64).optional()
}

export const DeviceConfig = z.strictObject({
  homeId: Id.default('home'),
  deviceId: Id.default('front-door'),
  deviceName: z.string().min(1).max(64).default('Front door'),
  /**
   * The hub's MQTT URL (mqtt://, mqtts://, ws://, wss://). Leave it out and the device finds the
   * hub of its home on the LAN by mDNS (mesh.enabled).
   */
  hubUrl: z.string().regex(/^(mqtts?|wss?):\/\//, 'hubUrl starts with mqtt://, mqtts://, ws:// or wss://').optional(),
  /** Where the device keeps its pairing, peer identity and audit outbox (git-ignored; keep it private). */
  dataDir: z.string().min(1).default('data/device'),
  /**
   * The owner's device invite (https://hub/pair#code=…&ca=…), redeemed on the first start; the
   * pairing is then kept in dataDir and this is no longer read.
   */
  pairing: z.strictObject({ url: z.string().url('pairing.url is the invite URL the owner created') }).optional(),
  mesh: Mesh(4101, 4102),
  /** Seconds before a ring nobody answers ends as missed. */
  ringTimeoutSeconds: z.number().positive().max(600).default(30),
  /** Seconds the door stays open before it relocks by itself. */
  relockSeconds: z.number().positive().max(600).default(5),
  /** Longest a call may last; a forgotten call ends by itself. */
  maxCallSeconds: z.number().positive().max(24 * 3600).default(600),
  maxViewers: z.number().int().min(1).max(64).default(12),
  /**
   * The owner's setting: screens see the visitor live in the ring banner (a preview session
   * each, counted against maxViewers). false: the snapshot only until someone answers.
   */
  livePreview: z.boolean().default(true),
  /**
   * How the door guard checks the signatures on commands and offers: absent or 'native', Node's
   * synchronous check on the event loop; 'webcrypto', WebCrypto's, a round trip through libuv's
   * thread pool (as before issue 21). Both give the same answers; 'webcrypto' is kept for the
   * `call` bench's side by side (docs/performance.md, "Open door").
   */
  signatureCheck: z.enum(['native', 'webcrypto']).optional(),
  gpio: z.discriminatedUnion('driver', [
    z.strictObject({
      driver: z.literal('simulated'),
      /**
       * A file that holds the simulated relay's position ("open" / "locked"), so that, like a
       * real relay, it stays where it was when the process dies (fail-secure tests, lockNow).
       * Without it the relay lives in memory.
       */
      relayFile: z.string().min(1).optional()
    }),
    z.strictObject({
      driver: z.literal('rpi-gpio'),
      /** Header pin numbers (rpi-gpio's default mode). */
      buttonPin: z.number().int().min(1).max(40),
      lockPin: z.number().int().min(1).max(40),
      /** The relay opens the door when driven high (true) or low (false). */
      lockActiveHigh: z.boolean().default(true)
    }),
    z.strictObject({
      /**
       * auto: libgpiod when /dev/gpiochip* and the gpiod tools are there, else sysfs with the
       * chip's base offset (docs/hardware.md); libgpiod or sysfs: that driver only.
       */
      driver: z.enum(['auto', 'libgpiod', 'sysfs']),
      ...LineFields
    })
  ]).default({ driver: 'simulated' }),
  camera: z.strictObject({
    source: CameraSource.default({ kind: 'test-pattern', width: 640, height: 480, fps: 30 }),
    codec: z.enum(['h264', 'vp8']).default('h264'),
    /** A keyframe every this many frames; a joining viewer waits at most this long for a picture. */
    keyframeInterval: z.number().int().min(1).max(600).default(15),
    bitrateKbps: z.number().int().min(50).max(20000).default(1500),
    /** An ffmpeg binary; default: the system's, else the one @ffmpeg-installer ships. */
    ffmpegPath: z.string().optional(),
    /**
     * The ring's picture: `running` keeps one ffmpeg decoder running and feeds it the cached keyframe
     * (fast, the default); `one-shot` starts ffmpeg per picture (no resident process, slower). docs/history.md.
     */
    snapshotDecoder: z.enum(['running', 'one-shot']).optional(),
    /** The ring's clip, when the owner turns clips on for this doorbell (docs/history.md): this many seconds from the press. */
    clipSeconds: z.number().int().min(2).max(30).optional(),
    /**
     * How many steps nicer than the doorbell the camera's encoder runs (ffmpeg, and rpicam-vid or
     * the RTSP probe before it): 0-19, absent: 10 (CAMERA_NICENESS). The encoder is the busiest
     * thing on a doorbell; nicer, it never keeps an open-door command waiting for a CPU
     * (docs/performance.md). 0 runs it as the doorbell. Raising niceness needs no privilege.
     */
    niceness: z.number({ error: NICENESS_ERROR }).int({ error: NICENESS_ERROR }).min(0, { error: NICENESS_ERROR }).max(19, { error: NICENESS_ERROR }).optional()
  }).default({ source: { kind: 'test-pattern', width: 640, height: 480, fps: 30 }, codec: 'h264', keyframeInterval: 15, bitrateKbps: 1500 }),
  /** The doorbell's microphone (Opus to every session) and speaker (what viewers say). docs/audio.md. */
  audio: z.strictObject({
    // Nothing unless configured: a real doorbell without a microphone sends no made-up sound (the demo asks for the tone).
    source: AudioSource.default({ kind: 'none' }),
    speaker: SpeakerSink.default({ kind: 'none' }),
    bitrateKbps: z.number().int().min(6).max(256).default(32),
    /** The longest one talk lease lasts without a renew (a held Talk button renews it); absent: 60 s. */
    talkMaxSeconds: z.number().int().min(5).max(600).optional(),
    /**
     * The microphone is shut while the speaker plays (talk or a quick reply), so the resident does
     * not hear themselves back. auto (absent): on for an ALSA microphone and the RTSP camera's, off for PulseAudio (its
     * echo-cancel module: docs/audio.md) and the test tone; on; off (a USB speakerphone that cancels
     * echo itself).
     */
    halfDuplex: z.enum(['auto', 'on', 'off']).optional(),
    /**
     * How long a microphone packet may wait for its 20 ms slot, so that ffmpeg's bursts leave
     * evenly spaced and the page's jitter buffer stays small (device/src/audio/pacer.ts); 0 or
     * absent: sent as ffmpeg hands them over (docs/audio.md has the figures; 40 is what was measured).
     */
    pacingMs: z.number().int().min(0).max(200).optional(),
    /**
     * Every this many seconds, log where the microphone's packets spent their time (lateness out
     * of ffmpeg and once sent, the event loop's delay) and each sound onset: for benches and for
     * diagnosing late audio (device/src/audio/timing.ts). Off when absent.
     */
    timingLogSeconds: z.number().int().min(1).max(3600).optional(),
    /**
     * The length of each Opus frame (and packet) the microphone sends, in ms: 20 (absent) or 10.
     * A frame leaves only once it is full, so 10 takes about 10 ms off every packet's wait, for
     * twice the packets (docs/audio.md, "Where the time goes").
     */
    frameMs: z.union([z.literal(10), z.literal(20)], { error: 'audio.frameMs is 10 or 20 (ms)' }).optional(),
    /** The espeak-ng binary that renders quick replies; absent: espeak-ng on the PATH. Missing: replies are off, with a warning. */
    espeakPath: z.string().optional(),
    /** espeak-ng's voice for quick replies (`espeak-ng --voices` lists them); absent: en. */
    replyVoice: z.string().regex(/^[A-Za-z0-9_+-]{1,40}$/, 'a voice name as espeak-ng --voices lists it').optional(),
    /** An ffmpeg binary; default: the system's, else the one @ffmpeg-installer ships. */
    ffmpegPath: z.string().optional()
  }).default({ source: { kind: 'none' }, speaker: { kind: 'none' }, bitrateKbps: 32 }),
  /** STUN/TURN for this doorbell's side of each call (see ice.ts); none on a LAN. */
  ...IceConfigFields,
  /** Extra host addresses to offer (127.0.0.1 for loopback tests). */
  iceAdditionalHostAddresses: z.array(z.string()).default([]),
  /**
   * Keep a viewer's DTLS hello that arrives before the doorbell's DTLS server listens and answer it
   * then, instead of waiting for the viewer to resend it (device/src/peer/earlyDtls.ts). false
   * only to measure the difference (the preview bench).
   */
  keepEarlyDtls: z.boolean().default(true),
  /** Publish the state machines' inspection events for the hub's /inspector page. */
  inspect: z.boolean().default(false),
  /**
   * Keep the inspection traces of the last calls in dataDir/traces for the owner (docs/inspector.md).
   * Off when absent; bounded by count and by bytes, the oldest dropped first.
   */
  keepTraces: z.strictObject({
    calls: z.number().int().min(1).max(50).default(5),
    maxBytes: z.number().int().min(64 * 1024).max(16 * 1024 * 1024).default(2 * 1024 * 1024)
  }).optional(),
  /**
   * Requests outside a call one screen may send in a window on the paths anyone can reach (the
   * direct path's commands per libp2p peer; commands and dismissals over KVS per viewer client
   * id); past it each is answered `busy` and nothing else happens (docs/commands.md). Absent: 20 in 10 s.
   */
  commandsPerScreen: z.strictObject({
    count: z.number().int().min(1).max(1000).default(20),
    windowMs: z.number().int().min(100).max(600_000).default(10_000)
  }).optional(),
  /** Away from home: AWS IoT Core and KVS signaling (written by the cloud setup command). Off when absent. */
  cloud: DeviceCloudConfig.optional()
}).refine((c) => c.hubUrl !== undefined || c.mesh.enabled, {
  message: 'without hubUrl the device finds its hub by mDNS: give hubUrl or leave mesh.enabled on',
  path: ['hubUrl']
}).refine(relayNeedsTurn, { message: RELAY_WITHOUT_TURN, path: ['iceTransportPolicy'] })
  .refine((c) => c.audio.source.kind !== 'camera' || c.camera.source.kind === 'rtsp', {
    message: 'audio.source "camera" is the sound of an RTSP camera: set camera.source to { "kind": "rtsp", "url": … }, or pick another audio source (or "none")',
    path: ['audio', 'source']
  })
export type DeviceConfig = z.infer<typeof DeviceConfig>
export type GpioConfig = DeviceConfig['gpio']
/** The GPIO drivers that take BCM line numbers (libgpiod, sysfs, and auto that picks one). */
export type LineGpioConfig = Extract<GpioConfig, { driver: 'auto' | 'libgpiod' | 'sysfs' }>
export type DeviceConfigInput = z.input<typeof DeviceConfig>

const LOOPBACK = ['127.0.0.1', '::1', 'localhost']

/**
 * The user's MQTT broker for Home Assistant (hub/src/homeAssistant/userBroker.ts). `mqtts://`
 * with the broker's CA (`ca`, a PEM file) unless the broker is on this machine; the password from
 * a file (`passwordFile`, kept out of the config) or in the config itself.
 */
export const HomeAssistantBroker = z.strictObject({
  url: z.string().url().refine((u) => /^mqtts?:\/\//.test(u), 'the broker\'s URL is mqtt://host:port or mqtts://host:port'),
  username: z.string().min(1).max(200).optional(),
  password: z.string().min(1).max(500).optional(),
  passwordFile: z.string().min(1).optional(),
  /** The broker's CA certificate (PEM file) for `mqtts://`; absent: the system's CAs. */
  ca: z.string().min(1).optional(),
  /** A client id of the user's choice; default `doorbell-hub-{home}`. */
  clientId: z.string().min(1).max(200).regex(/^[A-Za-z0-9_-]+$/, 'a client id is A-Z, a-z, 0-9, "_" or "-"').optional()
}).refine((b) => b.password === undefined || b.passwordFile === undefined, { message: 'give password or passwordFile, not both', path: ['passwordFile'] })
  .refine((b) => b.password === undefined || b.username !== undefined, { message: 'a password needs a username', path: ['username'] })
  .refine((b) => b.url.startsWith('mqtts://') || LOOPBACK.includes(new URL(b.url).hostname.replace(/^\[|\]$/g, '')), {
    message: 'plain mqtt:// sends the password and the door\'s state in clear: use mqtts:// (Mosquitto\'s listener with a certificate), or a broker on this machine',
    path: ['url']
  })
export type HomeAssistantBroker = z.infer<typeof HomeAssistantBroker>

export const HubConfig = z.strictObject({
  homeId: Id.default('home'),
  hubName: z.string().min(1).max(64).default('Home hub'),
  host: z.string().default('0.0.0.0'),
  httpPort: Port.default(8080),
  mqttPort: Port.default(1883),
  /** The built viewer (viewer/dist). */
  viewerDir: z.string().optional(),
  /**
   * 'auto' (default): HTTPS, WSS and MQTT over TLS with a local certificate authority made on first
   * start in dataDir/tls (phones install it from /ca.crt). { key, cert }: PEM files' contents, from
   * your own CA. 'off': plain HTTP, WS and MQTT, for development on this machine only.
   */
  tls: z.union([z.literal('auto'), z.literal('off'), z.strictObject({ key: z.string().min(1), cert: z.string().min(1) })]).default('auto'),
  /** Extra names the hub's certificate should cover (its LAN addresses, hostname and hostname.local always are). */
  tlsNames: z.array(z.string().min(1).max(253)).max(32).default([]),
  /** Tell viewers to publish their machines' inspection events (for /inspector). */
  inspect: z.boolean().default(false),
  /** Where the hub keeps its peer identity and certificate (git-ignored; keep it private). */
  dataDir: z.string().min(1).default('data/hub'),
  mesh: Mesh(4201, 4202),
  /** The broker URL told to devices that find the hub, when the address they reached it at will not do. */
  advertisedMqttUrl: z.string().regex(/^(mqtts?|wss?):\/\//).optional(),
  /** The cloud path for viewers away from home (written by the cloud setup command); given to paired members at /api/cloud. */
  cloud: ViewerCloudConfig.optional(),
  /**
   * STUN/TURN for members' browsers (given at /api/ice, TURN credentials minted per request from
   * turn.secret), and the policy: 'relay' sends every call through TURN.
   */
  ...IceConfigFields,
  /**
   * Behind a reverse proxy on this machine (deployment/nginx): trust its X-Forwarded-Proto and
   * X-Forwarded-Host for same-origin checks and the URLs the hub writes. Only with host on loopback.
   */
  trustProxy: z.boolean().default(false),
  /**
   * The event history (docs/history.md): rings, door openings and their snapshots are kept this
   * many days, and their pictures within this many megabytes (oldest deleted first). The audit log
   * is never touched by it.
   */
  history: z.strictObject({
    retentionDays: z.number().int().min(1).max(3650).default(30),
    maxMegabytes: z.number().min(1).max(1_000_000).default(500)
  }).default({ retentionDays: 30, maxMegabytes: 500 }),
  /**
   * The MQTT listener under abuse (hub/src/broker/README.md): the largest packet a signed-in client
   * may send (before sign-in far less: 16 KiB), how long a connection may take to complete its
   * CONNECT, how many may be waiting to sign in at once, and whether a proxy on this machine
   * (deployment/nginx, `proxy_protocol on;`) sends the PROXY header with the client's address.
   */
  mqtt: z.strictObject({
    maxPacketBytes: z.number().int().min(16 * 1024).max(16 * 1024 * 1024).default(256 * 1024),
    connectTimeoutMs: z.number().int().min(500).max(60_000).default(5000),
    maxPendingConnections: z.number().int().min(1).max(10_000).default(64),
    proxyProtocol: z.boolean().default(false)
  }).default({ maxPacketBytes: 256 * 1024, connectTimeoutMs: 5000, maxPendingConnections: 64, proxyProtocol: false }),
  /**
   * Home Assistant by MQTT discovery on this hub's broker (docs/home-assistant.md): off unless
   * turned on; `discoveryPrefix` as set in Home Assistant's MQTT options.
   */
  homeAssistant: z.strictObject({
    enabled: z.boolean().default(false),
    discoveryPrefix: z.string().max(100)
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'a discovery prefix is topic levels of A-Z, a-z, 0-9, "_" or "-", without wildcards')
      .refine((p) => p.split('/')[0] !== 'doorbell', 'the discovery prefix may not be under doorbell/')
      .default('homeassistant'),
    /**
     * The user's own broker (most Home Assistant installs run Mosquitto): the hub connects out as
     * a client and mirrors discovery, states and events there, and takes lock commands from there.
     * Absent: Home Assistant connects to this hub's broker with an integration credential.
     */
    broker: HomeAssistantBroker.optional()
  }).default({ enabled: false, discoveryPrefix: 'homeassistant' }),
  /**
   * Web Push (docs/history.md, "Web Push"): when the hub can reach the internet, a ring wakes a
   * closed page through the browser's push service. `contact` (mailto: or https:) goes in the
   * VAPID claims so a push service can reach the hub's owner. `allowLoopbackEndpoints` lets a
   * subscription point at http://127.0.0.1 (a push-service stand-in in tests); off, only https.
   */
  push: z.strictObject({
    enabled: z.boolean().default(true),
    contact: z.string().max(200).regex(/^(mailto:|https:\/\/)\S+$/, 'a mailto: or https: address').optional(),
    allowLoopbackEndpoints: z.boolean().default(false)
  }).default({ enabled: true, allowLoopbackEndpoints: false }),
  /** One of several hubs sharing Redis and PostgreSQL behind nginx (docs/cluster.md); absent: a single hub. */
  cluster: ClusterConfig.optional()
}).refine((c) => c.tls !== 'off' || LOOPBACK.includes(c.host), {
  message: 'plain HTTP is for development on this machine only: with tls "off" set host to 127.0.0.1 (or ::1, localhost)',
  path: ['tls']
}).refine(relayNeedsTurn, { message: RELAY_WITHOUT_TURN, path: ['iceTransportPolicy'] })
  // Each hub would make its own CA, and clients pinning one would refuse the others.
  .refine((c) => c.cluster === undefined || c.tls !== 'auto', {
    message: 'a cluster\'s hubs share one certificate: give tls { key, cert } (the same files on every hub), or tls "off" behind nginx on this machine',
    path: ['tls']
  })
  .refine((c) => !c.trustProxy || LOOPBACK.includes(c.host), {
    message: 'trustProxy believes X-Forwarded-* headers: only with host 127.0.0.1 (or ::1, localhost), behind the proxy on this machine',
    path: ['trustProxy']
  })
export type HubConfig = z.infer<typeof HubConfig>
export type HubConfigInput = z.input<typeof HubConfig>

/** Parses a config object, throwing a ConfigError that lists every problem with its path. */
export function parseConfig<S extends z.ZodType> (schema: S, input: unknown, source: string): z.infer<S> {
  const r = schema.safeParse(input ?? {})
  if (r.success) return r.data
  const lines = r.error.issues.flatMap((i) => explain(i)).map(([path, message]) => `  - ${path.join('.') || '(root)'}: ${message}`)
  throw new ConfigError(`invalid config in ${source}:\n${lines.join('\n')}`)
}

type Issue = z.core.$ZodIssue
/**
 * One issue as people read it. A union (tls: 'auto' | 'off' | { key, cert }) fails as one
 * "invalid input"; the branch that got furthest (the object, for a half-given TLS) says what is wrong.
 */
function explain (issue: Issue, prefix: PropertyKey[] = []): Array<[PropertyKey[], string]> {
  const path = [...prefix, ...issue.path]
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    const deepest = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0]!
    if (depth(deepest) > 0) return deepest.flatMap((i) => explain(i, path))
  }
  return [[path, issue.message]]
}
const depth = (issues: Issue[]): number => Math.max(0, ...issues.map((i) => i.path.length))
