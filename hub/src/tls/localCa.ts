// @peculiar/x509 2 resolves its algorithms through tsyringe, which needs a Reflect polyfill loaded
// first (1.x bundled it); @libp2p/webrtc does the same.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { KeyObject, X509Certificate, createHash, createPrivateKey, randomBytes, type webcrypto } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { type Logger } from '@doorbell/core'

// @peculiar/x509 signs through WebCrypto; Node's own implementation is the one to use.
x509.cryptoProvider.set(globalThis.crypto)

const DAY = 86_400_000
const CA_VALIDITY_DAYS = 3650
/** Browsers refuse server certificates valid for more than 398 days (Apple and Chrome, since September 2020). */
const SERVER_VALIDITY_DAYS = 397
const RENEW_WITHIN_DAYS = 30
/** Certificates start an hour early so a phone whose clock runs a little behind still accepts a fresh one. */
const BACKDATE_MS = 3_600_000
/**
 * A Raspberry Pi has no battery clock: before NTP it may think it is 1970. A CA made then would be
 * expired for ever once the clock is right, so no certificate is made before this date.
 */
const EARLIEST_SANE_TIME = Date.UTC(2025, 0, 1)

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIGNATURE = { name: 'ECDSA', hash: 'SHA-256' } as const
const FILES = { caKey: 'ca.key', caCert: 'ca.crt', serverKey: 'server.key', serverCert: 'server.crt' } as const
const ALWAYS_DNS = ['localhost']
const ALWAYS_IPS = ['127.0.0.1', '::1']

export interface LocalTls {
  /** The server's private key, PKCS#8 PEM. */
  key: string
  /** The server certificate followed by the CA certificate, PEM: what `https.createServer({ cert })` sends. */
  cert: string
  /** The CA certificate, PEM: what a phone or a test trusts. */
  caCert: string
  /** The CA certificate, DER: what `GET /ca.crt` serves. */
  caDer: Uint8Array
  /** SHA-256 of the CA certificate's DER, uppercase hex with colons, as browsers and phones show it. */
  fingerprint: string
  /** The names and addresses the server certificate actually carries (DNS names, then IPs). */
  serverNames: string[]
  /** A new server certificate was made by this call. */
  renewed: boolean
  /** A new certificate authority was made by this call: every phone must trust it before HTTPS works. */
  createdCa: boolean
}

/** A problem the hub cannot fix by itself without breaking what phones already trust. */
export class LocalCaError extends Error {
  override name = 'LocalCaError'
  constructor (message: string, readonly file?: string) {
    super(message)
  }
}

/**
 * Makes sure `dir` holds a local certificate authority and a server certificate, signed by it,
 * for `hostnames` and `ips` (plus localhost, 127.0.0.1 and ::1). The CA is made once and kept;
 * the server certificate is made again when it is missing, unreadable, about to expire, signed
 * by another CA or does not cover every requested name.
 */
export async function ensureLocalTls (o: { dir: string, hostnames: string[], ips: string[], now?: () => number, log?: Logger }): Promise<LocalTls> {
  const now = (o.now ?? Date.now)()
  if (now < EARLIEST_SANE_TIME) {
    throw new LocalCaError(`the system clock says ${new Date(now).toISOString()}: set the time (NTP) and start the hub again; certificates made now would be wrong`)
  }
  const wanted = requestedNames(o.hostnames, o.ips)
  await mkdir(o.dir, { recursive: true, mode: 0o700 })

  let ca = await loadCa(o.dir, now)
  const createdCa = ca === undefined
  if (ca === undefined) {
    ca = await createCa(o.dir, now)
    o.log?.info('made a local certificate authority: trust it on each phone and computer (download /ca.crt) and check this fingerprint', {
      fingerprint: fingerprintOf(ca.cert.raw), file: join(o.dir, FILES.caCert)
    })
  }

  let server = await loadServer(o.dir, ca, wanted, now)
  const renewed = 'reason' in server
  if ('reason' in server) {
    const reason = server.reason
    server = await createServer(o.dir, ca, wanted, now)
    o.log?.info('made a new server certificate', { reason, names: sanOf(server.certPem), validUntil: server.cert.validToDate.toISOString() })
  }

  const caDer = new Uint8Array(ca.cert.raw)
  return {
    key: server.keyPem,
    cert: `${server.certPem.trim()}\n${ca.certPem.trim()}\n`,
    caCert: `${ca.certPem.trim()}\n`,
    caDer,
    fingerprint: fingerprintOf(caDer),
    serverNames: sanOf(server.certPem),
    renewed,
    createdCa
  }
}

/** SHA-256 of a certificate's DER, uppercase hex pairs joined by colons (`AB:CD:…`). */
export function fingerprintOf (der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':')
}

/** This machine's LAN addresses, IPv4 and IPv6, without loopback and without IPv6 link-local ones. */
export function lanAddresses (): string[] {
  const found = new Set<string>()
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      // fe80::/10 only works with a zone id (`%eth0`), which neither a URL in a phone nor a certificate can carry.
      if (a.internal || (a.family === 'IPv6' && /^fe[89ab]/i.test(a.address))) continue
      found.add(canonicalIp(a.address))
    }
  }
  return [...found]
}

interface Pair {
  keyPem: string
  certPem: string
  key: KeyObject
  cert: X509Certificate
}

interface Names { dns: string[], ips: string[] }

function requestedNames (hostnames: string[], ips: string[]): Names {
  const dns = new Set(ALWAYS_DNS)
  const addresses = new Set(ALWAYS_IPS)
  for (const raw of hostnames) {
    const name = raw.trim().toLowerCase().replace(/\.$/, '')
    if (isIP(name) !== 0) addresses.add(canonicalIp(name))
    else if (isHostname(name)) dns.add(name)
    else throw new TypeError(`not a hostname: ${JSON.stringify(raw)}`)
  }
  for (const raw of ips) {
    if (isIP(raw.trim()) === 0) throw new TypeError(`not an IP address: ${JSON.stringify(raw)}`)
    addresses.add(canonicalIp(raw.trim()))
  }
  return { dns: [...dns], ips: [...addresses] }
}

/** DNS names in a certificate are ASCII labels of at most 63 characters. */
function isHostname (name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label))
}

/** One spelling per address (`::1`, not `0:0::1`), so the same address is never asked for twice. */
function canonicalIp (ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]`).hostname.slice(1, -1) : ip
}

async function loadCa (dir: string, now: number): Promise<Pair | undefined> {
  const keyFile = join(dir, FILES.caKey)
  const certFile = join(dir, FILES.caCert)
  const keyPem = await readIfPresent(keyFile).catch((err: Error) => { throw caError(keyFile, `cannot be read (${err.message})`) })
  const certPem = await readIfPresent(certFile).catch((err: Error) => { throw caError(certFile, `cannot be read (${err.message})`) })
  if (keyPem === undefined && certPem === undefined) return undefined
  if (keyPem === undefined) throw caError(keyFile, `is missing while ${certFile} exists`)
  if (certPem === undefined) throw caError(certFile, `is missing while ${keyFile} exists`)

  const key = parse(() => createPrivateKey(keyPem), keyFile, 'is not a readable private key')
  const cert = parse(() => new X509Certificate(certPem), certFile, 'is not a readable certificate')
  if (!cert.ca) throw caError(certFile, 'is not a certificate authority')
  if (!cert.checkPrivateKey(key)) throw caError(keyFile, `does not belong to ${certFile}`)
  if (cert.validToDate.getTime() <= now) throw caError(certFile, `expired on ${cert.validToDate.toISOString()}`)
  return { keyPem, certPem, key, cert }
}

/**
 * The CA is what phones trust, so a damaged one is never replaced behind the user's back:
 * the message names the file and both ways out.
 */
function caError (file: string, problem: string): LocalCaError {
  return new LocalCaError(
    `${file} ${problem}. Restore the certificate authority from a backup, or delete ca.key and ca.crt ` +
    'to make a new one (every phone and computer that trusted the old one must then trust the new one).',
    file
  )
}

function parse<T> (read: () => T, file: string, problem: string): T {
  try {
    return read()
  } catch (err) {
    throw caError(file, `${problem} (${(err as Error).message})`)
  }
}

async function createCa (dir: string, now: number): Promise<Pair> {
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])
  const made = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    // The date tells two CAs apart in a phone's list after the hub's data folder was reset.
    name: `CN=Doorbell home CA ${new Date(now).toISOString().slice(0, 10)}, O=Doorbell`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now - BACKDATE_MS + CA_VALIDITY_DAYS * DAY),
    keys,
    signingAlgorithm: SIGNATURE,
    extensions: [
      // Path length 0: this CA signs the hub's server certificates, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return await savePair(dir, FILES.caKey, FILES.caCert, keys.privateKey, made.toString('pem'))
}

async function loadServer (dir: string, ca: Pair, wanted: Names, now: number): Promise<Pair | { reason: string }> {
  let keyPem: string | undefined
  let certPem: string | undefined
  try {
    keyPem = await readIfPresent(join(dir, FILES.serverKey))
    certPem = await readIfPresent(join(dir, FILES.serverCert))
  } catch (err) {
    return { reason: `unreadable: ${(err as Error).message}` }
  }
  if (keyPem === undefined || certPem === undefined) return { reason: 'missing' }
  let key: KeyObject
  let cert: X509Certificate
  try {
    key = createPrivateKey(keyPem)
    cert = new X509Certificate(certPem)
  } catch (err) {
    return { reason: `unreadable: ${(err as Error).message}` }
  }
  if (!cert.checkPrivateKey(key)) return { reason: 'the key does not belong to the certificate' }
  if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey)) return { reason: 'not signed by the current certificate authority' }
  if (cert.validFromDate.getTime() > now) return { reason: `not valid before ${cert.validFromDate.toISOString()} (the clock went back)` }
  if (cert.validToDate.getTime() - now < RENEW_WITHIN_DAYS * DAY) return { reason: `expires on ${cert.validToDate.toISOString()}` }
  const missing = [
    ...wanted.dns.filter((name) => cert.checkHost(name, { subject: 'never', wildcards: false }) === undefined),
    ...wanted.ips.filter((ip) => cert.checkIP(ip) === undefined)
  ]
  if (missing.length > 0) return { reason: `does not cover ${missing.join(', ')}` }
  return { keyPem, certPem, key, cert }
}

async function createServer (dir: string, ca: Pair, wanted: Names, now: number): Promise<Pair> {
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])
  const notBefore = now - BACKDATE_MS
  const made = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    // Browsers only read the SAN; the common name is for people reading the certificate.
    subject: `CN=${wanted.dns.find((name) => name !== 'localhost') ?? 'localhost'}, O=Doorbell`,
    issuer: caCert.subjectName,
    notBefore: new Date(notBefore),
    // Never past the CA's own end: a chain is only as valid as its shortest link.
    notAfter: new Date(Math.min(notBefore + SERVER_VALIDITY_DAYS * DAY, ca.cert.validToDate.getTime())),
    publicKey: keys.publicKey,
    // Node's WebCrypto key; typed as the DOM's CryptoKey where a workspace compiles with the DOM lib.
    signingKey: ca.key.toCryptoKey(EC_KEY, false, ['sign']) as never,
    signingAlgorithm: SIGNATURE,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...wanted.dns.map((value) => ({ type: 'dns' as const, value })),
        ...wanted.ips.map((value) => ({ type: 'ip' as const, value }))
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      caKeyId !== undefined
        ? new x509.AuthorityKeyIdentifierExtension(caKeyId)
        : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey)
    ]
  })
  return await savePair(dir, FILES.serverKey, FILES.serverCert, keys.privateKey, made.toString('pem'))
}

/** Writes the key (0600) and then the certificate; each file is replaced whole or not at all. */
async function savePair (dir: string, keyName: string, certName: string, privateKey: webcrypto.CryptoKey, certPem: string): Promise<Pair> {
  const key = KeyObject.from(privateKey)
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string
  await writeWhole(join(dir, keyName), keyPem, 0o600)
  await writeWhole(join(dir, certName), `${certPem.trim()}\n`, 0o644)
  return { keyPem, certPem, key, cert: new X509Certificate(certPem) }
}

async function writeWhole (file: string, text: string, mode: number): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`
  try {
    // 'wx' with `mode`: the key is never readable by others, not even for an instant.
    await writeFile(temp, text, { mode, flag: 'wx' })
    await rename(temp, file)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
}

async function readIfPresent (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

function sanOf (certPem: string): string[] {
  const san = new x509.X509Certificate(certPem).getExtension(x509.SubjectAlternativeNameExtension)
  return san?.names.items.map((name) => name.value) ?? []
}

/** 16 random bytes, first bit clear: a positive serial number, as RFC 5280 §4.1.2.2 asks. */
function serialNumber (): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return bytes.toString('hex')
}
