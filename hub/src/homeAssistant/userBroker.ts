import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { ConfigError, type HomeAssistantBroker, type Logger } from '@doorbell/core'

/** Where the bridge's messages go: the hub's own broker, or the user's. */
export interface Outlet {
  name: string
  /** Publishes now; false when the outlet is not connected (a retained message is sent again on connecting). */
  publish: (topic: string, payload: string, retain: boolean) => boolean
}

export interface UserBrokerHandlers {
  /** Connected (first time or again): the bridge republishes everything retained. */
  connected: () => void
  /** A message on a topic the bridge subscribed to (Home Assistant's status, lock commands). */
  message: (topic: string, payload: Buffer) => void
}

export interface UserBroker extends Outlet {
  /**
   * Starts connecting, and resolves at once: the doorbells never wait for Home Assistant's broker.
   * Only a config that cannot be used (a file that cannot be read) rejects.
   */
  start: (subscriptions: string[], handlers: UserBrokerHandlers) => Promise<void>
  stop: () => Promise<void>
  /** Connected now, and the last reason it could not connect (in words), for Home settings. */
  status: () => { connected: boolean, problem: string | null }
}

/** How long the hub waits between reconnections to the user's broker. */
const RECONNECT_MS = 5000
/** How long one connection attempt may take. */
const CONNECT_MS = 10_000

/** The topic and words of the hub's own availability on the user's broker: its will says offline. */
export interface BridgeWill { topic: string, online: string, offline: string }

/**
 * The hub as a client of the user's broker (the Mosquitto Home Assistant already uses): TLS with
 * the broker's CA, a username and password, a will so that Home Assistant marks every doorbell
 * unavailable when the hub goes away, and reconnection every 5 s. The hub starts whether or not
 * that broker answers (the doorbells do not depend on Home Assistant); why it cannot connect (a
 * wrong password, an unknown CA) is logged once per change, in words.
 */
export function userBroker (o: { config: HomeAssistantBroker, home: string, will: BridgeWill, log: Logger }): UserBroker {
  const { config, log } = o
  const where = redact(config.url)
  let client: MqttClient | null = null
  let problem: string | null = null

  /** Read at start: a file that cannot be read is a start-up error naming it. */
  const options = (): IClientOptions => {
    const read = (path: string, what: string): string => {
      try { return readFileSync(path, 'utf8') } catch (err) {
        throw new ConfigError(`homeAssistant.broker.${what}: cannot read ${path}: ${(err as Error).message}`)
      }
    }
    return {
      clientId: config.clientId ?? `doorbell-hub-${o.home}`,
      username: config.username,
      password: config.passwordFile !== undefined ? read(config.passwordFile, 'passwordFile').trim() : config.password,
      ...(config.ca !== undefined ? { ca: read(config.ca, 'ca') } : {}),
      rejectUnauthorized: true,
      protocolVersion: 4,
      clean: true,
      keepalive: 30,
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: CONNECT_MS,
      will: { topic: o.will.topic, payload: Buffer.from(o.will.offline), qos: 1, retain: true }
    }
  }

  return {
    name: `the broker at ${where}`,
    publish (topic, payload, retain) {
      if (client === null || !client.connected) return false
      client.publish(topic, payload, { qos: 1, retain }, (err) => {
        if (err) log.warn('could not publish to the user\'s broker', { broker: where, topic, error: err.message })
      })
      return true
    },
    async start (subscriptions, handlers) {
      const opts = options()
      const c = mqtt.connect(config.url, opts)
      client = c
      // Said once per change, not every 5 s: a wrong password stays one clear line in the log.
      let lastProblem: string | null = null
      c.on('message', (topic, payload) => { handlers.message(topic, payload) })
      c.on('connect', () => {
        log.info('connected to the user\'s broker', { broker: where, clientId: opts.clientId })
        lastProblem = null
        problem = null
        c.publish(o.will.topic, o.will.online, { qos: 1, retain: true })
        c.subscribe(subscriptions, { qos: 1 }, (err, granted) => {
          if (err) { log.warn('could not subscribe on the user\'s broker', { broker: where, error: err.message }); return }
          const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic)
          if (refused.length > 0) log.warn('the user\'s broker refused subscriptions: check its ACL for the hub\'s user', { broker: where, topics: refused.join(' ') })
        })
        handlers.connected()
      })
      c.on('error', (err) => {
        const said = explain(err)
        problem = said
        if (said === lastProblem) return
        lastProblem = said
        log.error('cannot reach the user\'s broker for Home Assistant; retrying every 5 s', { broker: where, error: said })
      })
      c.on('offline', () => { if (lastProblem === null) log.warn('lost the user\'s broker; retrying every 5 s', { broker: where }) })
    },
    status: () => ({ connected: client?.connected === true, problem }),
    async stop () {
      const c = client
      client = null
      if (c === null) return
      // A clean goodbye: the will is not sent, so say offline ourselves first.
      await new Promise<void>((resolve) => {
        if (!c.connected) { c.end(true, {}, () => { resolve() }); return }
        c.publish(o.will.topic, o.will.offline, { qos: 1, retain: true }, () => { c.end(false, {}, () => { resolve() }) })
      })
    }
  }
}

/** The URL without any user or password in it. */
function redact (url: string): string {
  const u = new URL(url)
  u.username = ''
  u.password = ''
  return u.toString().replace(/\/$/, '')
}

/** What a broker's refusal means, in words (MQTT 3.1.1 CONNACK codes; TLS errors as Node says them). */
function explain (err: Error & { code?: number | string }): string {
  switch (err.code) {
    case 4: return 'bad username or password (CONNACK 4)'
    case 5: return 'not authorized (CONNACK 5): check the broker\'s ACL for this user'
    case 2: return 'the client id was refused (CONNACK 2)'
    case 'ECONNREFUSED': return `${err.message}: is the broker running, on this port?`
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': return `${err.message}: give the broker's CA certificate in homeAssistant.broker.ca`
    case 'ERR_TLS_CERT_ALTNAME_INVALID': return `${err.message}: connect by a name the broker's certificate covers`
    default: return err.message
  }
}
