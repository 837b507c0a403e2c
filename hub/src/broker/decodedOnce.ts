import { decodeTopicMessage } from '@doorbell/core'

type Decoded = ReturnType<typeof decodeTopicMessage>

/**
 * Each published message parsed by its topic's schema once, for the gate (`authorizePublish`) and
 * the broker's `publish` listeners after it (the history, Web Push, the audit log), which used to
 * parse the same ring again each. aedes hands all of them the payload Buffer the client's PUBLISH
 * was parsed into (ackAfterStore.ts relies on the same), so the parse is kept by that Buffer, for
 * as long as the message lives, and only for the same topic. The result is shared: its readers
 * never change it.
 */
const parsed = new WeakMap<Buffer, { topic: string, decoded: Decoded }>()

export function decodePublished (topic: string, payload: Buffer | string): Decoded {
  if (typeof payload === 'string') return decodeTopicMessage(topic, payload)
  const known = parsed.get(payload)
  if (known !== undefined && known.topic === topic) return known.decoded
  const decoded = decodeTopicMessage(topic, payload)
  parsed.set(payload, { topic, decoded })
  return decoded
}
