import { z } from 'zod'
import { parseTopic, type ParsedTopic } from './topics'
import { CallRecord, DeviceState, Presence, RingEvent, SignalToDevice, SignalToViewer } from './schemas'
import { decode, type Decoded } from './codec'
import { InspectBatch } from './inspect'
import { ProtocolError } from './errors'
import { DoorAttempt } from './api'
import { Signed, SignedList } from './trust'
import { MAX_STOCK_SETTINGS } from './kvsStock'
import { MAX_SNAPSHOT_MESSAGE_BYTES, SnapshotEvent } from './snapshot'
import { SignedReplies } from './replies'
import { GrantsMessage } from './grants'
import { CommandResult, MAX_COMMAND_BYTES, MAX_COMMAND_RESULT_BYTES, OutOfCallCommand } from './commands'
import { KeptRing, MAX_KEPT_MESSAGE_BYTES } from './history'
import { ClipMessage, MAX_CLIP_MESSAGE_BYTES } from './clip'

/** The retained revocation list: a token signed by the home, checked by whoever uses it. */
export const RevocationsMessage = z.strictObject({
  list: SignedList,
  /** The owner's signed per-doorbell settings (kvsStock.ts `StockDoorSetting`), when there are any. */
  stockSettings: z.array(Signed).max(MAX_STOCK_SETTINGS).optional()
})
export type RevocationsMessage = z.infer<typeof RevocationsMessage>

/** The retained quick replies: signed by the owner, checked by each device (DoorGuard.takeReplies). */
export const RepliesMessage = z.strictObject({ signed: SignedReplies })
export type RepliesMessage = z.infer<typeof RepliesMessage>

/** Which schema a topic carries: one table, used by the hub's gate, the device and the viewer. */
export const schemaForTopic: Record<ParsedTopic['kind'], z.ZodType> = {
  ring: RingEvent,
  snapshot: SnapshotEvent,
  state: DeviceState,
  presence: Presence,
  calls: CallRecord,
  inspect: InspectBatch,
  audit: DoorAttempt,
  kept: KeptRing,
  clip: ClipMessage,
  revocations: RevocationsMessage,
  replies: RepliesMessage,
  grants: GrantsMessage,
  'to-device': SignalToDevice,
  'to-viewer': SignalToViewer,
  command: OutOfCallCommand,
  'command-result': CommandResult
}

/** A bound below the default for the topics whose messages are small by nature. */
const maxBytesFor: Partial<Record<ParsedTopic['kind'], number>> = {
  snapshot: MAX_SNAPSHOT_MESSAGE_BYTES,
  kept: MAX_KEPT_MESSAGE_BYTES,
  clip: MAX_CLIP_MESSAGE_BYTES,
  command: MAX_COMMAND_BYTES,
  'command-result': MAX_COMMAND_RESULT_BYTES
}

type TopicOf<K extends ParsedTopic['kind']> = ParsedTopic & { kind: K }

/** A parsed message, discriminated by `kind` (the topic's last level). */
export type TopicMessage =
  | { kind: 'ring', topic: TopicOf<'ring'>, payload: RingEvent }
  | { kind: 'snapshot', topic: TopicOf<'snapshot'>, payload: SnapshotEvent }
  | { kind: 'state', topic: TopicOf<'state'>, payload: DeviceState }
  | { kind: 'presence', topic: TopicOf<'presence'>, payload: Presence }
  | { kind: 'calls', topic: TopicOf<'calls'>, payload: CallRecord }
  | { kind: 'inspect', topic: TopicOf<'inspect'>, payload: InspectBatch }
  | { kind: 'audit', topic: TopicOf<'audit'>, payload: DoorAttempt }
  | { kind: 'kept', topic: TopicOf<'kept'>, payload: KeptRing }
  | { kind: 'clip', topic: TopicOf<'clip'>, payload: ClipMessage }
  | { kind: 'revocations', topic: TopicOf<'revocations'>, payload: RevocationsMessage }
  | { kind: 'replies', topic: TopicOf<'replies'>, payload: RepliesMessage }
  | { kind: 'grants', topic: TopicOf<'grants'>, payload: GrantsMessage }
  | { kind: 'to-device', topic: TopicOf<'to-device'>, payload: SignalToDevice }
  | { kind: 'to-viewer', topic: TopicOf<'to-viewer'>, payload: SignalToViewer }
  | { kind: 'command', topic: TopicOf<'command'>, payload: OutOfCallCommand }
  | { kind: 'command-result', topic: TopicOf<'command-result'>, payload: CommandResult }

/**
 * Parses a message on one of our topics. Also checks that ids in the payload agree with the
 * topic (a device cannot publish another device's state; an offer names its own session).
 */
export function decodeTopicMessage (topic: string, payload: string | Uint8Array): Decoded<TopicMessage> {
  const parsed = parseTopic(topic)
  if (parsed === null) {
    return { ok: false, error: new ProtocolError('unknown-topic', 'not a doorbell topic', topic) }
  }
  const result = decode(schemaForTopic[parsed.kind], payload, topic, maxBytesFor[parsed.kind])
  if (!result.ok) return result
  const value = result.value as Record<string, unknown>
  if ('deviceId' in value && 'device' in parsed && value.deviceId !== parsed.device) {
    return { ok: false, error: new ProtocolError('invalid-payload', `deviceId ${String(value.deviceId)} does not match the topic`, topic) }
  }
  if (parsed.kind === 'inspect' && (value as InspectBatch).source.id !== parsed.device) {
    return { ok: false, error: new ProtocolError('invalid-payload', 'source.id does not match the topic', topic) }
  }
  if ('session' in parsed && value.sessionId !== parsed.session) {
    return { ok: false, error: new ProtocolError('invalid-payload', `sessionId ${String(value.sessionId)} does not match the topic`, topic) }
  }
  if ('viewer' in parsed && 'viewerId' in value && value.viewerId !== parsed.viewer) {
    return { ok: false, error: new ProtocolError('invalid-payload', `viewerId ${String(value.viewerId)} does not match the topic`, topic) }
  }
  return { ok: true, value: { kind: parsed.kind, topic: parsed, payload: result.value } as TopicMessage }
}
