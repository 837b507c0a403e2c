/**
 * The cloud, stood in for on this machine: the KVS signaling emulator (its TURN servers a real
 * coturn) and the IoT Core stand-in (mosquitto with mutual TLS, its SigV4 WebSocket front, the IoT/IAM control plane and the
 * credentials provider), sharing one PKI and one credential store, as one AWS account would.
 * A doorbell is provisioned by the real setup command (device/src/cloud-setup) through the real
 * AWS SDK v3 clients, so the configs every cloud test uses are the ones a person would get.
 *
 * This is not AWS: see tests/src/cloud/kvs/README.md and tests/src/cloud/iot/README.md for what
 * the stand-ins check and what they do not.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AwsCredentials, DeviceCloudConfig, ViewerCloudConfig } from '@doorbell/core'
import { awsCloud, resourceNames, runSetup } from '@doorbell/device/cloud-setup'
import { Pki } from './pki'
import { CredentialStore } from './sigv4'
import { KvsEmulator, type KvsLimits } from './kvs/emulator'
import { kvsIceServers, startKvsTurn } from './kvs/turn'
import type { Coturn } from '../coturn'
import { IotStandIn } from './iot'
import { trustCa } from './trust'

export const REGION = 'us-east-1'

export interface CloudStandIns {
  pki: Pki
  store: CredentialStore
  kvs: KvsEmulator
  iot: IotStandIn
  /** The real coturn behind the emulator's GetIceServerConfig (KVS always lists TURN servers). */
  turn: Coturn
  /** The stand-ins' root CA as a file (a device config's caFile; NODE_EXTRA_CA_CERTS for a child process). */
  caFile: string
  /** Runs the setup command for one doorbell; returns the configs it wrote. */
  provision: (homeId: string, deviceId: string) => Promise<{ device: DeviceCloudConfig, viewer: ViewerCloudConfig }>
  /** A resident's own IAM access key (what they type into Settings). */
  resident: AwsCredentials
  stop: () => Promise<void>
}

const key = (): { accessKeyId: string, secretAccessKey: string } => ({
  accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
  secretAccessKey: randomBytes(30).toString('base64')
})

export async function startCloud (o: { kvsLimits?: Partial<KvsLimits> } = {}): Promise<CloudStandIns> {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-cloud-'))
  const pki = await Pki.create()
  const store = new CredentialStore()
  const admin = key()
  store.add({ ...admin, principal: 'user/admin' })
  const resident = key()
  store.add({ ...resident, principal: 'user/resident' })
  // This process (the in-process doorbell's SDK WebSocket, fetch, AWS SDK clients) trusts the stand-ins' CA.
  const untrust = trustCa(pki.serverCaPem)
  let kvs: KvsEmulator | null = null
  let iot: IotStandIn | null = null
  let turn: Coturn | null = null
  const stopAll = async (): Promise<void> => {
    await iot?.stop()
    await kvs?.stop()
    await turn?.stop()
    untrust()
    await rm(dir, { recursive: true, force: true })
  }
  const caFile = join(dir, 'aws-root-ca.pem')
  try {
    const coturn = turn = await startKvsTurn(pki, dir)
    kvs = await KvsEmulator.start({ pki, store, region: REGION, iceServers: () => kvsIceServers(coturn), ...(o.kvsLimits ? { limits: o.kvsLimits } : {}) })
    iot = await IotStandIn.start({ pki, store, dir: join(dir, 'iot'), region: REGION })
    await writeFile(caFile, pki.serverCaPem)
  } catch (err) {
    await stopAll() // mosquitto among them: nothing of a failed start is left running
    throw err
  }
  const started = { kvs, iot, turn }
  const out = join(dir, 'setup')

  return {
    pki,
    store,
    ...started,
    caFile,
    resident,
    async provision (homeId, deviceId) {
      const { kvs, iot } = started
      const api = awsCloud({ region: REGION, credentials: admin, endpoints: { kinesisvideo: kvs.endpoint, iot: iot.controlEndpoint, iam: iot.controlEndpoint } })
      try {
        await runSetup(api, { names: resourceNames(homeId, deviceId), region: REGION, out, kvsEndpoint: kvs.endpoint, caFile, iotWssUrl: iot.wssUrl }, { mode: 'setup', dryRun: false })
      } finally { api.destroy() }
      const device = DeviceCloudConfig.parse(JSON.parse(await readFile(join(out, deviceId, 'device-cloud.json'), 'utf8')))
      const viewer = ViewerCloudConfig.parse(JSON.parse(await readFile(join(out, 'viewer-cloud.json'), 'utf8')))
      return { device, viewer }
    },
    stop: stopAll
  }
}
