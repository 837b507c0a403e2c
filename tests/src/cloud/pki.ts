// @peculiar/x509 resolves its algorithms through tsyringe, which needs a Reflect polyfill loaded first.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { KeyObject, createHash, randomBytes } from 'node:crypto'
import { isIP } from 'node:net'

// @peculiar/x509 signs through WebCrypto; Node's own implementation is the one to use.
x509.cryptoProvider.set(globalThis.crypto)

/**
 * An in-memory PKI for the cloud stand-ins (KVS signaling, IoT Core): two CAs, as AWS has two
 * trust roots a device meets. Nothing touches the disk; every key is ECDSA P-256.
 */

export interface Issued { certPem: string, keyPem: string }

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIGNATURE = { name: 'ECDSA', hash: 'SHA-256' } as const
const DAY = 86_400_000
/** Certificates start an hour early so a small clock difference between processes never matters. */
const BACKDATE_MS = 3_600_000

interface Ca { cert: x509.X509Certificate, key: CryptoKey, pem: string }

export class Pki {
  /** Stands in for Amazon's root CA: signs every endpoint's server certificate. Clients trust it (NODE_EXTRA_CA_CERTS, Chromium's NSS db, `ca:` options). */
  readonly serverCaPem: string
  /** Stands in for AWS IoT's device CA: signs thing certificates (CreateKeysAndCertificate) and the WSS front's client cert. mosquitto's cafile. */
  readonly deviceCaPem: string

  private constructor (private readonly serverCa: Ca, private readonly deviceCa: Ca) {
    this.serverCaPem = serverCa.pem
    this.deviceCaPem = deviceCa.pem
  }

  static async create (): Promise<Pki> {
    return new Pki(await createCa('Test Amazon Root CA (stand-in)'), await createCa('Test AWS IoT device CA (stand-in)'))
  }

  /** A server certificate for `names` (DNS names and IP addresses, both go into the SAN), signed by the server CA. */
  async issueServer (names: string[]): Promise<Issued> {
    if (names.length === 0) throw new TypeError('a server certificate needs at least one name')
    const altNames = names.map((value) => isIP(value) !== 0 ? { type: 'ip' as const, value } : { type: 'dns' as const, value })
    return await issue(this.serverCa, `CN=${names[0]}`, [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(altNames)
    ])
  }

  /**
   * A client certificate signed by the device CA. `certificateId` is the lowercase hex SHA-256 of
   * its DER, which is how AWS IoT names certificates.
   */
  async issueClient (commonName: string): Promise<Issued & { certificateId: string }> {
    const issued = await issue(this.deviceCa, new x509.Name([{ CN: [commonName] }]).toString(), [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])
    ])
    const der = new x509.X509Certificate(issued.certPem).rawData
    return { ...issued, certificateId: createHash('sha256').update(new Uint8Array(der)).digest('hex') }
  }
}

async function createCa (commonName: string): Promise<Ca> {
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: new x509.Name([{ CN: [commonName] }, { O: ['Doorbell tests'] }]).toString(),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + 365 * DAY),
    keys,
    signingAlgorithm: SIGNATURE,
    extensions: [
      // Path length 0: each CA signs leaf certificates only.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  // Node's WebCrypto key; typed as the DOM's CryptoKey where the tests compile with the DOM lib.
  return { cert, key: keys.privateKey as CryptoKey, pem: pem(cert) }
}

async function issue (ca: Ca, subject: string, extensions: x509.Extension[]): Promise<Issued> {
  const keys = await crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])
  const now = Date.now()
  const caKeyId = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject,
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    // Under 398 days: browsers refuse server certificates valid for longer.
    notAfter: new Date(now + 300 * DAY),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNATURE,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      ...extensions,
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(caKeyId !== undefined ? [new x509.AuthorityKeyIdentifierExtension(caKeyId)] : [])
    ]
  })
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string
  return { certPem: pem(cert), keyPem }
}

function pem (cert: x509.X509Certificate): string {
  return `${cert.toString('pem').trim()}\n`
}

/** 16 random bytes, first bit clear: a positive serial number, as RFC 5280 §4.1.2.2 asks. */
function serialNumber (): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return bytes.toString('hex')
}
