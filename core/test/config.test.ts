import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CAMERA_NICENESS, ConfigError, DeviceConfig, HubConfig, parseConfig } from '../src/index'

function configError (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err
  }
  assert.fail('expected a ConfigError')
}

describe('parseConfig(DeviceConfig)', () => {
  test('fills every default from nothing (undefined, null or {})', () => {
    const expected = {
      homeId: 'home',
      deviceId: 'front-door',
      deviceName: 'Front door',
      dataDir: 'data/device',
      mesh: { enabled: true, host: '0.0.0.0', tcpPort: 4101, directPort: 4102, queryIntervalMs: 1000 },
      ringTimeoutSeconds: 30,
      relockSeconds: 5,
      maxCallSeconds: 600,
      maxViewers: 12,
      livePreview: true,
      gpio: { driver: 'simulated' },
      camera: {
        source: { kind: 'test-pattern', width: 640, height: 480, fps: 30 },
        codec: 'h264',
        keyframeInterval: 15,
        bitrateKbps: 1500
      },
      audio: { source: { kind: 'none' }, speaker: { kind: 'none' }, bitrateKbps: 32 },
      iceServers: [],
      iceTransportPolicy: 'all',
      iceAdditionalHostAddresses: [],
      keepEarlyDtls: true,
      inspect: false
    }
    assert.deepEqual(parseConfig(DeviceConfig, undefined, 'env'), expected)
    assert.deepEqual(parseConfig(DeviceConfig, null, 'env'), expected)
    assert.deepEqual(parseConfig(DeviceConfig, {}, 'env'), expected)
  })

  test('keeps given values and fills the rest', () => {
    const c = parseConfig(DeviceConfig, { deviceId: 'gate', relockSeconds: 3, camera: { codec: 'vp8' } }, 'device.json')
    assert.equal(c.deviceId, 'gate')
    assert.equal(c.relockSeconds, 3)
    assert.equal(c.ringTimeoutSeconds, 30)
    assert.equal(c.camera.codec, 'vp8')
    assert.deepEqual(c.camera.source, { kind: 'test-pattern', width: 640, height: 480, fps: 30 })
    assert.equal(c.camera.keyframeInterval, 15)
  })

  test('fills the defaults of a partly given camera source', () => {
    assert.deepEqual(parseConfig(DeviceConfig, { camera: { source: { kind: 'v4l2' } } }, 'x').camera.source,
      { kind: 'v4l2', device: '/dev/video0', width: 1280, height: 720, fps: 30 })
    assert.deepEqual(parseConfig(DeviceConfig, { camera: { source: { kind: 'test-pattern', fps: 5 } } }, 'x').camera.source,
      { kind: 'test-pattern', width: 640, height: 480, fps: 5 })
  })

  test('accepts every hub URL scheme', () => {
    for (const hubUrl of ['mqtt://hub:1883', 'mqtts://hub:8883', 'ws://hub:8080/mqtt', 'wss://hub/mqtt']) {
      assert.equal(parseConfig(DeviceConfig, { hubUrl }, 'x').hubUrl, hubUrl)
    }
  })

  test('accepts the rpi-gpio driver with its pins, active-high by default', () => {
    assert.deepEqual(parseConfig(DeviceConfig, { gpio: { driver: 'rpi-gpio', buttonPin: 11, lockPin: 13 } }, 'x').gpio,
      { driver: 'rpi-gpio', buttonPin: 11, lockPin: 13, lockActiveHigh: true })
  })

  test('the libgpiod, sysfs and auto drivers take BCM lines: button BCM17 active-low, relay BCM27 active-high, 20 ms debounce by default; a chip label optional', () => {
    for (const driver of ['auto', 'libgpiod', 'sysfs']) {
      assert.deepEqual(parseConfig(DeviceConfig, { gpio: { driver } }, 'x').gpio,
        { driver, buttonLine: 17, lockLine: 27, buttonActiveLow: true, lockActiveHigh: true, debounceMs: 20 })
    }
    assert.deepEqual(parseConfig(DeviceConfig, { gpio: { driver: 'libgpiod', buttonLine: 5, lockLine: 6, buttonActiveLow: false, lockActiveHigh: false, debounceMs: 0, chip: 'pinctrl-rp1' } }, 'x').gpio,
      { driver: 'libgpiod', buttonLine: 5, lockLine: 6, buttonActiveLow: false, lockActiveHigh: false, debounceMs: 0, chip: 'pinctrl-rp1' })
    const e = configError(() => parseConfig(DeviceConfig, { gpio: { driver: 'auto', buttonLine: -1, lockLine: 17.5, debounceMs: 5000, chip: '', buttonPin: 11 } }, 'x'))
    for (const path of ['gpio.buttonLine', 'gpio.lockLine', 'gpio.debounceMs', 'gpio.chip']) assert.match(e.message, new RegExp(`\\n  - ${path.replace(/\./g, '\\.')}: `), path)
    assert.match(e.message, /buttonPin/, 'rpi-gpio\'s header-pin fields are not taken by the BCM drivers')
  })

  test('the simulated relay may keep its position in a file (like a real relay, it outlives the process)', () => {
    assert.deepEqual(parseConfig(DeviceConfig, { gpio: { driver: 'simulated', relayFile: '/run/doorbell/relay' } }, 'x').gpio, { driver: 'simulated', relayFile: '/run/doorbell/relay' })
    assert.match(configError(() => parseConfig(DeviceConfig, { gpio: { driver: 'simulated', relayFile: '' } }, 'x')).message, /gpio\.relayFile/)
  })

  test('accepts an RTSP camera and ICE servers', () => {
    const c = parseConfig(DeviceConfig, {
      camera: { source: { kind: 'rtsp', url: 'rtsps://cam.local/stream' } },
      iceServers: [{ urls: ['turn:turn.local'], username: 'u', credential: 'p' }, { urls: 'stun:stun.local' }]
    }, 'x')
    assert.equal(c.camera.source.kind, 'rtsp')
    assert.equal(c.iceServers.length, 2)
  })

  test('throws a ConfigError naming the source and listing every bad path', () => {
    const e = configError(() => parseConfig(DeviceConfig, {
      hubUrl: 'http://hub',
      ringTimeoutSeconds: 0,
      maxViewers: 65,
      gpio: { driver: 'rpi-gpio', buttonPin: 41 },
      camera: { source: { kind: 'rtsp', url: 'http://cam' } }
    }, 'device.json'))
    assert.equal(e.name, 'ConfigError')
    assert.equal(e.code, 'invalid-config')
    assert.match(e.message, /^invalid config in device\.json:\n/)
    for (const path of ['hubUrl', 'ringTimeoutSeconds', 'maxViewers', 'gpio.buttonPin', 'gpio.lockPin', 'camera.source.url']) {
      assert.match(e.message, new RegExp(`\\n  - ${path.replace(/\./g, '\\.')}: `), path)
    }
    assert.match(e.message, /hubUrl: hubUrl starts with mqtt:\/\//)
    assert.match(e.message, /camera\.source\.url: an RTSP URL starts with rtsp:\/\//)
  })

  test('refuses unknown keys at the root and nested, so a typo is not silently ignored', () => {
    const e = configError(() => parseConfig(DeviceConfig, { relockSecs: 3, camera: { fps: 30 } }, 'device.json'))
    assert.match(e.message, /  - \(root\): .*relockSecs/)
    assert.match(e.message, /  - camera: .*fps/)
  })

  test('refuses an unknown GPIO driver and camera kind', () => {
    assert.match(configError(() => parseConfig(DeviceConfig, { gpio: { driver: 'pigpio' } }, 'x')).message, /gpio\.driver/)
    assert.match(configError(() => parseConfig(DeviceConfig, { camera: { source: { kind: 'usb' } } }, 'x')).message, /camera\.source\.kind/)
  })

  test('camera.niceness: 0-19 is kept, absent stays absent (the camera uses CAMERA_NICENESS, 10)', () => {
    assert.equal(CAMERA_NICENESS, 10)
    assert.equal(parseConfig(DeviceConfig, {}, 'x').camera.niceness, undefined)
    for (const n of [0, 5, 19]) assert.equal(parseConfig(DeviceConfig, { camera: { niceness: n } }, 'x').camera.niceness, n)
  })

  test('a bad camera.niceness is refused, saying what is expected (a negative one would need privilege)', () => {
    for (const niceness of [-5, 20, 2.5, '10', null, true]) {
      const e = configError(() => parseConfig(DeviceConfig, { camera: { niceness } }, 'doorbell.json'))
      assert.match(e.message, /  - camera\.niceness: camera\.niceness is a whole number from 0 \(as the doorbell\) to 19 steps nicer than the doorbell \(the kernel stops at 19\); absent: 10/, JSON.stringify(niceness))
    }
  })

  test('refuses a bad device id (it becomes a topic level)', () => {
    assert.match(configError(() => parseConfig(DeviceConfig, { deviceId: 'front door' }, 'x')).message, /  - deviceId: an id is/)
  })

  test('with no hubUrl the device finds its hub by mDNS; with mDNS off too, it says what is missing', () => {
    assert.equal(parseConfig(DeviceConfig, {}, 'x').hubUrl, undefined)
    assert.match(configError(() => parseConfig(DeviceConfig, { mesh: { enabled: false } }, 'x')).message, /hubUrl: without hubUrl the device finds its hub by mDNS/)
    assert.equal(parseConfig(DeviceConfig, { mesh: { enabled: false }, hubUrl: 'mqtt://hub:1883' }, 'x').mesh.enabled, false)
    assert.match(configError(() => parseConfig(DeviceConfig, { mesh: { directPort: 70000 } }, 'x')).message, /mesh\.directPort/)
  })

  test('the guard\'s signature check is native (absent) or webcrypto; anything else is refused, naming the key', () => {
    assert.equal(parseConfig(DeviceConfig, {}, 'doorbell.json').signatureCheck, undefined)
    assert.equal(parseConfig(DeviceConfig, { signatureCheck: 'webcrypto' }, 'doorbell.json').signatureCheck, 'webcrypto')
    assert.equal(parseConfig(DeviceConfig, { signatureCheck: 'native' }, 'doorbell.json').signatureCheck, 'native')
    for (const bad of ['openssl', true, 1]) {
      const err = configError(() => parseConfig(DeviceConfig, { signatureCheck: bad }, 'doorbell.json'))
      assert.match(err.message, /signatureCheck/, String(bad))
    }
  })

  test('refuses an input that is not an object, naming the root', () => {
    assert.match(configError(() => parseConfig(DeviceConfig, 'front-door', 'argv')).message, /invalid config in argv:\n  - \(root\): /)
  })
})

describe('parseConfig(HubConfig)', () => {
  test('fills every default from nothing', () => {
    const expected = {
      homeId: 'home',
      hubName: 'Home hub',
      host: '0.0.0.0',
      httpPort: 8080,
      mqttPort: 1883,
      tls: 'auto',
      tlsNames: [],
      inspect: false,
      dataDir: 'data/hub',
      history: { retentionDays: 30, maxMegabytes: 500 },
      mesh: { enabled: true, host: '0.0.0.0', tcpPort: 4201, directPort: 4202, queryIntervalMs: 1000 },
      iceServers: [],
      iceTransportPolicy: 'all',
      trustProxy: false,
      mqtt: { maxPacketBytes: 256 * 1024, connectTimeoutMs: 5000, maxPendingConnections: 64, proxyProtocol: false },
      homeAssistant: { enabled: false, discoveryPrefix: 'homeassistant' },
      push: { enabled: true, allowLoopbackEndpoints: false }
    }
    assert.deepEqual(parseConfig(HubConfig, undefined, 'env'), expected)
    assert.deepEqual(parseConfig(HubConfig, {}, 'env'), expected)
  })

  test('the MQTT listener\'s limits: partial sections keep the other defaults; out-of-range values are refused, each named', () => {
    assert.deepEqual(parseConfig(HubConfig, { mqtt: { maxPacketBytes: 1024 * 1024, proxyProtocol: true } }, 'x').mqtt, { maxPacketBytes: 1024 * 1024, connectTimeoutMs: 5000, maxPendingConnections: 64, proxyProtocol: true })
    const e = configError(() => parseConfig(HubConfig, { mqtt: { maxPacketBytes: 10, connectTimeoutMs: 0, maxPendingConnections: 1.5, proxyProtocol: 'yes', extra: 1 } }, 'hub.json'))
    for (const key of ['mqtt.maxPacketBytes', 'mqtt.connectTimeoutMs', 'mqtt.maxPendingConnections', 'mqtt.proxyProtocol']) assert.match(e.message, new RegExp(key.replace('.', '\\.')), key)
    assert.match(e.message, /extra/)
  })

  test('cluster: absent unless given; a given one is checked field by field and needs a shared certificate', () => {
    assert.equal(parseConfig(HubConfig, {}, 'x').cluster, undefined)
    const good = { nodeId: 'hub-a', redisUrl: 'redis://10.0.0.5:6379', postgresUrl: 'postgres://doorbell_hub@10.0.0.6/doorbell' }
    assert.deepEqual(parseConfig(HubConfig, { host: '127.0.0.1', tls: 'off', cluster: good }, 'x').cluster, { ...good, postgresTimeoutMs: 2000 })
    const e = configError(() => parseConfig(HubConfig, { cluster: { nodeId: '-A', redisUrl: 'http://x', postgresUrl: 'mysql://x', postgresTimeoutMs: 5, extra: 1 } }, 'hub.json'))
    for (const key of ['cluster.nodeId', 'cluster.redisUrl', 'cluster.postgresUrl', 'cluster.postgresTimeoutMs']) assert.match(e.message, new RegExp(key.replace('.', '\\.')), key)
    assert.match(e.message, /extra/)
    // Each hub would make its own CA under 'auto': refused, with what to give instead.
    assert.match(configError(() => parseConfig(HubConfig, { cluster: good }, 'hub.json')).message, /tls: a cluster's hubs share one certificate/)
  })

  test('Home Assistant: off unless turned on; the discovery prefix is plain topic levels, never under doorbell/', () => {
    assert.deepEqual(parseConfig(HubConfig, { homeAssistant: { enabled: true } }, 'x').homeAssistant, { enabled: true, discoveryPrefix: 'homeassistant' })
    assert.equal(parseConfig(HubConfig, { homeAssistant: { discoveryPrefix: 'ha/test' } }, 'x').homeAssistant.discoveryPrefix, 'ha/test')
    for (const discoveryPrefix of ['ha/#', 'ha/+', '', 'ha/', '/ha', 'doorbell', 'doorbell/ha', '$SYS']) {
      const e = configError(() => parseConfig(HubConfig, { homeAssistant: { discoveryPrefix } }, 'hub.json'))
      assert.match(e.message, /homeAssistant\.discoveryPrefix: /, discoveryPrefix)
    }
  })

  test('Home Assistant on the user\'s broker: mqtts:// (plain only on this machine), a password or a password file, not both', () => {
    const broker = (b: Record<string, unknown>): unknown => parseConfig(HubConfig, { homeAssistant: { enabled: true, broker: b } }, 'hub.json').homeAssistant.broker
    assert.deepEqual(broker({ url: 'mqtts://ha.lan:8883', username: 'hub', passwordFile: '/etc/doorbell/ha-password', ca: '/etc/doorbell/ha-ca.pem' }),
      { url: 'mqtts://ha.lan:8883', username: 'hub', passwordFile: '/etc/doorbell/ha-password', ca: '/etc/doorbell/ha-ca.pem' })
    assert.equal((broker({ url: 'mqtt://127.0.0.1:1883' }) as { url: string }).url, 'mqtt://127.0.0.1:1883')
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ url: 'mqtt://192.168.1.10:1883', username: 'hub', password: 'x' }, /homeAssistant\.broker\.url: plain mqtt:\/\/ sends the password/],
      [{ url: 'https://ha.lan' }, /homeAssistant\.broker\.url: the broker's URL is mqtt/],
      [{ url: 'mqtts://ha.lan', username: 'hub', password: 'x', passwordFile: '/p' }, /homeAssistant\.broker\.passwordFile: give password or passwordFile, not both/],
      [{ url: 'mqtts://ha.lan', password: 'x' }, /homeAssistant\.broker\.username: a password needs a username/],
      [{ url: 'mqtts://ha.lan', clientId: 'a b' }, /homeAssistant\.broker\.clientId: /],
      [{ url: 'mqtts://ha.lan', port: 1 }, /homeAssistant\.broker/]
    ]
    for (const [b, message] of refused) assert.match(configError(() => broker(b)).message, message, JSON.stringify(b))
  })

  test('keeps given ports, viewer folder and TLS', () => {
    const c = parseConfig(HubConfig, { httpPort: 0, mqttPort: 65535, viewerDir: 'viewer/dist', tls: { key: 'K', cert: 'C' } }, 'x')
    assert.equal(c.httpPort, 0)
    assert.equal(c.mqttPort, 65535)
    assert.equal(c.viewerDir, 'viewer/dist')
    assert.deepEqual(c.tls, { key: 'K', cert: 'C' })
  })

  test('lists every bad port and a half-given TLS', () => {
    const e = configError(() => parseConfig(HubConfig, { httpPort: 70000, mqttPort: 1.5, tls: { key: 'K' } }, 'hub.json'))
    assert.match(e.message, /^invalid config in hub\.json:/)
    assert.match(e.message, /  - httpPort: /)
    assert.match(e.message, /  - mqttPort: /)
    assert.match(e.message, /  - tls\.cert: /)
  })

  test('refuses an empty hub name and unknown keys', () => {
    const e = configError(() => parseConfig(HubConfig, { hubName: '', port: 80 }, 'hub.json'))
    assert.match(e.message, /  - hubName: /)
    assert.match(e.message, /  - \(root\): .*port/)
  })
})

describe('parseConfig(DeviceConfig): audio', () => {
  const audioOf = (audio: unknown) => parseConfig(DeviceConfig, { audio }, 'doorbell.json').audio

  test('sources and speakers as strings or objects, with their defaults', () => {
    assert.deepEqual(audioOf({ source: 'none' }).source, { kind: 'none' })
    assert.deepEqual(audioOf({ source: 'test-tone' }).source, { kind: 'test-tone', frequencyHz: 660 })
    assert.deepEqual(audioOf({ source: { kind: 'test-tone', frequencyHz: 1000 } }).source, { kind: 'test-tone', frequencyHz: 1000 })
    assert.deepEqual(audioOf({ source: { kind: 'alsa', device: 'plughw:1,0' } }).source, { kind: 'alsa', device: 'plughw:1,0' })
    assert.deepEqual(audioOf({ source: { kind: 'pulse' } }).source, { kind: 'pulse' })
    assert.deepEqual(audioOf({ source: { kind: 'pulse', device: 'echo_cancel.source' } }).source, { kind: 'pulse', device: 'echo_cancel.source' })
    assert.deepEqual(audioOf({ speaker: 'none' }).speaker, { kind: 'none' })
    assert.deepEqual(audioOf({ speaker: { kind: 'wav', path: '/tmp/said.wav' } }).speaker, { kind: 'wav', path: '/tmp/said.wav' })
    assert.deepEqual(audioOf({ speaker: { kind: 'alsa', device: 'hw:CARD=Device,DEV=0' } }).speaker, { kind: 'alsa', device: 'hw:CARD=Device,DEV=0', optional: false })
    assert.deepEqual(audioOf({ speaker: { kind: 'pulse', optional: true } }).speaker, { kind: 'pulse', optional: true })
    assert.equal(audioOf({ timingLogSeconds: 5 }).timingLogSeconds, 5)
    assert.equal(audioOf({}).timingLogSeconds, undefined)
    assert.equal(audioOf({ frameMs: 10 }).frameMs, 10)
    assert.equal(audioOf({}).frameMs, undefined)
  })

  test('a malformed audio section is refused, saying where and what is expected', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ source: 'microphone' }, /audio\.source\.kind: audio\.source is "none", "test-tone"/],
      [{ source: { kind: 'alsa' } }, /audio\.source\.device:/],
      [{ source: { kind: 'alsa', device: 'hw:1,0; rm -rf /' } }, /audio\.source\.device: an ALSA device name such as plughw:1,0 \(list them with arecord -l/],
      [{ source: { kind: 'test-tone', frequencyHz: 5 } }, /audio\.source\.frequencyHz:/],
      [{ source: { kind: 'test-tone', volume: 3 } }, /audio\.source: .*volume/],
      [{ speaker: { kind: 'wav' } }, /audio\.speaker\.path:/],
      [{ speaker: { kind: 'bluetooth' } }, /audio\.speaker\.kind: audio\.speaker is "none"/],
      [{ speaker: { kind: 'alsa', device: 'plughw:1,0', optional: 'yes' } }, /audio\.speaker\.optional:/],
      [{ bitrateKbps: 1 }, /audio\.bitrateKbps:/],
      [{ timingLogSeconds: 0 }, /audio\.timingLogSeconds:/],
      [{ timingLogSeconds: 2.5 }, /audio\.timingLogSeconds:/],
      [{ frameMs: 5 }, /audio\.frameMs: audio\.frameMs is 10 or 20 \(ms\)/],
      [{ microphone: 'none' }, /audio: .*microphone/],
      [{ source: { kind: 'camera', url: 'rtsp://cam/stream' } }, /audio\.source: .*url/]
    ]
    for (const [audio, pattern] of cases) {
      const err = configError(() => parseConfig(DeviceConfig, { audio }, 'doorbell.json'))
      assert.match(err.message, pattern, JSON.stringify(audio))
    }
  })
})

describe('parseConfig(DeviceConfig): the RTSP camera\'s sound as the microphone', () => {
  const rtsp = { source: { kind: 'rtsp', url: 'rtsp://admin:secret@192.168.1.20:554/stream1' } }

  test('"camera" (a string or an object) with an RTSP camera', () => {
    assert.deepEqual(parseConfig(DeviceConfig, { camera: rtsp, audio: { source: 'camera' } }, 'doorbell.json').audio.source, { kind: 'camera' })
    assert.deepEqual(parseConfig(DeviceConfig, { camera: rtsp, audio: { source: { kind: 'camera' } } }, 'doorbell.json').audio.source, { kind: 'camera' })
  })

  test('refused without an RTSP camera, saying what to set instead', () => {
    for (const camera of [undefined, { source: { kind: 'test-pattern' } }, { source: { kind: 'v4l2' } }, { source: { kind: 'picam' } }]) {
      const err = configError(() => parseConfig(DeviceConfig, { ...(camera ? { camera } : {}), audio: { source: 'camera' } }, 'doorbell.json'))
      assert.match(err.message, /invalid config in doorbell\.json/)
      assert.match(err.message, /  - audio\.source: audio\.source "camera" is the sound of an RTSP camera: set camera\.source to \{ "kind": "rtsp", "url": … \}, or pick another audio source \(or "none"\)/, JSON.stringify(camera))
    }
  })
})

test('Web Push config: a contact is mailto: or https:, unknown keys refused', () => {
  assert.equal(parseConfig(HubConfig, { push: { contact: 'mailto:me@example.org' } }, 't').push.contact, 'mailto:me@example.org')
  assert.throws(() => parseConfig(HubConfig, { push: { contact: 'http://example.org' } }, 't'), /push\.contact: a mailto: or https: address/)
  assert.throws(() => parseConfig(HubConfig, { push: { vapidKey: 'x' } }, 't'), /push/)
})
