import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { UnexpectedKvsAnswer, kvsControlPlane } from '../src/kvsControlPlane'

/**
 * The one implementation of the KVS control-plane calls, with the real AWS SDK v3 clients against
 * a local HTTP server that answers as KVS does (REST-JSON), good answers and bad ones.
 */

const ARN = 'arn:aws:kinesisvideo:eu-west-1:123456789012:channel/front/1700000000000'
type Answers = Record<string, (body: Record<string, unknown>) => unknown>

async function kvs (answers: Answers): Promise<{ url: string, asked: Array<{ path: string, body: Record<string, unknown> }>, close: () => Promise<void> }> {
  const asked: Array<{ path: string, body: Record<string, unknown> }> = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = ''
    req.on('data', (c: Buffer) => { text += c.toString() })
    req.on('end', () => {
      const body = JSON.parse(text || '{}') as Record<string, unknown>
      asked.push({ path: req.url ?? '', body })
      const answer = answers[req.url ?? '']
      res.setHeader('content-type', 'application/json')
      if (!answer) { res.statusCode = 404; res.end('{}'); return }
      res.end(JSON.stringify(answer(body)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, asked, close: async () => { await new Promise((resolve) => server.close(resolve)) } }
}

const plane = (endpoint: string, role: 'MASTER' | 'VIEWER') => kvsControlPlane({
  region: 'eu-west-1',
  role,
  credentials: { accessKeyId: 'AKIAEXAMPLE0000000', secretAccessKey: 'secret' },
  endpoint,
  clientOptions: { maxAttempts: 1 }
})

test('the channel, its endpoints for the role, and TURN servers: parsed, bad ones dropped, the shortest Ttl', async (t) => {
  const server = await kvs({
    '/describeSignalingChannel': () => ({ ChannelInfo: { ChannelARN: ARN, ChannelName: 'front', ChannelStatus: 'ACTIVE' } }),
    '/getSignalingChannelEndpoint': () => ({ ResourceEndpointList: [{ Protocol: 'WSS', ResourceEndpoint: 'wss://v-1.example' }, { Protocol: 'HTTPS', ResourceEndpoint: server.url }] }),
    '/v1/get-ice-server-config': () => ({
      IceServerList: [
        { Uris: ['turn:1.2.3.4:443?transport=udp', 'stun:1.2.3.4:443', 'turns:1.2.3.4:443?transport=tcp', 'http://evil'], Username: 'u', Password: 'p', Ttl: 300 },
        { Uris: ['turn:5.6.7.8:443'], Username: 'u2', Ttl: 100 },
        { Uris: ['turn:9.9.9.9:443'], Username: 'u3', Password: 'p3', Ttl: 120 }
      ]
    })
  })
  t.after(server.close)
  // The signaling endpoint is the server too (its HTTPS endpoint is given as http for the test).
  const viewer = plane(server.url, 'VIEWER')
  t.after(() => { viewer.destroy() })
  const channel = await viewer.channel('front').catch((err: Error) => err)
  // An http:// endpoint is not KVS's: refused, as a resident would be told.
  assert.ok(channel instanceof UnexpectedKvsAnswer && channel.name === 'UnexpectedKvsAnswer', String(channel))
  assert.equal(channel.message, 'KVS gave no HTTPS endpoint for "front"')
  assert.deepEqual(server.asked.map((a) => a.path), ['/describeSignalingChannel', '/getSignalingChannelEndpoint'])
  assert.deepEqual(server.asked[1]!.body.SingleMasterChannelEndpointConfiguration, { Protocols: ['WSS', 'HTTPS'], Role: 'VIEWER' })

  const ice = await viewer.iceServers({ channelARN: ARN, wssEndpoint: 'wss://v-1.example', httpsEndpoint: server.url }, 'v1')
  assert.deepEqual(ice.servers, [
    { urls: ['turn:1.2.3.4:443?transport=udp', 'turns:1.2.3.4:443?transport=tcp'], username: 'u', credential: 'p' },
    { urls: ['turn:9.9.9.9:443'], username: 'u3', credential: 'p3' }
  ], 'only turn: and turns: URIs, only servers with credentials')
  assert.equal(ice.ttlSeconds, 120)
  assert.deepEqual(server.asked.at(-1)!.body, { ChannelARN: ARN, ClientId: 'v1', Service: 'TURN' })
})

test('the master asks for MASTER endpoints and gets wss and https ones', async (t) => {
  const server = await kvs({
    '/describeSignalingChannel': () => ({ ChannelInfo: { ChannelARN: ARN } }),
    '/getSignalingChannelEndpoint': () => ({ ResourceEndpointList: [{ Protocol: 'HTTPS', ResourceEndpoint: 'https://r-1.example' }, { Protocol: 'WSS', ResourceEndpoint: 'wss://v-1.example' }] })
  })
  t.after(server.close)
  const master = plane(server.url, 'MASTER')
  t.after(() => { master.destroy() })
  assert.deepEqual(await master.channel('front'), { channelARN: ARN, wssEndpoint: 'wss://v-1.example', httpsEndpoint: 'https://r-1.example' })
  assert.deepEqual(server.asked[1]!.body.SingleMasterChannelEndpointConfiguration, { Protocols: ['WSS', 'HTTPS'], Role: 'MASTER' })
  assert.equal(typeof master.clockOffsetMs, 'number')
})

test('an ARN that is not a channel\'s, or a channel that is not active, is refused before any other call', async (t) => {
  for (const [info, said] of [
    [{ ChannelARN: 'arn:aws:s3:::bucket' }, 'KVS described "front" without a valid channel ARN'],
    [{}, 'KVS described "front" without a valid channel ARN'],
    [{ ChannelARN: ARN, ChannelStatus: 'DELETING' }, 'the signaling channel "front" is not active (DELETING)']
  ] as const) {
    const server = await kvs({ '/describeSignalingChannel': () => ({ ChannelInfo: info }) })
    const master = plane(server.url, 'MASTER')
    await assert.rejects(master.channel('front'), (err: Error) => err instanceof UnexpectedKvsAnswer && err.message === said)
    assert.equal(server.asked.length, 1)
    master.destroy()
    await server.close()
  }
  void t
})

test('no ICE servers: an empty list that lasts KVS\'s default Ttl', async (t) => {
  const server = await kvs({ '/v1/get-ice-server-config': () => ({ IceServerList: [] }) })
  t.after(server.close)
  const master = plane(server.url, 'MASTER')
  t.after(() => { master.destroy() })
  assert.deepEqual(await master.iceServers({ channelARN: ARN, wssEndpoint: 'wss://x', httpsEndpoint: server.url }), { servers: [], ttlSeconds: 300 })
  assert.equal(server.asked[0]!.body.ClientId, undefined, 'the master sends no client id')
})
