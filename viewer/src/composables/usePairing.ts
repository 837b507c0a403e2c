import { computed, ref, shallowRef } from 'vue'
import { Grant, PairingCode, exportPublicKey, peek } from '@doorbell/core'
import { ApiError, HubApi, MalformedAnswerError } from '../lib/api'
import { forgetPairing, loadPairing, newKeyPair, savePairing, type StoredPairing } from './keystore'
import { HUB_CLOUD_KEY, clearCloudSettings } from '../lib/paths/cloud/settings'

/**
 * Pairing this screen with the home: a one-time code (typed, or from an invitation link
 * `/pair#code=…`) for a signed grant, with a key pair made here. The pure parts are exported and
 * unit-tested (test/pairing.test.ts).
 */

// ---------------------------------------------------------------- pure parts

/** The code an invitation link carries: `/pair#code=…` (kept out of server logs) or `?code=`. */
export function codeFromUrl (at: Pick<Location, 'search' | 'hash'>): string | null {
  const fromHash = new URLSearchParams(at.hash.replace(/^#/, '')).get('code')
  const code = fromHash ?? new URLSearchParams(at.search).get('code')
  return code?.trim() ? code.trim() : null
}

/** The address without the code (and `/pair` becomes `/`), or null when there is nothing to remove. */
export function urlWithoutCode (at: Pick<Location, 'pathname' | 'search' | 'hash'>): string | null {
  const search = new URLSearchParams(at.search)
  const hash = new URLSearchParams(at.hash.replace(/^#/, ''))
  const hadCode = search.has('code') || hash.has('code')
  if (!hadCode && at.pathname !== '/pair') return null
  search.delete('code')
  hash.delete('code')
  const s = search.toString()
  const h = hash.toString()
  return `${at.pathname === '/pair' ? '/' : at.pathname}${s ? `?${s}` : ''}${h ? `#${h}` : ''}`
}

export type CodeCheck = { ok: true, code: string } | { ok: false, message: string }

/** As the hub reads a code: case, spaces and dashes do not matter; 10 characters without look-alikes. */
export function normaliseCode (raw: string): CodeCheck {
  const parsed = PairingCode.safeParse(raw)
  return parsed.success ? { ok: true, code: parsed.data } : { ok: false, message: 'A code is 10 letters and digits, as printed or shown by the owner (for example ABCDE-FGHJK).' }
}

/** `ABCDEFGHJK` → `ABCDE-FGHJK`, easier to read aloud. */
export function displayCode (code: string): string {
  const n = normaliseCode(code)
  return n.ok ? `${n.code.slice(0, 5)}-${n.code.slice(5)}` : code
}

/**
 * The invitation's QR as markup to put in the page, or null. It comes from our own hub, but it
 * is inserted as HTML, so only plain SVG is let through: nothing that runs script.
 */
export function safeSvg (markup: unknown): string | null {
  if (typeof markup !== 'string' || markup.length > 200_000) return null
  const svg = markup.trim()
  if (!/^<svg[\s>]/i.test(svg) || !/<\/svg>$/i.test(svg)) return null
  if (/<\s*(script|foreignObject|iframe|object|embed)\b/i.test(svg)) return null
  if (/[\s"'/]on[a-z]+\s*=/i.test(svg)) return null
  if (/javascript:|data:text\/html/i.test(svg)) return null
  return svg
}

/** The grant inside a credential, unverified: for what the screen says (role, until when), never for a decision. */
export function grantOf (credential: string): Grant | null {
  const opened = peek(Grant, credential)
  return opened.ok ? opened.value : null
}

export const REMOVED = 'This screen was removed from the home by its owner.'
export const ACCESS_ENDED = 'This screen\'s access to the home has ended.'

/** What the pairing screen says when the hub stops accepting this screen's token. */
export function removedNotice (credential: string, now = Date.now()): string {
  const exp = grantOf(credential)?.exp
  return exp != null && now >= exp ? ACCESS_ENDED : REMOVED
}

/** Why pairing failed, in words that say what to do. */
export function pairErrorText (err: unknown): string {
  if (err instanceof ApiError) {
    const hubSays = err.message.startsWith('HTTP ') ? null : err.message
    switch (err.status) {
      case 0: return `Cannot reach the hub (${err.message.replace(/^cannot reach the hub \((.*)\)$/, '$1')}). Check that this page was opened from the hub, then try again.`
      // The hub's own words when it gave them (they say what to do); ours otherwise.
      case 401: return hubSays ? sentence(capital(hubSays)) : 'That code is not valid (unknown, used or expired). Ask the owner for a new code.'
      case 429: return hubSays ? `Too many tries: ${sentence(hubSays)}` : 'Too many tries. Wait a minute, then try again.'
      case 400: return `The hub refused the request: ${sentence(hubSays ?? 'bad request')}`
      default: return `The hub could not pair this screen: ${sentence(err.message)}`
    }
  }
  if (err instanceof MalformedAnswerError) return `The hub answered something unexpected: ${err.message}. Is the hub up to date?`
  const e = err as Error
  if (e?.name === 'NotSupportedError') return 'This browser cannot make the screen\'s key (Ed25519). Use a current Chrome, Edge, Firefox or Safari.'
  return e?.message ? capital(e.message) : String(err)
}

/** An owner action that failed ("create the code", "remove Kitchen tablet"), in words. */
export function apiErrorText (err: unknown, doing: string): string {
  const why = err instanceof ApiError
    ? err.status === 0 ? 'the hub cannot be reached; try again when it is back'
      : err.status === 403 ? 'only the home\'s owner may do this'
        : err.status === 401 ? 'this screen is no longer a member of the home'
          : err.message
    : (err as Error)?.message ?? String(err)
  return `Could not ${doing}: ${sentence(why)}`
}

/** Ends with one full stop. */
const sentence = (s: string): string => s.replace(/[.\s]+$/, '') + '.'
const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1)

/** Why this page cannot make a key here, or null. WebCrypto exists only in secure contexts (https, or http on localhost). */
export function keySupportProblem (g: { isSecureContext?: boolean, crypto?: { subtle?: unknown } } = globalThis): string | null {
  if (g.crypto?.subtle) return null
  return g.isSecureContext === false
    ? 'This page was opened over plain http, where the browser cannot keep a key. Open the hub\'s https address (install the home\'s certificate first), or use it on the hub\'s own machine (localhost).'
    : 'This browser has no WebCrypto, so it cannot make the screen\'s key. Use a current browser.'
}

export interface PairThisScreen {
  api: Pick<HubApi, 'pair'>
  code: string
  viewerId: string
  name: string
  newKeyPair?: () => Promise<CryptoKeyPair>
  save?: (pairing: StoredPairing) => Promise<void>
  signal?: AbortSignal
}

/**
 * The pairing itself: a key pair made here, its public half and the code to the hub, the grant
 * back; checked (it must name this viewer and this key) and stored.
 */
export async function pairThisScreen (o: PairThisScreen): Promise<StoredPairing> {
  const code = normaliseCode(o.code)
  if (!code.ok) throw new TypeError(code.message)
  const name = o.name.trim()
  if (!name) throw new TypeError('Give this screen a name the household will recognise, e.g. "Kitchen tablet".')
  const key = await (o.newKeyPair ?? newKeyPair)()
  const publicKey = await exportPublicKey(key.publicKey)
  const res = await o.api.pair({ kind: 'viewer', code: code.code, id: o.viewerId, name, key: publicKey }, o.signal ? { signal: o.signal } : {})
  const grant = res.credential ? grantOf(res.credential) : null
  if (!res.credential || !grant || res.member.role === null) throw new MalformedAnswerError('POST /api/pair', 'no viewer credential')
  if (grant.sub !== o.viewerId || grant.key !== publicKey || grant.id !== res.member.id || grant.home !== res.homeId) {
    throw new MalformedAnswerError('POST /api/pair', 'the credential is not for this screen and its key')
  }
  const pairing: StoredPairing = {
    viewerId: o.viewerId,
    memberId: res.member.id,
    token: res.token,
    credential: res.credential,
    homeId: res.homeId,
    role: res.member.role,
    name: res.member.name,
    key
  }
  try {
    await (o.save ?? savePairing)(pairing)
  } catch (err) {
    throw new Error(`Paired, but this browser would not keep the pairing (${(err as Error).message}). Ask the owner to remove this screen and for a new code.`)
  }
  return pairing
}

// ---------------------------------------------------------------- the composable

export type PairingPhase = 'loading' | 'unpaired' | 'paired'

/**
 * This browser's pairing for the page: loaded from IndexedDB, made with a code, forgotten when
 * the hub no longer accepts it. `api` is the hub's API with this screen's token (null unpaired);
 * any 401 on it forgets the pairing.
 */
export function usePairing (o: { viewerId: string, base?: string }) {
  const current = shallowRef<StoredPairing | null>(null)
  const phase = ref<PairingPhase>('loading')
  /** Why the pairing screen is shown again (removed by the owner, access ended). */
  const notice = ref<string | null>(null)
  /** Trouble with the browser's storage, shown on the pairing screen. */
  const problem = ref<string | null>(null)
  const code = codeFromUrl(location) ?? ''
  const publicApi = new HubApi({ base: o.base ?? '' })

  const clearCodeFromUrl = (): void => {
    const clean = urlWithoutCode(location)
    if (clean !== null) history.replaceState(history.state, '', clean)
  }

  let forgetting: Promise<void> | null = null
  /** Idempotent: every refused request may call it. */
  const forget = async (why: string | null): Promise<void> => {
    if (forgetting) return await forgetting
    const was = current.value
    forgetting = (async () => {
      notice.value = why ?? (was ? removedNotice(was.credential) : null)
      current.value = null
      phase.value = 'unpaired'
      // A screen that is no longer a member keeps nothing of the home: not its AWS keys either.
      if (typeof localStorage !== 'undefined') {
        clearCloudSettings(localStorage)
        try { localStorage.removeItem(HUB_CLOUD_KEY) } catch {}
      }
      await forgetPairing().catch((err: unknown) => { problem.value = `This browser would not forget the old pairing (${(err as Error).message}).` })
    })()
    try { await forgetting } finally { forgetting = null }
  }

  const api = computed(() => {
    const p = current.value
    return p
      ? new HubApi({ base: o.base ?? '', token: p.token, onUnauthorized: () => { if (current.value === p) void forget(removedNotice(p.credential)) } })
      : null
  })

  const load = async (): Promise<void> => {
    try {
      current.value = await loadPairing()
    } catch (err) {
      problem.value = `This browser would not read its pairing (${(err as Error).message}).`
    }
    phase.value = current.value ? 'paired' : 'unpaired'
    if (current.value) {
      clearCodeFromUrl() // already paired: an old invitation link is not left in the history either
      // Still a member? A 401 forgets the pairing (via onUnauthorized); a hub that is down proves nothing.
      api.value?.me().catch(() => {})
    }
  }

  const pair = async (typed: string, name: string): Promise<void> => {
    try {
      const problemNow = keySupportProblem()
      if (problemNow) throw new Error(problemNow)
      current.value = await pairThisScreen({ api: publicApi, code: typed, viewerId: o.viewerId, name })
      notice.value = null
      problem.value = null
      phase.value = 'paired'
    } finally {
      // A code is used once, whatever the outcome: it is not left in the address bar or history.
      clearCodeFromUrl()
    }
  }

  /**
   * The owner changed this screen's rights and the Home uses its new grant: the pairing keeps it
   * (the same record, changed in place, so the running Home is not restarted).
   */
  const keepCredential = async (p: StoredPairing, credential: string): Promise<void> => {
    p.credential = credential
    await savePairing(p).catch((err: unknown) => { problem.value = `This browser would not keep this screen's new credential (${(err as Error).message}); it fetches it again on the next start.` })
  }

  return { current, phase, notice, problem, code, api, load, pair, forget, keepCredential }
}

export type PairingApi = ReturnType<typeof usePairing>
