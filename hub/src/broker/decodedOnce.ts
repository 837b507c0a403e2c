import { decodeTopicMessage } from '@doorbell/core'

type Decoded = ReturnType<typeof decodeTopicMessage>

/**
 * Each published message parsed by its topic's schema once, for the gate (`authorizePublish`) and
 * the broker's `publish` listeners after it (the history, Web Push, the audit log), which used to
 * parse the same ring again each. aedes hands all of them the payload Buffer the client's PUBLISH
 * was parsed into (ackAfterStore.ts relies on the same), so the parse is kept by that Buffer, for
 * as long as the message lives, and only for the same topic. The result is shared, so it is
 * frozen, deeply: a reader that tried to change it would throw, not change what the next one reads.
 */
const parsed = new WeakMap<Buffer, { topic: string, decoded: Decoded }>()

export function decodePublished (topic: string, payload: Buffer | string): Decoded {
  if (typeof payload === 'string') return decodeTopicMessage(topic, payload)
  const known = parsed.get(payload)
  if (known !== undefined && known.topic === topic) return known.decoded
  const decoded = deepFreeze(decodeTopicMessage(topic, payload))
  parsed.set(payload, { topic, decoded })
  return decoded
}

function deepFreeze<T> (value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value
  // A Buffer or typed array cannot be frozen while it has elements; its bytes are the message's own.
  if (ArrayBuffer.isView(value)) return value
  for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key])
  return Object.freeze(value)
}
