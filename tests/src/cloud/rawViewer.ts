import { SignalingClient, Role } from 'amazon-kinesis-video-streams-webrtc'
import { GetSignalingChannelEndpointCommand, DescribeSignalingChannelCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video'

interface Credentials { accessKeyId: string, secretAccessKey: string, sessionToken?: string }

/**
 * A viewer on a doorbell's KVS channel made with the unmodified KVS SDK alone, as anyone holding
 * the home's AWS credentials could: for sending what our own client never would (bad input,
 * forgeries). Given copies of the credentials: the AWS SDK writes into what it is given.
 */
export async function openRawKvsViewer (o: { region: string, endpoint?: string | undefined, channelName: string, credentials: Credentials, clientId: string }): Promise<{ raw: SignalingClient, answers: unknown[] }> {
  const kvs = new KinesisVideoClient({ region: o.region, ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}), credentials: { ...o.credentials } })
  const channelARN = (await kvs.send(new DescribeSignalingChannelCommand({ ChannelName: o.channelName }))).ChannelInfo!.ChannelARN!
  const endpoints = await kvs.send(new GetSignalingChannelEndpointCommand({ ChannelARN: channelARN, SingleMasterChannelEndpointConfiguration: { Protocols: ['WSS'], Role: 'VIEWER' } }))
  kvs.destroy()
  const raw = new SignalingClient({ role: Role.VIEWER, clientId: o.clientId, channelARN, channelEndpoint: endpoints.ResourceEndpointList![0]!.ResourceEndpoint!, region: o.region, credentials: { ...o.credentials } })
  const answers: unknown[] = []
  raw.on('sdpAnswer', (payload: unknown) => { answers.push(payload) })
  raw.on('error', () => {})
  const opened = new Promise<void>((resolve) => { raw.once('open', () => resolve()) })
  raw.open()
  await opened
  return { raw, answers }
}
