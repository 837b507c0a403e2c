import { AwsCredentials, CloudDevice, ViewerCloudConfig } from '@doorbell/core'

/**
 * The cloud path's settings in this browser: the resident's own AWS credentials and the cloud
 * config (from the hub, possibly edited). One localStorage key; the credentials never leave this
 * browser (nothing here talks to the hub but fetchCloudConfig, which only reads). Everything read
 * back is checked by the core schemas: a malformed stored part is ignored and reported, never used.
 */

export const CLOUD_SETTINGS_KEY = 'doorbell.cloud'
const VERSION = 1

export interface CloudSettings {
  credentials?: AwsCredentials
  config?: ViewerCloudConfig
}

export type SettingsStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>

export interface LoadedCloudSettings {
  settings: CloudSettings
  /** What was stored but ignored, and why (null when all was well or nothing was stored). */
  problem: string | null
}

/** localStorage where there is one (a browser), else nothing (Node, or storage blocked). */
function defaultStorage (): SettingsStorage | undefined {
  try {
    return typeof localStorage === 'undefined' ? undefined : localStorage
  } catch {
    // Some browsers throw on mere access when site data is blocked.
    return undefined
  }
}

type Issues = ReadonlyArray<{ path: ReadonlyArray<PropertyKey>, message: string }>
const describe = (issues: Issues, count = 3): string => issues.slice(0, count).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ')

export function loadCloudSettings (storage: SettingsStorage | undefined = defaultStorage(), key = CLOUD_SETTINGS_KEY): LoadedCloudSettings {
  let raw: string | null
  try { raw = storage?.getItem(key) ?? null } catch (err) { return { settings: {}, problem: `cannot read this browser's storage (${(err as Error).message})` } }
  if (raw === null) return { settings: {}, problem: null }
  let json: unknown
  try { json = JSON.parse(raw) } catch { return { settings: {}, problem: 'the stored cloud settings are not JSON: ignored' } }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { settings: {}, problem: 'the stored cloud settings are not an object: ignored' }
  const o = json as Record<string, unknown>
  const unknown = Object.keys(o).filter((k) => k !== 'v' && k !== 'credentials' && k !== 'config')
  if (o.v !== VERSION || unknown.length > 0) return { settings: {}, problem: `the stored cloud settings have an unknown shape${unknown.length > 0 ? ` (${unknown.join(', ')})` : ''}: ignored` }
  const settings: CloudSettings = {}
  const problems: string[] = []
  if (o.credentials !== undefined) {
    const r = AwsCredentials.safeParse(o.credentials)
    if (r.success) settings.credentials = r.data
    else problems.push(`stored AWS credentials ignored (${describe(r.error.issues)})`)
  }
  if (o.config !== undefined) {
    const r = ViewerCloudConfig.safeParse(o.config)
    if (r.success) settings.config = r.data
    else problems.push(`stored cloud config ignored (${describe(r.error.issues)})`)
  }
  return { settings, problem: problems.length > 0 ? problems.join('; ') : null }
}

export type SaveResult = { ok: true } | { ok: false, error: string }

/** Checks both parts, then stores them; stores nothing when either is invalid. Never throws. */
export function saveCloudSettings (settings: CloudSettings, storage: SettingsStorage | undefined = defaultStorage(), key = CLOUD_SETTINGS_KEY): SaveResult {
  const out: { v: number, credentials?: AwsCredentials, config?: ViewerCloudConfig } = { v: VERSION }
  if (settings.credentials !== undefined) {
    const r = AwsCredentials.safeParse(settings.credentials)
    if (!r.success) return { ok: false, error: `the AWS credentials are not valid (${describe(r.error.issues)})` }
    out.credentials = r.data
  }
  if (settings.config !== undefined) {
    const r = ViewerCloudConfig.safeParse(settings.config)
    if (!r.success) return { ok: false, error: `the cloud config is not valid (${describe(r.error.issues)})` }
    out.config = r.data
  }
  if (!storage) return { ok: false, error: 'this browser keeps no settings (storage is blocked or absent)' }
  try {
    storage.setItem(key, JSON.stringify(out))
    return { ok: true }
  } catch (err) {
    return { ok: false, error: `this browser refused to keep the settings (${(err as Error).message})` }
  }
}

/** Forgets everything cloud in this browser. */
/** Where the page keeps the home's cloud config as the hub last gave it (for a page opened away from home). */
export const HUB_CLOUD_KEY = 'doorbell.cloud.home'

export function clearCloudSettings (storage: SettingsStorage | undefined = defaultStorage(), key = CLOUD_SETTINGS_KEY): void {
  try { storage?.removeItem(key) } catch {}
}

/** Forgets the credentials, keeps the config. */
export function forgetCloudCredentials (storage: SettingsStorage | undefined = defaultStorage(), key = CLOUD_SETTINGS_KEY): SaveResult {
  const { settings } = loadCloudSettings(storage, key)
  if (settings.config === undefined) { clearCloudSettings(storage, key); return { ok: true } }
  return saveCloudSettings({ config: settings.config }, storage, key)
}

/**
 * What the cloud path runs with: the config saved in this browser, else the hub's; and the
 * credentials saved here. Null when either is missing (the cloud path is not set up).
 */
export function cloudReady (settings: CloudSettings, hubConfig: ViewerCloudConfig | null | undefined): { config: ViewerCloudConfig, credentials: AwsCredentials } | null {
  const config = settings.config ?? hubConfig ?? undefined
  return config !== undefined && settings.credentials !== undefined ? { config, credentials: settings.credentials } : null
}

export type CloudConfigResult =
  | { ok: true, config: ViewerCloudConfig | null }
  | { ok: false, error: string }

/**
 * GET /api/cloud from the hub: the home's cloud config (paired members only), null when the home
 * has no cloud set up (404). `fetchJson` is the caller's authenticated GET; it throws on an error
 * status with the status in `status` (as HubApi's ApiError does). Never throws.
 */
export async function fetchCloudConfig (fetchJson: (path: string) => Promise<unknown>): Promise<CloudConfigResult> {
  let body: unknown
  try {
    body = await fetchJson('/api/cloud')
  } catch (err) {
    const status = (err as { status?: unknown }).status
    if (status === 404) return { ok: true, config: null }
    return { ok: false, error: `the hub did not give the cloud config (${(err as Error).message ?? String(err)})` }
  }
  const r = ViewerCloudConfig.safeParse(body)
  if (!r.success) return { ok: false, error: `the hub's cloud config has an unexpected shape (${describe(r.error.issues)})` }
  return { ok: true, config: r.data }
}

// ---------------------------------------------------------------- the settings form's model

/** What the form holds: text fields, as typed. */
export interface CloudFormFields {
  region: string
  iotEndpoint: string
  iotWssUrl: string
  kvsEndpoint: string
  devices: Array<{ deviceId: string, thingName: string, channelName: string }>
  accessKeyId: string
  secretAccessKey: string
  sessionToken: string
}

/** Field keys for errors: the top-level names, and `devices.{i}.{field}` for a doorbell's row. */
export type CloudFormErrors = Record<string, string>

export type CloudFormResult =
  | { ok: true, value: { config: ViewerCloudConfig, credentials: AwsCredentials } }
  | { ok: false, errors: CloudFormErrors }

export function emptyCloudForm (): CloudFormFields {
  return { region: '', iotEndpoint: '', iotWssUrl: '', kvsEndpoint: '', devices: [], accessKeyId: '', secretAccessKey: '', sessionToken: '' }
}

/** The form filled from a config and credentials (either may be absent). */
export function cloudFormFrom (config: ViewerCloudConfig | null | undefined, credentials?: AwsCredentials): CloudFormFields {
  return {
    region: config?.region ?? '',
    iotEndpoint: config?.iotEndpoint ?? '',
    iotWssUrl: config?.iotWssUrl ?? '',
    kvsEndpoint: config?.kvsEndpoint ?? '',
    devices: (config?.devices ?? []).map((d: CloudDevice) => ({ ...d })),
    accessKeyId: credentials?.accessKeyId ?? '',
    secretAccessKey: credentials?.secretAccessKey ?? '',
    sessionToken: credentials?.sessionToken ?? ''
  }
}

/** Checks the form with the core schemas; every error keyed by its field. */
export function validateCloudForm (f: CloudFormFields): CloudFormResult {
  const errors: CloudFormErrors = {}
  const firstOf = (issues: Issues): void => {
    for (const i of issues) {
      const key = i.path.map(String).join('.') || 'form'
      errors[key] ??= i.message
    }
  }
  const trimmed = (s: string): string => s.trim()
  const opt = (s: string): string | undefined => s.trim() === '' ? undefined : s.trim()
  const config = {
    region: trimmed(f.region),
    iotEndpoint: trimmed(f.iotEndpoint),
    ...(opt(f.iotWssUrl) !== undefined ? { iotWssUrl: opt(f.iotWssUrl) } : {}),
    ...(opt(f.kvsEndpoint) !== undefined ? { kvsEndpoint: opt(f.kvsEndpoint) } : {}),
    devices: f.devices.map((d) => ({ deviceId: trimmed(d.deviceId), thingName: trimmed(d.thingName), channelName: trimmed(d.channelName) }))
  }
  const credentials = {
    accessKeyId: trimmed(f.accessKeyId),
    // A secret may legitimately contain any character but surrounding spaces are a paste accident.
    secretAccessKey: trimmed(f.secretAccessKey),
    ...(opt(f.sessionToken) !== undefined ? { sessionToken: opt(f.sessionToken) } : {})
  }
  const c = ViewerCloudConfig.safeParse(config)
  if (!c.success) {
    firstOf(c.error.issues)
    if (errors.devices !== undefined && config.devices.length === 0) errors.devices = 'no doorbell: the hub gives them when the home has the cloud set up (or add one under Advanced)'
  }
  const k = AwsCredentials.safeParse(credentials)
  if (!k.success) firstOf(k.error.issues)
  const ids = config.devices.map((d) => d.deviceId)
  ids.forEach((id, i) => { if (ids.indexOf(id) !== i) errors[`devices.${i}.deviceId`] ??= 'this doorbell is listed twice' })
  if (!c.success || !k.success || Object.keys(errors).length > 0) return { ok: false, errors }
  return { ok: true, value: { config: c.data, credentials: k.data } }
}

/** Whether two configs say the same (so a form left as the hub gave it stores no copy, and later hub changes apply). */
export function sameCloudConfig (a: ViewerCloudConfig | null | undefined, b: ViewerCloudConfig | null | undefined): boolean {
  if (!a || !b) return a === b
  const flat = (c: ViewerCloudConfig): string => JSON.stringify([
    c.region, c.iotEndpoint, c.iotWssUrl ?? null, c.kvsEndpoint ?? null, c.devices.map((d) => [d.deviceId, d.thingName, d.channelName])
  ])
  return flat(a) === flat(b)
}

/**
 * The config and credentials a CloudClient is given, checked: both as their schemas say, or the
 * problem in words (the first two issues of the first part that fails) and where to fix it.
 */
export function checkCloudSetup (config: unknown, credentials: unknown): { ok: true, config: ViewerCloudConfig, credentials: AwsCredentials } | { ok: false, problem: string } {
  const c = ViewerCloudConfig.safeParse(config)
  if (!c.success) return { ok: false, problem: `the cloud config is not valid (${describe(c.error.issues, 2)}): check them in Settings` }
  const k = AwsCredentials.safeParse(credentials)
  if (!k.success) return { ok: false, problem: `the AWS credentials are not valid (${describe(k.error.issues, 2)}): check them in Settings` }
  return { ok: true, config: c.data, credentials: k.data }
}
