import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, get, type Server } from 'node:https'
import { isIP, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger } from '@doorbell/core'
import { LocalCaError, ensureLocalTls, fingerprintOf, lanAddresses, type LocalTls } from '../src/tls/localCa'

const DAY = 86_400_000
const OPENSSL = '/usr/bin/openssl'

let root: string
let n = 0
/** A fresh, empty data folder per test: the CA is per folder. */
const freshDir = (): string => join(root, `tls-${++n}`)

before(async () => { root = await mkdtemp(join(tmpdir(), 'doorbell-tls-')) })
after(async () => { await rm(root, { recursive: true, force: true }) })

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777

describe('ensureLocalTls', () => {
  test('the first start makes a CA and a server certificate, keys readable by the owner only', async () => {
    const dir = freshDir()
    const log = memoryLogger()
    const tls = await ensureLocalTls({ dir, hostnames: ['doorbell.local'], ips: ['192.168.1.20'], log })

    assert.equal(tls.createdCa, true)
    assert.equal(tls.renewed, true)
    assert.equal(await mode(dir), 0o700)
    assert.equal(await mode(join(dir, 'ca.key')), 0o600)
    assert.equal(await mode(join(dir, 'server.key')), 0o600)
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), tls.caCert)
    assert.equal(await readFile(join(dir, 'server.key'), 'utf8'), tls.key)

    // The fingerprint is the one browsers and Node show for the CA certificate.
    const ca = new X509Certificate(tls.caCert)
    assert.match(tls.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    assert.equal(tls.fingerprint, ca.fingerprint256)
    assert.deepEqual(Buffer.from(tls.caDer), ca.raw)
    assert.ok(log.lines.some((line) => line.includes(tls.fingerprint)), 'the fingerprint is printed when the CA is made')

    // The chain: the server certificate first, signed by the CA that follows it.
    const [leafPem, caPem] = tls.cert.split(/(?<=-----END CERTIFICATE-----\n)/)
    const leaf = new X509Certificate(leafPem!)
    assert.equal(new X509Certificate(caPem!).fingerprint256, tls.fingerprint)
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey))
    assert.ok(leaf.checkPrivateKey(createPrivateKey(tls.key)))
    assert.deepEqual(tls.serverNames.toSorted(), ['127.0.0.1', '192.168.1.20', '::1', 'doorbell.local', 'localhost'])
    const validDays = (leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / DAY
    assert.equal(validDays, 397)
    assert.ok(ca.validToDate.getTime() - Date.now() > 3640 * DAY, 'the CA lasts ten years')
  })

  test('the extensions are those of a CA and of a TLS server (read by openssl)', { skip: !existsSync(OPENSSL) && 'no openssl' }, async () => {
    const dir = freshDir()
    await ensureLocalTls({ dir, hostnames: [], ips: [] })
    const text = (file: string): string => execFileSync(OPENSSL, ['x509', '-noout', '-text', '-in', join(dir, file)], { encoding: 'utf8' })
    const ca = text('ca.crt')
    assert.match(ca, /Basic Constraints: critical\s+CA:TRUE/)
    assert.match(ca, /Key Usage: critical\s+Certificate Sign, CRL Sign/)
    assert.match(ca, /Subject Key Identifier/)
    assert.match(ca, /ecdsa-with-SHA256/)
    const server = text('server.crt')
    assert.match(server, /Basic Constraints: critical\s+CA:FALSE/)
    assert.match(server, /Key Usage: critical\s+Digital Signature/)
    assert.match(server, /Extended Key Usage: ?\s+TLS Web Server Authentication/)
    assert.match(server, /DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1/)
    assert.match(server, /Authority Key Identifier/)
    const verified = execFileSync(OPENSSL, ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'server.crt')], { encoding: 'utf8' })
    assert.match(verified, /server\.crt: OK/)
  })

  test('a second start reuses the CA and the server certificate', async () => {
    const dir = freshDir()
    const first = await ensureLocalTls({ dir, hostnames: ['doorbell.local'], ips: [] })
    const second = await ensureLocalTls({ dir, hostnames: ['DOORBELL.local.'], ips: [] })
    assert.equal(second.createdCa, false)
    assert.equal(second.renewed, false)
    assert.equal(second.fingerprint, first.fingerprint)
    assert.equal(second.key, first.key)
    assert.equal(second.cert, first.cert)
  })

  test('a new address renews the server certificate and keeps the CA', async () => {
    const dir = freshDir()
    const first = await ensureLocalTls({ dir, hostnames: [], ips: ['192.168.1.20'] })
    const moved = await ensureLocalTls({ dir, hostnames: [], ips: ['192.168.1.20', 'fd00::20'] })
    assert.equal(moved.createdCa, false)
    assert.equal(moved.renewed, true)
    assert.equal(moved.fingerprint, first.fingerprint)
    assert.notEqual(moved.key, first.key)
    assert.ok(moved.serverNames.includes('fd00::20'))
    assert.equal(new X509Certificate(moved.cert).checkIP('fd00:0:0::20'), 'fd00:0:0::20')
  })

  test('the server certificate is renewed within 30 days of its end, not before', async () => {
    const dir = freshDir()
    const start = Date.now()
    const first = await ensureLocalTls({ dir, hostnames: [], ips: [] })
    const later = await ensureLocalTls({ dir, hostnames: [], ips: [], now: () => start + 300 * DAY })
    assert.equal(later.renewed, false)
    const log = memoryLogger()
    const renewed = await ensureLocalTls({ dir, hostnames: [], ips: [], now: () => start + 380 * DAY, log })
    assert.equal(renewed.renewed, true)
    assert.equal(renewed.fingerprint, first.fingerprint)
    assert.ok(new X509Certificate(renewed.cert).validToDate.getTime() > start + 700 * DAY)
    assert.ok(log.lines.some((line) => line.includes('reason=expires on')), log.lines.join('\n'))
  })

  test('a damaged server certificate is made again; the CA stays', async () => {
    const dir = freshDir()
    const first = await ensureLocalTls({ dir, hostnames: [], ips: [] })
    await writeFile(join(dir, 'server.crt'), 'not a certificate')
    const again = await ensureLocalTls({ dir, hostnames: [], ips: [] })
    assert.equal(again.renewed, true)
    assert.equal(again.createdCa, false)
    assert.equal(again.fingerprint, first.fingerprint)
  })

  test('a server certificate from another CA is replaced', async () => {
    const dir = freshDir()
    const other = freshDir()
    await ensureLocalTls({ dir, hostnames: [], ips: [] })
    const foreign = await ensureLocalTls({ dir: other, hostnames: [], ips: [] })
    await writeFile(join(dir, 'server.key'), foreign.key)
    await writeFile(join(dir, 'server.crt'), foreign.cert)
    const log = memoryLogger()
    const again = await ensureLocalTls({ dir, hostnames: [], ips: [], log })
    assert.equal(again.renewed, true)
    assert.ok(log.lines.some((line) => line.includes('not signed by the current certificate authority')), log.lines.join('\n'))
  })

  test('a damaged CA key is an error naming the file, never a new CA', async () => {
    const dir = freshDir()
    await ensureLocalTls({ dir, hostnames: [], ips: [] })
    const caBefore = await readFile(join(dir, 'ca.crt'), 'utf8')
    await writeFile(join(dir, 'ca.key'), '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n')
    await assert.rejects(ensureLocalTls({ dir, hostnames: [], ips: [] }), (err: Error) => {
      assert.ok(err instanceof LocalCaError)
      assert.equal(err.name, 'LocalCaError')
      assert.equal(err.file, join(dir, 'ca.key'))
      assert.match(err.message, /ca\.key is not a readable private key/)
      assert.match(err.message, /delete ca\.key and ca\.crt/)
      return true
    })
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), caBefore)
  })

  test('a CA certificate without its key is an error, never a new CA', async () => {
    const dir = freshDir()
    await ensureLocalTls({ dir, hostnames: [], ips: [] })
    await rm(join(dir, 'ca.key'))
    await assert.rejects(ensureLocalTls({ dir, hostnames: [], ips: [] }), /ca\.key is missing while .*ca\.crt exists/)
    assert.equal(existsSync(join(dir, 'ca.key')), false)
  })

  test('a CA key that belongs to another CA certificate is an error', async () => {
    const dir = freshDir()
    const other = freshDir()
    await ensureLocalTls({ dir, hostnames: [], ips: [] })
    await ensureLocalTls({ dir: other, hostnames: [], ips: [] })
    await writeFile(join(dir, 'ca.key'), await readFile(join(other, 'ca.key')))
    await assert.rejects(ensureLocalTls({ dir, hostnames: [], ips: [] }), /ca\.key does not belong to .*ca\.crt/)
  })

  test('no certificate is made while the clock is obviously wrong (a Pi before NTP)', async () => {
    const dir = freshDir()
    await assert.rejects(ensureLocalTls({ dir, hostnames: [], ips: [], now: () => 0 }), /system clock says 1970/)
    assert.equal(existsSync(join(dir, 'ca.key')), false)
  })

  test('names that cannot go in a certificate are refused', async () => {
    await assert.rejects(ensureLocalTls({ dir: freshDir(), hostnames: ['bad name'], ips: [] }), /not a hostname/)
    await assert.rejects(ensureLocalTls({ dir: freshDir(), hostnames: [], ips: ['300.1.1.1'] }), /not an IP address/)
  })

  test('fingerprintOf is SHA-256 in colon-separated uppercase hex', () => {
    // SHA-256 of the empty string.
    assert.equal(fingerprintOf(new Uint8Array()),
      'E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55')
  })

  test('lanAddresses lists neither loopback nor link-local addresses', () => {
    for (const address of lanAddresses()) {
      assert.notEqual(isIP(address), 0, address)
      assert.ok(!address.startsWith('127.') && address !== '::1', address)
      assert.ok(!/^fe[89ab]/i.test(address), address)
    }
  })
})

describe('an HTTPS server with the certificate', () => {
  let tls: LocalTls
  let server: Server
  let port: number

  before(async () => {
    tls = await ensureLocalTls({ dir: freshDir(), hostnames: [], ips: [] })
    server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => { res.end('ding') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  /** GET / over TLS; resolves with the body or the TLS error code. */
  const fetchOver = async (o: { host: string, servername?: string, ca?: string }): Promise<string> =>
    await new Promise((resolve) => {
      get({ host: o.host, port, path: '/', ca: o.ca, servername: o.servername, agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve(body) })
      }).on('error', (err: NodeJS.ErrnoException) => { resolve(`error ${err.code}`) })
    })

  test('is trusted for localhost and 127.0.0.1 by a client that trusts the CA', async () => {
    // Connect by address, check the name: `localhost` may resolve to ::1 first, where nothing listens.
    assert.equal(await fetchOver({ host: '127.0.0.1', servername: 'localhost', ca: tls.caCert }), 'ding')
    assert.equal(await fetchOver({ host: '127.0.0.1', ca: tls.caCert }), 'ding')
  })

  test('is refused by a client that does not trust the CA', async () => {
    assert.equal(await fetchOver({ host: '127.0.0.1' }), 'error SELF_SIGNED_CERT_IN_CHAIN')
  })

  test('is refused for a name the certificate does not carry', async () => {
    assert.equal(await fetchOver({ host: '127.0.0.1', servername: 'not-the-hub.example', ca: tls.caCert }), 'error ERR_TLS_CERT_ALTNAME_INVALID')
  })
})
