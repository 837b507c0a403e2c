import { createHash, randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { CredentialStore } from '../sigv4'
import { header, json, segments, type Reply } from './http'
import { iamId, isoSeconds, type IotState } from './state'

/**
 * The AWS IoT credentials provider (`iot:CredentialProvider` endpoint): a device trades its X.509
 * certificate for temporary AWS credentials of the role a role alias names.
 *
 *   GET /role-aliases/<alias>/credentials   (mutual TLS, header x-amzn-iot-thingname: <thing>)
 *   200 {"credentials":{"accessKeyId","secretAccessKey","sessionToken","expiration"}}
 *
 * Granted when the client certificate chains to the device CA, is registered and ACTIVE, is
 * attached to the thing named in the header, the alias exists, and its role exists in IAM with a
 * trust policy naming credentials.iot.amazonaws.com. The credentials go into the CredentialStore
 * with principal `thing/<thingName>`, so the other stand-ins (KVS) accept them.
 * Not checked: the IoT policy's iot:AssumeRoleWithCertificate statement (policies are stored, not evaluated).
 */
export function credentialsReply (req: IncomingMessage, state: IotState, store: CredentialStore, ttlMs: (aliasSeconds: number) => number): Reply {
  const parts = segments((req.url ?? '/').split('?')[0]!)
  if (req.method !== 'GET' || parts === undefined || parts.length !== 3 || parts[0] !== 'role-aliases' || parts[2] !== 'credentials') {
    return json(404, { message: 'Not found: GET /role-aliases/<alias>/credentials' })
  }
  const alias = parts[1]!
  const socket = req.socket as TLSSocket
  const peer = socket.getPeerCertificate()
  if (!socket.authorized || peer === null || peer.raw === undefined) return denied('A client certificate signed by the device CA is required.')
  const certificateId = createHash('sha256').update(peer.raw).digest('hex')
  const cert = state.certificates.get(certificateId)
  if (cert === undefined) return denied('The certificate is not registered.')
  if (cert.status !== 'ACTIVE') return denied('The certificate is not ACTIVE.')
  const thingName = header(req.headers, 'x-amzn-iot-thingname')
  if (thingName === undefined || thingName === '') return denied('The header x-amzn-iot-thingname is missing.')
  const thing = state.things.get(thingName)
  if (thing === undefined || !thing.principals.has(cert.id)) return denied(`The certificate is not attached to the thing ${thingName}.`)
  const roleAlias = state.roleAliases.get(alias)
  if (roleAlias === undefined) return denied(`The role alias ${alias} does not exist.`)
  const role = [...state.roles.values()].find((r) => r.arn === roleAlias.roleArn)
  if (role === undefined) return denied(`The role ${roleAlias.roleArn} of role alias ${alias} does not exist.`)
  if (!role.assumeRolePolicyDocument.includes('credentials.iot.amazonaws.com')) {
    return denied(`The trust policy of ${role.arn} does not let credentials.iot.amazonaws.com assume it.`)
  }
  const expiresAt = Date.now() + ttlMs(roleAlias.durationSeconds)
  const credential = {
    accessKeyId: iamId('ASIA', 16),
    secretAccessKey: randomBytes(30).toString('base64'),
    sessionToken: randomBytes(96).toString('base64'),
    expiresAt,
    principal: `thing/${thingName}`
  }
  store.add(credential)
  return json(200, {
    credentials: {
      accessKeyId: credential.accessKeyId,
      secretAccessKey: credential.secretAccessKey,
      sessionToken: credential.sessionToken,
      expiration: isoSeconds(expiresAt)
    }
  })
}

function denied (message: string): Reply {
  return json(403, { message: `Access Denied: ${message}` })
}
