import { request as httpsRequest } from 'node:https'
import { request as httpRequest } from 'node:http'
import { createHash, X509Certificate } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { PairResponse, decode, encode, type Logger } from '@doorbell/core'
import { DevicePairing, pairedMemberOf } from '../answering/pairing'

/** What a paired doorbell keeps (in `dataDir/pairing.json`, mode 0600, git-ignored): the one pairing record, shared with camera nodes. */
export { DevicePairing }

export class PairingError extends Error {
  override readonly name = 'PairingError'
}

const FILE = 'pairing.json'

export function loadPairing (dataDir: string): DevicePairing | null {
  let raw: string
  try {
    raw = readFileSync(join(dataDir, FILE), 'utf8')
  } catch {
    return null
  }
  const r = decode(DevicePairing, raw, join(dataDir, FILE))
  if (!r.ok) throw new PairingError(`${r.error.message}: delete the file and pair the doorbell again`)
  return r.value
}

export function savePairing (dataDir: string, pairing: DevicePairing): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const path = join(dataDir, FILE)
  writeFileSync(path + '.tmp', encode(DevicePairing, pairing), { mode: 0o600 })
  renameSync(path + '.tmp', path)
  chmodSync(path, 0o600)
}

/** What a doorbell keeps of the hub's pairing answer (and the CA it checked): the one place these fields are picked. */
export function pairingOf (r: PairResponse, ca: string | null): DevicePairing {
  const { zone, ...member } = pairedMemberOf(r)
  return { ...member, hubName: r.hubName, ca, ...(zone ? { zone } : {}) }
}

/** SHA-256 of a certificate's DER, as browsers print it (AB:CD:…). */
export function fingerprintOf (der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':')
}

/**
 * Pairs this doorbell with its home, from the invite URL the owner created
 * (`https://hub:8443/pair#code=XXXXXXXXXX&ca=AB:CD:…`): fetches the home CA and checks it against
 * the fingerprint in the URL (without one, the fingerprint is printed for the owner to compare),
 * then redeems the code over TLS that trusts only that CA.
 */
export async function pairDevice (o: { url: string, deviceId: string, deviceName: string, log: Logger, signal?: AbortSignal }): Promise<DevicePairing> {
  let url: URL
  try {
    url = new URL(o.url)
  } catch {
    throw new PairingError(`not an invite URL: ${o.url}`)
  }
  const params = new URLSearchParams(url.hash.slice(1) || url.search.slice(1))
  const code = params.get('code')
  if (!code) throw new PairingError('the invite URL has no code (…/pair#code=…)')
  const origin = `${url.protocol}//${url.host}`
  let ca: string | null = null
  if (url.protocol === 'https:') {
    const expected = params.get('ca')?.toUpperCase()
    if (expected) {
      // The CA itself is fetched without checking: it is checked right after, by its fingerprint.
      const der = await get(`${origin}/ca.crt`, { insecure: true, ...(o.signal ? { signal: o.signal } : {}) })
      const fingerprint = fingerprintOf(der)
      if (expected !== fingerprint) {
        throw new PairingError(`the hub's certificate authority is not the one in the invite (got ${fingerprint}): someone may be impersonating the hub`)
      }
      ca = new X509Certificate(der).toString()
    } else {
      // No fingerprint: a hub with a certificate from a CA this machine already trusts (its own TLS files); checked as usual.
      o.log.info('no CA fingerprint in the invite: the hub\'s certificate must be trusted by this machine')
    }
  } else if (!['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    throw new PairingError('pairing over plain HTTP is only for a hub on this machine: use the hub\'s https:// invite URL')
  }
  const body = JSON.stringify({ kind: 'device', code, id: o.deviceId, name: o.deviceName })
  const raw = await post(`${origin}/api/pair`, body, { ca, ...(o.signal ? { signal: o.signal } : {}) })
  const reply = decode(PairResponse, raw, 'pairing reply')
  if (!reply.ok) throw new PairingError(reply.error.message)
  const r = reply.value
  o.log.info('paired with the home', { home: r.homeId, hub: r.hubName, member: r.member.id })
  return pairingOf(r, ca)
}

async function get (url: string, o: { insecure?: boolean, signal?: AbortSignal }): Promise<Buffer> {
  return await call(url, { method: 'GET', rejectUnauthorized: !o.insecure, ...(o.signal ? { signal: o.signal } : {}) })
}

async function post (url: string, body: string, o: { ca: string | null, signal?: AbortSignal }): Promise<Buffer> {
  return await call(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.signal ? { signal: o.signal } : {})
  }, body)
}

async function call (url: string, options: Record<string, unknown>, body?: string): Promise<Buffer> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest
  return await new Promise<Buffer>((resolve, reject) => {
    const req = request(url, { timeout: 10_000, ...options }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > 64 * 1024) req.destroy(new PairingError(`${url}: answer too large`))
        else chunks.push(c)
      })
      res.on('end', () => {
        const data = Buffer.concat(chunks)
        if ((res.statusCode ?? 500) >= 400) {
          let message = data.toString('utf8').slice(0, 300)
          try { message = (JSON.parse(message) as { error?: string }).error ?? message } catch {}
          reject(new PairingError(`${url}: ${res.statusCode ?? ''} ${message}`))
        } else resolve(data)
      })
    })
    req.on('timeout', () => { req.destroy(new PairingError(`${url}: no answer in 10 s`)) })
    req.on('error', (err) => { reject(err instanceof PairingError ? err : new PairingError(`${url}: ${err.message}`)) })
    req.end(body)
  })
}
