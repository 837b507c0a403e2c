import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { HomeAssistantBroker, type HomeAssistantBrokerRequest } from '@doorbell/core'

/**
 * The user's broker as the owner set it in Home settings, kept in `dataDir/home-assistant/`
 * (0700): `broker.json` (the URL and user name, or `null` for "none"), `broker-password` and
 * `broker-ca.pem` (0600). What the module connects with is built from them as the hub's config
 * would give it (`passwordFile`, `ca` paths) and parsed by the same `HomeAssistantBroker` schema.
 * No file: the hub's config file decides (`homeAssistant.broker`). Asynchronous because a
 * cluster's hubs keep them in PostgreSQL instead (hub/src/cluster/pgBrokerSettings.ts).
 */

const DIR = 'home-assistant'
const SETTINGS = 'broker.json'
const PASSWORD = 'broker-password'
const CA = 'broker-ca.pem'

const Stored = z.strictObject({
  broker: z.strictObject({ url: z.string(), username: z.string().nullable() }).nullable()
})

export class BrokerSettingsError extends Error {
  override readonly name = 'BrokerSettingsError'
}

export interface BrokerSettings {
  /** What Home settings set: a broker, `null` (none), or `undefined` (nothing set there: the config file decides). */
  stored: () => Promise<HomeAssistantBroker | null | undefined>
  /**
   * Checks `request` against the hub's schema (with the password and CA kept or removed as it
   * says) and, only if it passes, writes it. Throws `BrokerSettingsError` saying what is wrong,
   * and then nothing changed.
   */
  save: (request: HomeAssistantBrokerRequest) => Promise<HomeAssistantBroker>
  /** Home settings say: no user's broker. */
  clear: () => Promise<void>
}

export function brokerSettings (dataDir: string): BrokerSettings {
  const dir = join(dataDir, DIR)
  const file = (name: string): string => join(dir, name)
  const readOr = (name: string): string | null => {
    try { return readFileSync(file(name), 'utf8') } catch { return null }
  }
  /** Written whole or not at all. */
  const write = (name: string, text: string): void => {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tmp = `${file(name)}.tmp`
    writeFileSync(tmp, text, { mode: 0o600 })
    renameSync(tmp, file(name))
  }
  const build = (url: string, username: string | null, hasPassword: boolean, hasCa: boolean): z.ZodSafeParseResult<HomeAssistantBroker> =>
    HomeAssistantBroker.safeParse({
      url,
      ...(username !== null ? { username } : {}),
      ...(hasPassword ? { passwordFile: file(PASSWORD) } : {}),
      ...(hasCa ? { ca: file(CA) } : {})
    })

  return {
    async stored () {
      const text = readOr(SETTINGS)
      if (text === null) return undefined
      const parsed = Stored.safeParse(JSON.parse(text))
      if (!parsed.success) throw new BrokerSettingsError(`${file(SETTINGS)} is not the hub's: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
      const b = parsed.data.broker
      if (b === null) return null
      const built = build(b.url, b.username, readOr(PASSWORD) !== null, readOr(CA) !== null)
      if (!built.success) throw new BrokerSettingsError(`the broker set in Home settings is no longer valid: ${built.error.issues[0]?.message ?? 'invalid'}`)
      return built.data
    },
    async save (request) {
      const hasPassword = request.password === undefined ? readOr(PASSWORD) !== null : request.password !== null
      const hasCa = request.ca === undefined ? readOr(CA) !== null : request.ca !== null
      const username = request.username ?? null
      // MQTT 3.1.1 sends a password only with a user name (MQTT-3.1.2-22), as the config's own rule says.
      if (hasPassword && username === null) throw new BrokerSettingsError('username: a password needs a username')
      const built = build(request.url, username, hasPassword, hasCa)
      if (!built.success) {
        throw new BrokerSettingsError(built.error.issues.slice(0, 3).map((i) => `${i.path.length > 0 ? i.path.join('.') : 'broker'}: ${i.message}`).join('; '))
      }
      // Checked first, written after: a refused request changes nothing.
      if (request.password === null) rmSync(file(PASSWORD), { force: true })
      else if (request.password !== undefined) write(PASSWORD, request.password)
      if (request.ca === null) rmSync(file(CA), { force: true })
      else if (request.ca !== undefined) write(CA, request.ca)
      write(SETTINGS, JSON.stringify({ broker: { url: request.url, username } }))
      return built.data
    },
    async clear () {
      rmSync(file(PASSWORD), { force: true })
      rmSync(file(CA), { force: true })
      write(SETTINGS, JSON.stringify({ broker: null }))
    }
  }
}
