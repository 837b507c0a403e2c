import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { HomeAssistantBroker } from '@doorbell/core'
import { BrokerSettingsError, type BrokerSettings } from '../homeAssistant/brokerSettings'
import { homeDerivedKey, sealer } from './homeSeal'
import type { PgSharedState } from './pgSharedState'

/** The row's name in `shared_documents`, also what the sealed password is bound to. */
const NAME = 'home-assistant-broker'

const Stored = z.strictObject({
  broker: z.strictObject({
    url: z.string(),
    username: z.string().nullable(),
    /** AES-256-GCM under a key derived from the home key (base64): never in clear. */
    sealedPassword: z.string().nullable(),
    /** The broker's CA certificate (PEM): public, kept as it is. */
    ca: z.string().nullable()
  }).nullable()
})
type Stored = z.infer<typeof Stored>

/**
 * Home Assistant's user-broker settings on a cluster: one row of `shared_documents`, so what the
 * owner saves through any hub is what the bridging hub (./bridgeLock.ts) connects with. The
 * password is sealed like the integration keys (./sealedKeys.ts); the CA, which the MQTT client
 * reads from a file, is written to this hub's `dataDir/home-assistant/` when read. PostgreSQL
 * down: `ClusterStoreError`, which the API answers with 503.
 */
export async function pgBrokerSettings (o: { trustDir: string, homeId: string, dataDir: string, db: PgSharedState }): Promise<BrokerSettings> {
  const box = sealer(await homeDerivedKey(o.trustDir, o.homeId, 'doorbell home-assistant broker v1'))
  const dir = join(o.dataDir, 'home-assistant')
  const caFile = join(dir, 'cluster-broker-ca.pem')

  const read = async (): Promise<Stored | undefined> => {
    const row = (await o.db.query<{ value: unknown }>('SELECT value FROM shared_documents WHERE name = $1', [NAME])).rows[0]
    if (row === undefined) return undefined
    const parsed = Stored.safeParse(row.value)
    if (!parsed.success) throw new BrokerSettingsError(`the user's broker kept in PostgreSQL is not the hub's: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
    return parsed.data
  }
  const write = async (value: Stored): Promise<void> => {
    await o.db.query(`INSERT INTO shared_documents (name, value, at) VALUES ($1, $2, $3)
      ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, at = EXCLUDED.at`, [NAME, JSON.stringify(value), Date.now()])
  }
  /** The CA where the MQTT client reads it; rewritten only when it changed. */
  const caPath = (pem: string): string => {
    let current: string | null = null
    try { current = readFileSync(caFile, 'utf8') } catch {}
    if (current !== pem) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeFileSync(`${caFile}.tmp`, pem, { mode: 0o600 })
      renameSync(`${caFile}.tmp`, caFile)
    }
    return caFile
  }
  const build = (url: string, username: string | null, password: string | null, ca: string | null): ReturnType<typeof HomeAssistantBroker.safeParse> =>
    HomeAssistantBroker.safeParse({
      url,
      ...(username !== null ? { username } : {}),
      ...(password !== null ? { password } : {}),
      ...(ca !== null ? { ca: caPath(ca) } : {})
    })

  const self: BrokerSettings = {
    async stored () {
      const kept = await read()
      if (kept === undefined) return undefined
      const b = kept.broker
      if (b === null) return null
      const password = b.sealedPassword === null ? null : box.unseal(NAME, Buffer.from(b.sealedPassword, 'base64')).toString('utf8')
      const built = build(b.url, b.username, password, b.ca)
      if (!built.success) throw new BrokerSettingsError(`the broker set in Home settings is no longer valid: ${built.error.issues[0]?.message ?? 'invalid'}`)
      return built.data
    },
    async save (request) {
      const kept = (await read())?.broker ?? null
      const sealedPassword = request.password === undefined ? kept?.sealedPassword ?? null : request.password === null ? null : box.seal(NAME, Buffer.from(request.password)).toString('base64')
      const ca = request.ca === undefined ? kept?.ca ?? null : request.ca
      const username = request.username ?? null
      // MQTT 3.1.1 sends a password only with a user name (MQTT-3.1.2-22), as the config's own rule says.
      if (sealedPassword !== null && username === null) throw new BrokerSettingsError('username: a password needs a username')
      // Checked with a stand-in password (the kept one stays sealed), as the hub will connect.
      const checked = HomeAssistantBroker.safeParse({ url: request.url, ...(username !== null ? { username } : {}), ...(sealedPassword !== null ? { password: 'x' } : {}), ...(ca !== null ? { ca: caFile } : {}) })
      if (!checked.success) {
        throw new BrokerSettingsError(checked.error.issues.slice(0, 3).map((i) => `${i.path.length > 0 ? i.path.join('.') : 'broker'}: ${i.message}`).join('; '))
      }
      // Checked first, written after: a refused request changes nothing.
      await write({ broker: { url: request.url, username, sealedPassword, ca } })
      const saved = await self.stored()
      if (saved === undefined || saved === null) throw new BrokerSettingsError('the saved broker could not be read back')
      return saved
    },
    async clear () {
      await write({ broker: null })
    }
  }
  return self
}
