import { X509Certificate, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { join } from 'node:path'
import type { Pki } from '../pki'
import { verifyHeaderSigned, type CredentialStore } from '../sigv4'
import { Mosquitto, writeAtomic, type ConnectedClient } from './broker'
import { IamControlPlane, iamAuthError } from './controlIam'
import { IotControlPlane } from './controlIot'
import { credentialsReply } from './credentials'
import { jsonError, readRequest, type Reply } from './http'
import { IotState, type Certificate } from './state'
import { WssFront } from './wssFront'

export { IotState } from './state'
export type { Certificate, Thing, CertStatus } from './state'

/** The WSS front's client certificate CN: mosquitto's username for every browser connection. */
export const WSS_FRONT_USER = 'iot-wss-front'
/** The stand-in's own certificate CN (readiness probes, disconnecting clients). Has no ACL entry. */
export const ADMIN_USER = 'iot-standin-admin'
/** What viewers may read over the WSS front: they listen, and publish nothing over IoT. `doorbell/+/ring` is the seed's ring topic (stock KVS doorbells). */
export const WSS_FRONT_TOPICS = ['things/+/ring', 'things/+/state', 'things/+/presence', 'things/+/calls', 'things/+/snapshot', 'doorbell/+/ring']
/** The IoT policy `provisionThing` attaches: the scope the broker's ACL enforces, written as IoT would. */
export const THING_POLICY_NAME = 'doorbell-thing-standin'

export interface IotStandInOptions {
  pki: Pki
  store: CredentialStore
  /** A directory for mosquitto's configuration, certificates, ACL and persistence file. */
  dir: string
  region?: string
  accountId?: string
  /** Lifetime of credentials from the credentials provider; default: the role alias's credentialDurationSeconds (3600 s). */
  credentialTtlMs?: number
  /**
   * IoT Core resolves `${iot:Connection.Thing.ThingName}` from the MQTT client id, so a device must
   * connect with its thing's name as client id. mosquitto cannot refuse such a CONNECT; when this is
   * true (default) the stand-in disconnects, right after CONNACK, a certificate client whose client
   * id is not the name of a thing its certificate is attached to.
   */
  enforceClientIdIsThingName?: boolean
}

/** A client the stand-in disconnected, and why. */
export interface Refusal { clientId: string, username: string | undefined, reason: string }

export class IotStandIn {
  readonly dataHost = '127.0.0.1'
  readonly state: IotState
  /** Clients the stand-in disconnected (certificate not ACTIVE or unknown, client id not a thing of the certificate). */
  readonly refusals: Refusal[] = []
  private readonly iot: IotControlPlane
  private readonly iam: IamControlPlane
  private broker!: Mosquitto
  private front!: WssFront
  private control!: Server
  private credentials!: Server
  private controlPort = 0
  private credentialsPort = 0
  private frontIdentity!: { certPem: string, keyPem: string }
  private readonly kicks = new Set<Promise<void>>()

  private constructor (private readonly o: IotStandInOptions) {
    this.state = new IotState(o.region ?? 'us-east-1', o.accountId ?? '123456789012')
    this.iot = new IotControlPlane(this.state, {
      endpoint: (type) => {
        if (type === 'iot:Data-ATS' || type === 'iot:Data') return `${this.dataHost}:${this.dataPort}`
        if (type === 'iot:CredentialProvider') return this.credentialsHost
        return undefined
      },
      createCertificate: async () => await this.issueDeviceCertificate(),
      aclChanged: async () => { await this.applyAcl() },
      certificateRevoked: async (cert) => { await this.disconnectCertificate(cert, `certificate ${cert.id} is ${cert.status}`) }
    })
    this.iam = new IamControlPlane(this.state)
  }

  static async start (o: IotStandInOptions): Promise<IotStandIn> {
    const standIn = new IotStandIn(o)
    try {
      await standIn.startAll()
    } catch (err) {
      await standIn.stop()
      throw err
    }
    return standIn
  }

  get region (): string { return this.state.region }
  get accountId (): string { return this.state.accountId }
  /** The iot:Data-ATS endpoint's port: devices connect mqtts://dataHost:dataPort with their thing certificate. */
  get dataPort (): number { return this.broker.port }
  /** The SigV4 WebSocket front for browsers. */
  get wssUrl (): string { return this.front.url }
  /** For IoTClient / IAMClient `endpoint`. */
  get controlEndpoint (): string { return `https://127.0.0.1:${this.controlPort}` }
  /** The iot:CredentialProvider endpoint, host:port (mutual TLS). */
  get credentialsHost (): string { return `127.0.0.1:${this.credentialsPort}` }
  get brokerRunning (): boolean { return this.broker.running }
  /** mosquitto's recent log lines, for diagnostics. */
  brokerLog (): string[] { return this.broker.recentLog() }

  /** Test convenience without the control plane: a thing, an ACTIVE certificate attached to it, the IoT policy; the certificate and its key. */
  async provisionThing (thingName: string): Promise<{ certPem: string, keyPem: string, certificateId: string }> {
    if (!/^[a-zA-Z0-9:_-]{1,128}$/.test(thingName)) throw new TypeError(`invalid thing name ${thingName}`)
    const thing = this.state.things.get(thingName) ?? this.state.addThing(thingName)
    const issued = await this.issueDeviceCertificate()
    const x509 = new X509Certificate(issued.certPem)
    const cert = this.state.addCertificate({ id: issued.certificateId, pem: issued.certPem, commonName: issued.commonName, active: true, notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo) })
    thing.principals.set(cert.id, 'NON_EXCLUSIVE_THING')
    this.thingPolicy().targets.add(cert.arn)
    await this.applyAcl()
    return { certPem: issued.certPem, keyPem: issued.keyPem, certificateId: issued.certificateId }
  }

  /** Stops the broker (clients see the connection drop; sessions and retained messages are saved). */
  async stopBroker (): Promise<void> { await this.broker.stop() }
  /** Starts the broker again on the same port. */
  async startBroker (): Promise<void> { await this.broker.restart() }

  async stop (): Promise<void> {
    await Promise.allSettled([...this.kicks])
    await this.front?.close()
    for (const server of [this.control, this.credentials]) {
      if (server === undefined) continue
      server.closeAllConnections()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
    await this.broker?.stop()
  }

  private async startAll (): Promise<void> {
    const { pki, dir } = this.o
    await mkdir(dir, { recursive: true })
    const server = await pki.issueServer(['127.0.0.1', 'localhost'])
    this.frontIdentity = await pki.issueClient(WSS_FRONT_USER)
    const admin = await pki.issueClient(ADMIN_USER)
    const files = { caFile: join(dir, 'device-ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key'), aclFile: join(dir, 'acl') }
    await writeAtomic(files.caFile, pki.deviceCaPem, 0o644)
    await writeAtomic(files.certFile, server.certPem, 0o644)
    await writeAtomic(files.keyFile, server.keyPem)
    await writeAtomic(files.aclFile, this.renderAcl())
    this.broker = await Mosquitto.start(dir, files, { ...admin, serverCaPem: pki.serverCaPem, username: ADMIN_USER })
    this.broker.onClientConnected = (client) => { this.checkClient(client) }

    this.front = await WssFront.start({
      tls: server,
      store: this.o.store,
      brokerPort: () => this.broker.running ? this.broker.port : undefined,
      upstream: { ca: pki.serverCaPem, cert: this.frontIdentity.certPem, key: this.frontIdentity.keyPem },
      region: this.state.region
    })

    this.control = createServer({ cert: server.certPem, key: server.keyPem }, (req, res) => {
      void (async () => {
        let reply: Reply
        try {
          reply = await this.controlReply(await readRequest(req))
        } catch (err) {
          reply = jsonError(500, 'InternalFailureException', String(err))
        }
        res.writeHead(reply.status, reply.headers)
        res.end(reply.body)
      })()
    })
    this.controlPort = await listen(this.control)

    this.credentials = createServer({ cert: server.certPem, key: server.keyPem, ca: pki.deviceCaPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      req.resume()
      const ttl = (aliasSeconds: number): number => this.o.credentialTtlMs ?? aliasSeconds * 1000
      const reply = credentialsReply(req, this.state, this.o.store, ttl)
      res.writeHead(reply.status, reply.headers)
      res.end(reply.body)
    })
    this.credentialsPort = await listen(this.credentials)
  }

  /** Every control-plane request is SigV4-verified, then routed by the credential scope's service. */
  private async controlReply (req: Awaited<ReturnType<typeof readRequest>>): Promise<Reply> {
    const auth = verifyHeaderSigned(req, this.o.store)
    const service = auth.ok ? auth.service : /Credential=[^/,\s]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1]
    if (!auth.ok) return service === 'iam' ? iamAuthError(auth.status, auth.code, auth.message) : jsonError(auth.status, auth.code, auth.message)
    if (auth.service === 'iot') {
      if (auth.region !== this.state.region) return jsonError(403, 'InvalidSignatureException', `Credential should be scoped to a valid region, not '${auth.region}'.`)
      return await this.iot.handle(req)
    }
    // IAM is global: AWS signs it for us-east-1; a custom endpoint makes the SDK use the client's region.
    if (auth.service === 'iam') return this.iam.handle(req)
    return jsonError(400, 'UnknownServiceException', `The stand-in answers the services iot and iam, not ${auth.service}.`)
  }

  private async issueDeviceCertificate (): Promise<{ certPem: string, keyPem: string, certificateId: string, commonName: string }> {
    // AWS names a certificate by the SHA-256 of its DER, which cannot be in its own subject; a
    // random CN gives mosquitto (use_identity_as_username) a unique username for the ACL.
    const commonName = `iot-cert-${randomBytes(12).toString('hex')}`
    const issued = await this.o.pki.issueClient(commonName)
    return { ...issued, commonName }
  }

  private renderAcl (): string {
    const front = [`# The WSS front (browsers): read only.`, `user ${WSS_FRONT_USER}`, ...WSS_FRONT_TOPICS.map((t) => `topic read ${t}`), '']
    return this.state.renderAcl(front.join('\n'))
  }

  private async applyAcl (): Promise<void> {
    await writeAtomic(this.broker.files.aclFile, this.renderAcl())
    await this.broker.reload()
  }

  private thingPolicy (): NonNullable<ReturnType<IotState['policies']['get']>> {
    let policy = this.state.policies.get(THING_POLICY_NAME)
    if (policy === undefined) {
      const arn = (resource: string): string => this.state.iotArn(resource)
      const document = JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: arn('client/${iot:Connection.Thing.ThingName}') },
          { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive', 'iot:RetainPublish'], Resource: arn('topic/things/${iot:Connection.Thing.ThingName}/*') },
          { Effect: 'Allow', Action: 'iot:Subscribe', Resource: arn('topicfilter/things/${iot:Connection.Thing.ThingName}/*') }
        ]
      })
      const now = Date.now()
      policy = { name: THING_POLICY_NAME, arn: arn(`policy/${THING_POLICY_NAME}`), document, createdAt: now, modifiedAt: now, generationId: randomBytes(16).toString('hex'), targets: new Set() }
      this.state.policies.set(policy.name, policy)
    }
    return policy
  }

  /** Judges a client mosquitto just accepted (it cannot itself know certificate states or thing names). */
  private checkClient ({ clientId, username }: ConnectedClient): void {
    if (username === ADMIN_USER || username === WSS_FRONT_USER) return
    const cert = username === undefined ? undefined : this.state.certificateByCommonName(username)
    let reason: string | undefined
    if (cert === undefined) reason = 'the certificate is not registered'
    else if (cert.status !== 'ACTIVE') reason = `certificate ${cert.id} is ${cert.status}`
    else if ((this.o.enforceClientIdIsThingName ?? true) && !this.state.thingsOf(cert.id).includes(clientId)) {
      reason = `client id ${clientId} is not the name of a thing certificate ${cert.id} is attached to`
    }
    if (reason === undefined) return
    this.refusals.push({ clientId, username, reason })
    this.track(this.kickIfStill(clientId, username))
  }

  private async disconnectCertificate (cert: Certificate, reason: string): Promise<void> {
    const victims = [...this.broker.clients].filter(([, username]) => username === cert.commonName).map(([clientId]) => clientId)
    for (const clientId of victims) this.refusals.push({ clientId, username: cert.commonName, reason })
    await Promise.all(victims.map(async (clientId) => { await this.kickIfStill(clientId, cert.commonName) }))
  }

  /** Disconnects `clientId` unless, meanwhile, another certificate connected with that id. */
  private async kickIfStill (clientId: string, username: string | undefined): Promise<void> {
    if (this.broker.clients.get(clientId) !== username) return
    await this.broker.kick(clientId)
  }

  private track (p: Promise<void>): void {
    const tracked = p.catch(() => {}).finally(() => { this.kicks.delete(tracked) })
    this.kicks.add(tracked)
  }
}

async function listen (server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : 0
}
