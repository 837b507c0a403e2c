import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Id, StockDoorSetting, StockDoorSettingView, sign, type Logger } from '@doorbell/core'
import { z } from 'zod'
import { loadOrCreateHomeKey, type HomeKey } from './homeKey'

/**
 * The owner's settings per doorbell: "accept unsigned OPEN_DOOR from KVS viewers" (docs/cloud.md),
 * "live preview" (docs/preview.md) and "record a clip of each ring" (docs/history.md), one record
 * per doorbell, kept in `stock-settings.json` beside the home key (a file of records with the first
 * setting only reads the same; PostgreSQL in a cluster), each signed
 * by the home key as a `StockDoorSetting` and sent to the doorbells with the revocation list (the
 * broker module), so a doorbell takes it only from its own home, for itself, newer than the one it has.
 */

export const STOCK_SETTINGS_FILE = 'stock-settings.json'
const Stored = z.strictObject({ v: z.literal(1), settings: z.array(StockDoorSettingView).max(1024) })

/** What the owner changes: the settings given; the others keep their value (or stay unset). */
export interface DoorbellSettingsChange {
  acceptUnsignedOpenDoor?: boolean
  livePreview?: boolean
  clip?: boolean
}

export class StockSettingError extends Error {
  override readonly name = 'StockSettingError'
}

/**
 * Where the settings live: a file beside the home key on one hub, PostgreSQL in a cluster
 * (../cluster/pgSharedState.ts), so a change through any hub is what every hub serves and signs.
 */
export interface StockSettingsStore {
  list: () => Promise<StockDoorSettingView[]>
  /** Applies `change` to the doorbell's record with the next seq (one more than the stored one, atomically) and returns it. */
  change: (deviceId: string, change: DoorbellSettingsChange, at: number) => Promise<StockDoorSettingView>
}

/** One hub's store: `stock-settings.json` in `dir`, written whole (tmp, rename), read once at start. */
export class FileStockSettingsStore implements StockSettingsStore {
  private readonly byDevice = new Map<string, StockDoorSettingView>()
  private constructor (private readonly dir: string) {}

  /** A file that cannot be parsed stops the hub: the owner's word is not dropped silently. */
  static async open (dir: string): Promise<FileStockSettingsStore> {
    const s = new FileStockSettingsStore(dir)
    let raw: string | null = null
    try { raw = await readFile(join(dir, STOCK_SETTINGS_FILE), 'utf8') } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (raw !== null) {
      const parsed = Stored.safeParse((() => { try { return JSON.parse(raw) as unknown } catch { return null } })())
      if (!parsed.success) throw new StockSettingError(`${join(dir, STOCK_SETTINGS_FILE)} is not a stock-settings file: fix or remove it (the doorbells keep their last settings)`)
      for (const v of parsed.data.settings) s.byDevice.set(v.deviceId, v)
    }
    return s
  }

  async list (): Promise<StockDoorSettingView[]> { return [...this.byDevice.values()] }

  async change (deviceId: string, change: DoorbellSettingsChange, at: number): Promise<StockDoorSettingView> {
    const old = this.byDevice.get(deviceId)
    const next: StockDoorSettingView = { ...old, ...change, deviceId, seq: (old?.seq ?? 0) + 1, at }
    this.byDevice.set(deviceId, next)
    try {
      const file = join(this.dir, STOCK_SETTINGS_FILE)
      await writeFile(`${file}.tmp`, JSON.stringify({ v: 1, settings: [...this.byDevice.values()] }), { mode: 0o600 })
      await rename(`${file}.tmp`, file)
    } catch (err) {
      if (old) this.byDevice.set(deviceId, old); else this.byDevice.delete(deviceId)
      throw err
    }
    return next
  }
}

export class HomeStockSettings {
  private readonly tokenCache = new Map<string, { seq: number, token: string }>()
  private readonly listeners = new Set<() => void>()

  private constructor (private readonly o: { homeId: string, log: Logger }, private readonly key: HomeKey, private readonly store: StockSettingsStore) {}

  /** After the trust store started (the home key exists in `dir`); `store`: the cluster's, else the file in `dir`. */
  static async start (o: { dir: string, homeId: string, log: Logger, store?: StockSettingsStore }): Promise<HomeStockSettings> {
    const key = await loadOrCreateHomeKey(o.dir)
    return new HomeStockSettings(o, key, o.store ?? await FileStockSettingsStore.open(o.dir))
  }

  async list (): Promise<StockDoorSettingView[]> { return await this.store.list() }

  /** Changes a doorbell's settings (the caller checked that an owner asks, for a paired doorbell); the doorbells are told. */
  async set (deviceId: string, change: DoorbellSettingsChange, now = Date.now()): Promise<StockDoorSettingView> {
    if (!Id.safeParse(deviceId).success) throw new StockSettingError('not a device id')
    if (change.acceptUnsignedOpenDoor === undefined && change.livePreview === undefined && change.clip === undefined) throw new StockSettingError('no setting to change')
    const next = await this.store.change(deviceId, change, now)
    if (change.acceptUnsignedOpenDoor !== undefined) this.o.log[change.acceptUnsignedOpenDoor ? 'warn' : 'info']('the owner set "accept unsigned OPEN_DOOR from KVS viewers"', { device: deviceId, on: change.acceptUnsignedOpenDoor, seq: next.seq })
    if (change.livePreview !== undefined) this.o.log.info('the owner set "live preview"', { device: deviceId, on: change.livePreview, seq: next.seq })
    if (change.clip !== undefined) this.o.log.info('the owner set "record a clip of each ring"', { device: deviceId, on: change.clip, seq: next.seq })
    for (const l of this.listeners) { try { l() } catch (err) { this.o.log.error('a stock-setting listener threw', { error: (err as Error).message }) } }
    return next
  }

  /** Each doorbell's setting, signed by the home. */
  async tokens (): Promise<string[]> {
    const out: string[] = []
    for (const v of await this.store.list()) {
      const cached = this.tokenCache.get(v.deviceId)
      if (cached?.seq === v.seq) { out.push(cached.token); continue }
      const token = await sign(StockDoorSetting, {
        home: this.o.homeId,
        device: v.deviceId,
        seq: v.seq,
        at: v.at,
        ...(v.acceptUnsignedOpenDoor !== undefined ? { acceptUnsignedOpenDoor: v.acceptUnsignedOpenDoor } : {}),
        ...(v.livePreview !== undefined ? { livePreview: v.livePreview } : {}),
        ...(v.clip !== undefined ? { clip: v.clip } : {})
      }, this.key.privateKey)
      this.tokenCache.set(v.deviceId, { seq: v.seq, token })
      out.push(token)
    }
    return out
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}
