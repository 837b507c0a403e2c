import { StockDoorSetting, describeError, importPublicKey, open, type Logger, type SigningKey } from '@doorbell/core'

/**
 * This doorbell's owner settings (one signed record, core's `StockDoorSetting`): "accept unsigned
 * OPEN_DOOR from KVS viewers" and "live preview", each the owner's when set (in Home settings; the
 * hub signs the record with the home key and sends it with the revocation list), else the
 * config's (`cloud.acceptUnsignedOpenDoor`, `livePreview`: the defaults). A record is
 * taken only signed by the home key pinned at pairing, for this home and this doorbell, and newer
 * (higher `seq`) than the one kept; it is kept on disk so it holds across restarts and while the
 * hub is away. Anything else is logged and changes nothing.
 */
export interface OwnerStockSettingOptions {
  homeId: string
  deviceId: string
  /** The home's public key, pinned at pairing. */
  homeKey: string
  /** The cloud config's value, until the owner says otherwise. */
  configDefault: boolean
  /** The kept token, if any (read at start). */
  kept?: string | null
  /** Keeps a newer token (the doorbell writes it to dataDir). */
  keep?: (token: string) => void
  log: Logger
}

export class OwnerStockSetting {
  private key: SigningKey | null = null
  private current: StockDoorSetting | null = null

  private constructor (private readonly o: OwnerStockSettingOptions) {}

  static async start (o: OwnerStockSettingOptions): Promise<OwnerStockSetting> {
    const s = new OwnerStockSetting(o)
    s.key = await importPublicKey(o.homeKey)
    if (o.kept) await s.take([o.kept], 'disk')
    return s
  }

  /** Whether an unsigned OPEN_DOOR from a stock KVS viewer opens the door, now. */
  get acceptUnsignedOpenDoor (): boolean {
    return this.current?.acceptUnsignedOpenDoor ?? this.o.configDefault
  }

  /** Where the value comes from, for the log and the refusal message. */
  get source (): 'owner' | 'config' { return this.current?.acceptUnsignedOpenDoor === undefined ? 'config' : 'owner' }

  /** The owner's live preview setting; undefined: not set (the config decides). Read at each new ring. */
  get livePreview (): boolean | undefined { return this.current?.livePreview }

  /** The owner's clip setting (docs/history.md): on only when the owner turned it on. Read at each new ring. */
  get clip (): boolean { return this.current?.clip === true }

  /** The hub's tokens (one per doorbell of the home): this doorbell's, if valid and newer, is taken. Resolves whether it changed. */
  async take (tokens: readonly string[], from: string): Promise<boolean> {
    const log = this.o.log
    if (this.key === null) return false
    let changed = false
    for (const token of tokens) {
      let opened
      try { opened = await open(StockDoorSetting, token, this.key) } catch (err) { log.warn('refused an owner stock setting', { from, error: describeError(err) }); continue }
      if (!opened.ok) { log.warn('refused an owner stock setting: not signed by this home', { from, problem: opened.problem, error: opened.message }); continue }
      const s = opened.value
      if (s.home !== this.o.homeId || s.device !== this.o.deviceId) continue // another doorbell's (or home's)
      if (this.current !== null && s.seq <= this.current.seq) continue
      this.current = s
      changed = true
      if (from !== 'disk') { try { this.o.keep?.(token) } catch (err) { log.error('could not keep the owner stock setting', { error: describeError(err) }) } }
      if (s.acceptUnsignedOpenDoor === true) log.warn('the owner turned on "accept unsigned OPEN_DOOR from KVS viewers": anyone with access to this doorbell\'s KVS channel can open the door, and no person is named in the audit log', { from, seq: s.seq })
      else if (s.acceptUnsignedOpenDoor === false) log.info('the owner turned off "accept unsigned OPEN_DOOR from KVS viewers"', { from, seq: s.seq })
      if (s.livePreview !== undefined) log.info(`the owner turned ${s.livePreview ? 'on' : 'off'} live preview (from the next ring)`, { from, seq: s.seq })
      if (s.clip !== undefined) log.info(`the owner turned ${s.clip ? 'on' : 'off'} the ring clip (from the next ring)`, { from, seq: s.seq })
    }
    return changed
  }
}
