import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import mqtt, { type MqttClient } from 'mqtt'
import { PairResponse, exportPublicKey, generateSigningKey, memoryLogger, newId, signDoorCommand, topics } from '@doorbell/core'
import { SimulatedButton, SimulatedLock, startDoorbell, type Doorbell } from '@doorbell/device'
import { pairThrough, startClusterNginx, type ClusterHub, type Owner, reportExitedHubs, startThreeHubs, stopThreeHubs, type ThreeHubs } from '../src/cluster'
import { eventually } from '../src/harness'
import { request, type Nginx } from '../src/nginx'
import type { TestPostgres } from '../src/postgres'
import type { TestRedis } from '../src/redis'
import { offerFrom, type PairedViewer } from '../src/trust'

/**
 * The pairing and revocation suites on a cluster (issue 24): three hub processes on one Redis and
 * one PostgreSQL, nginx in front, a real doorbell (in this process) on hub C. Pairing: an
 * invitation made on A, redeemed through nginx and through B, used once across hubs, signed in on
 * C. Revocation: a member removed through B loses every MQTT session on A, B and C, is refused by
 * every hub, and the doorbell paired through C refuses its credential (the home's signed list,
 * retained in Redis, reaches it through C). Every wait is bounded; only what the test started is
 * stopped.
 */

const WAIT_MS = 10_000

async function withTimeout<T> (what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out after ${ms} ms waiting for ${what}`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** A screen signed in to `url` (no reconnects); rejects with the CONNACK's code, within a bound. */
async function signIn (url: string, p: PairedViewer, o: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { clientId: `viewer-${p.viewerId}-${newId().slice(0, 6)}`, username: p.memberId, password: p.token, reconnectPeriod: 0, connectTimeout: 5000, ...o })
  try {
    await withTimeout(`a CONNACK from ${url}`, 7000, new Promise<void>((resolve, reject) => {
      client.once('connect', () => { resolve() })
      client.once('error', reject)
    }))
  } catch (err) {
    client.end(true)
    throw err
  }
  client.on('error', () => {})
  return client
}

async function end (client: MqttClient): Promise<void> {
  await withTimeout('an MQTT client to end', 2000, client.endAsync(true)).catch(() => {})
}

/** A screen paired with its own key pair (so it can sign offers and door commands), through `via`. */
async function pairWithKey (via: (body: object) => Promise<PairResponse>, code: string, name: string): Promise<PairedViewer> {
  const keys = await generateSigningKey(false)
  const viewerId = newId('v')
  const paired = await via({ kind: 'viewer', code: code.replace('-', ''), id: viewerId, name, key: await exportPublicKey(keys.publicKey) })
  return { viewerId, homeId: paired.homeId, memberId: paired.member.id, token: paired.token, credential: paired.credential!, key: keys.privateKey, role: paired.member.role!, name: paired.member.name }
}

describe('the pairing and revocation suites on a cluster of three hubs behind nginx', { timeout: 300_000 }, () => {
  let redis: TestRedis
  let db: TestPostgres
  const hubs: ClusterHub[] = []
  const cluster: ThreeHubs = { hubs }
  let A: ClusterHub, B: ClusterHub, C: ClusterHub
  let owner: Owner
  let front: { nginx: Nginx, caPem: string, httpsUrl: string, mqttsUrl: string }
  const clients: MqttClient[] = []
  let doorbell: Doorbell | null = null
  let doorbellDir: string | null = null
  const deviceLines: string[] = []

  before(async () => {
    const three = await startThreeHubs(cluster, 'cluster-suites-', { ownerOnA: true })
    ;({ redis, db, A, B, C } = three)
    owner = three.owner!
    const started = await startClusterNginx(join(three.dir, 'nginx'), hubs)
    front = { nginx: started.nginx, caPem: started.cert.caPem, httpsUrl: started.httpsUrl, mqttsUrl: started.mqttsUrl }
  })

  after(async () => {
    reportExitedHubs(hubs)
    for (const c of clients) await end(c)
    if (doorbell) await withTimeout('the doorbell to stop', 15_000, doorbell.stop()).catch((err: Error) => { console.log(err.message) })
    await front?.nginx.stop()
    await stopThreeHubs(cluster)
    if (doorbellDir) rmSync(doorbellDir, { recursive: true, force: true })
  })

  it('pairing: invited on A, paired through nginx and through B, signed in on C; a code works once on any hub', async () => {
    const before = (await owner.on(C).members()).length
    const throughNginx = await owner.on(A).invite({ kind: 'viewer', role: 'resident' })
    const viaNginx = async (body: object): Promise<PairResponse> => {
      const r = await request(`${front.httpsUrl}api/pair`, { ca: front.caPem, method: 'POST', body: JSON.stringify(body) })
      assert.equal(r.status, 200, r.body)
      return PairResponse.parse(JSON.parse(r.body))
    }
    const hall = await pairWithKey(viaNginx, throughNginx.code, 'Hall screen')
    const onB = await owner.on(A).invite({ kind: 'viewer', role: 'resident' })
    const kitchen = await pairWithKey(async (body) => await pairThrough(B, body as never), onB.code, 'Kitchen screen')

    // The same codes again, through the other hubs: refused, and nobody is added.
    for (const [hub, code] of [[C, throughNginx.code], [A, onB.code]] as const) {
      await assert.rejects(pairWithKey(async (body) => await pairThrough(hub, body as never), code, 'Second try'), (err: Error & { status?: number }) => {
        assert.ok(err.status !== undefined && err.status >= 400 && err.status < 500, `${hub.name}: ${err.message}`)
        return true
      })
    }
    // Bad input through nginx: a clear refusal, nothing changes.
    const bad = await request(`${front.httpsUrl}api/pair`, { ca: front.caPem, method: 'POST', body: JSON.stringify({ kind: 'viewer', code: 'nope', id: newId('v'), name: '' }) })
    assert.equal(bad.status, 400, bad.body)
    assert.match(bad.body, /error/)

    // Both are members on every hub, and sign in on C (plain MQTT) and through nginx (MQTT over TLS).
    for (const hub of [A, B, C]) {
      const ids = (await owner.on(hub).members()).map((m) => m.id)
      assert.equal(ids.length, before + 2, `${hub.name} has the two new members, no more`)
      for (const p of [hall, kitchen]) assert.ok(ids.includes(p.memberId), `${p.name} on ${hub.name}`)
    }
    for (const p of [hall, kitchen]) clients.push(await signIn(C.mqttUrl, p))
    clients.push(await signIn(front.mqttsUrl, hall, { ca: front.caPem, servername: 'localhost', rejectUnauthorized: true }))
  })

  it('a persistent session subscribing to several topics at once gets its SUBACK on every hub (a doorbell subscribes to four)', async () => {
    const screen = await pairWithKey(async (body) => await pairThrough(A, body as never), (await owner.on(A).invite({ kind: 'viewer', role: 'resident' })).code, 'Many topics')
    for (const hub of [A, B, C]) {
      const client = await signIn(hub.mqttUrl, screen, { clean: false, clientId: `viewer-${screen.viewerId}-${hub.name}many` })
      clients.push(client)
      const wanted = [...topics.homeEvents('home'), topics.viewerInbox('home', screen.viewerId)]
      const granted = await withTimeout(`the SUBACK from ${hub.name}`, WAIT_MS, client.subscribeAsync(wanted, { qos: 1 }))
      assert.deepEqual(granted.map((g) => [g.topic, g.qos]), wanted.map((t) => [t, 1]))
      await end(client)
    }
  })

  it('revocation: removed through B, its sessions on A, B and C close, every hub refuses it, the doorbell paired through C refuses its credential', async () => {
    // A real doorbell, invited on A, paired through C, connected to C.
    const deviceId = newId('d')
    const invite = await owner.on(A).invite({ kind: 'device', deviceId })
    const url = new URL(invite.url)
    const pairingUrl = `${C.base}${url.pathname}${url.search}${url.hash}`
    doorbellDir = mkdtempSync(join(tmpdir(), 'cluster-doorbell-'))
    doorbell = await startDoorbell({
      deviceId,
      hubUrl: C.mqttUrl,
      pairing: { url: pairingUrl },
      dataDir: doorbellDir,
      mesh: { enabled: false },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      relockSeconds: 1
    }, { log: memoryLogger(deviceLines, 'device'), drivers: { button: new SimulatedButton(), lock: new SimulatedLock(() => {}) } })
    await doorbell.hubConnected(AbortSignal.timeout(WAIT_MS))
    const guard = doorbell.guard

    const invitation = await owner.on(B).invite({ kind: 'viewer', role: 'resident' })
    const lodger = await pairWithKey(async (body) => await pairThrough(A, body as never), invitation.code, 'Lodger')
    const admit = async (session: string): ReturnType<typeof guard.admit> =>
      await guard.admit(lodger.credential, lodger.viewerId, { proof: (await offerFrom(lodger, { device: deviceId, sessionId: session, sdp: 'v=0' })).proof, session })
    assert.ok((await admit('s-before')).ok, 'before: the doorbell lets the lodger in')

    // Signed in on every hub.
    const sessions = await Promise.all([A, B, C].map(async (hub) => await signIn(hub.mqttUrl, lodger)))
    clients.push(...sessions)
    const closed = sessions.map(async (client, i) => await withTimeout(`the lodger's session on ${[A, B, C][i]!.name} to close`, WAIT_MS, new Promise<void>((resolve) => {
      if (client.disconnected) { resolve(); return }
      client.once('close', () => { resolve() })
    })))

    const removedAt = Date.now()
    await owner.on(B).removeMember(lodger.memberId)
    await Promise.all(closed)
    console.log(`removed through B → sessions on A, B, C closed: ${Date.now() - removedAt} ms`)
    for (const hub of [A, B, C]) {
      await assert.rejects(signIn(hub.mqttUrl, lodger), (err: Error & { code?: number }) => err.code === 4, `${hub.name} refuses the removed member`)
    }

    // The doorbell on C gets the home's new list (published retained through B, kept in Redis).
    await eventually('the doorbell on C to hold the revocation', () => guard.isRevoked(lodger.memberId), WAIT_MS)
    console.log(`removed through B → the doorbell on C holds the list: ${Date.now() - removedAt} ms`)
    const admitted = await admit('s-after')
    assert.ok(!admitted.ok && admitted.reason === 'revoked', `the doorbell refuses the lodger's offers: ${JSON.stringify(admitted)}`)
    const cmd = await signDoorCommand({ credential: lodger.credential, key: lodger.key, home: lodger.homeId, device: deviceId, session: 's-door', command: newId('c') })
    const verdict = await guard.check(cmd, { sessionId: 's-door', viewerId: lodger.viewerId })
    assert.ok(!verdict.ok && verdict.reason === 'revoked', `and its door commands: ${JSON.stringify(verdict)}`)
    // The owner is still let in.
    const ownerScreen = await pairWithKey(async (body) => await pairThrough(C, body as never), (await owner.on(C).invite({ kind: 'viewer', role: 'resident' })).code, 'Porch screen')
    const ownerCmd = await signDoorCommand({ credential: ownerScreen.credential, key: ownerScreen.key, home: ownerScreen.homeId, device: deviceId, session: 's-ok', command: newId('c') })
    assert.ok((await guard.check(ownerCmd, { sessionId: 's-ok', viewerId: ownerScreen.viewerId })).ok, 'a member not removed is let in')

    // The removal is in the owner's audit log read through A, and C lists the member as removed.
    const audit = await owner.on(A).audit({ limit: 500 })
    assert.ok(audit.some((r) => r.kind === 'revocation' && /Lodger/.test(r.message)), 'the revocation is in the audit log read through A')
    assert.notEqual((await owner.on(C).members()).find((m) => m.id === lodger.memberId)?.revokedAt ?? null, null)
  })
})
