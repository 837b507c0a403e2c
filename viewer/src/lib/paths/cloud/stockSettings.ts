import { StockDoorbell, seedRingTopic, stockChannelName } from '@doorbell/core'
import type { SettingsStorage } from './settings'

/**
 * The stock KVS doorbells added to this browser ("Add a KVS doorbell"), kept in localStorage like
 * the other viewer settings and checked by core's `StockDoorbell` on the way in and out: a bad
 * stored entry is ignored and reported, never used. The AWS keys are the Away-from-home ones
 * (settings.ts); nothing here reaches the hub.
 */

export const STOCK_DOORBELLS_KEY = 'doorbell.kvsDoorbells'
const VERSION = 1
/** A screen watches a handful of doorbells; KVS allows 10 viewers per channel anyway. */
export const MAX_STOCK_DOORBELLS = 16

type Issues = ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string }>
const describe = (issues: Issues): string => issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ')

function defaultStorage (): SettingsStorage | undefined {
  try { return typeof localStorage === 'undefined' ? undefined : localStorage } catch { return undefined }
}

export interface LoadedStockDoorbells { doorbells: StockDoorbell[], problem: string | null }

export function loadStockDoorbells (storage: SettingsStorage | undefined = defaultStorage()): LoadedStockDoorbells {
  let raw: string | null
  try { raw = storage?.getItem(STOCK_DOORBELLS_KEY) ?? null } catch (err) { return { doorbells: [], problem: `cannot read this browser's storage (${(err as Error).message})` } }
  if (raw === null) return { doorbells: [], problem: null }
  let json: unknown
  try { json = JSON.parse(raw) } catch { return { doorbells: [], problem: 'the stored KVS doorbells are not JSON: ignored' } }
  const o = json as { v?: unknown, doorbells?: unknown }
  if (typeof json !== 'object' || json === null || o.v !== VERSION || !Array.isArray(o.doorbells)) return { doorbells: [], problem: 'the stored KVS doorbells have an unknown shape: ignored' }
  const doorbells: StockDoorbell[] = []
  const problems: string[] = []
  for (const [i, d] of o.doorbells.slice(0, MAX_STOCK_DOORBELLS).entries()) {
    const r = StockDoorbell.safeParse(d)
    if (r.success) doorbells.push(r.data)
    else problems.push(`stored KVS doorbell ${i + 1} ignored (${describe(r.error.issues)})`)
  }
  return { doorbells, problem: problems.length > 0 ? problems.join('; ') : null }
}

export type StockSaveResult = { ok: true } | { ok: false, error: string }

/** Checks every entry, then stores the list; stores nothing when one is invalid. Never throws. */
export function saveStockDoorbells (doorbells: StockDoorbell[], storage: SettingsStorage | undefined = defaultStorage()): StockSaveResult {
  if (doorbells.length > MAX_STOCK_DOORBELLS) return { ok: false, error: `at most ${MAX_STOCK_DOORBELLS} KVS doorbells` }
  for (const d of doorbells) {
    const r = StockDoorbell.safeParse(d)
    if (!r.success) return { ok: false, error: `a KVS doorbell is not valid (${describe(r.error.issues)})` }
  }
  if (!storage) return { ok: false, error: 'this browser keeps no settings (storage is blocked or absent)' }
  try {
    storage.setItem(STOCK_DOORBELLS_KEY, JSON.stringify({ v: VERSION, doorbells }))
    return { ok: true }
  } catch (err) {
    return { ok: false, error: `this browser refused to keep the settings (${(err as Error).message})` }
  }
}

// ---------------------------------------------------------------- the "Add a KVS doorbell" form

export interface StockFormFields {
  name: string
  region: string
  channel: string
  iotEndpoint: string
  /** Empty: `doorbell/<channel name>/ring`. */
  ringTopic: string
  iotWssUrl: string
  kvsEndpoint: string
}

export type StockFormResult = { ok: true, value: StockDoorbell } | { ok: false, errors: Record<string, string> }

export function emptyStockForm (): StockFormFields {
  return { name: '', region: '', channel: '', iotEndpoint: '', ringTopic: '', iotWssUrl: '', kvsEndpoint: '' }
}

/** The ring topic the form shows as its default for a channel (name or ARN) typed so far. */
export function defaultRingTopic (channel: string): string {
  const c = channel.trim()
  return c === '' ? 'doorbell/<channel>/ring' : seedRingTopic(stockChannelName(c))
}

function newStockId (): string {
  const bytes = new Uint8Array(8)
  globalThis.crypto.getRandomValues(bytes)
  return `kvs-${[...bytes].map((b) => (b % 36).toString(36)).join('')}`
}

/** Checks the form with core's schema; every error keyed by its field. `others` are the doorbells already added (no channel twice). */
export function validateStockForm (f: StockFormFields, others: StockDoorbell[] = [], id: string = newStockId()): StockFormResult {
  const opt = (s: string): string | undefined => s.trim() === '' ? undefined : s.trim()
  const channel = f.channel.trim()
  const candidate = {
    id,
    name: f.name.trim(),
    region: f.region.trim(),
    channel,
    iotEndpoint: f.iotEndpoint.trim(),
    ringTopic: opt(f.ringTopic) ?? seedRingTopic(stockChannelName(channel)),
    ...(opt(f.iotWssUrl) !== undefined ? { iotWssUrl: opt(f.iotWssUrl) } : {}),
    ...(opt(f.kvsEndpoint) !== undefined ? { kvsEndpoint: opt(f.kvsEndpoint) } : {})
  }
  const errors: Record<string, string> = {}
  const r = StockDoorbell.safeParse(candidate)
  if (!r.success) for (const i of r.error.issues) errors[i.path.map(String).join('.') || 'form'] ??= i.message
  if (others.some((o) => o.id !== id && stockChannelName(o.channel) === stockChannelName(channel) && o.region === candidate.region)) errors.channel ??= 'this channel is already added'
  if (!r.success || Object.keys(errors).length > 0) return { ok: false, errors }
  return { ok: true, value: r.data }
}
