import { z } from 'zod'
import { fromB64url } from './b64url'
import { Id } from './ids'

/**
 * Web Push (docs/history.md, "Web Push"): a screen's push subscription as the browser gives it
 * (`PushSubscription.toJSON()`), what the hub sends in it when a doorbell rings, and the bounds
 * of both. RFC 8030 (the push service), 8291 (aes128gcm encryption), 8292 (VAPID).
 */

const b64urlBytes = (bytes: number, what: string, check: (b: Uint8Array) => boolean = () => true) => z.string().max(200).refine((s) => {
  try {
    const b = fromB64url(s)
    return b.length === bytes && check(b)
  } catch { return false }
}, `${what}: base64url of ${bytes} bytes`)

export const PushSubscriptionInput = z.strictObject({
  /** The push service's URL for this screen (https; a browser never gives anything else). */
  endpoint: z.string().max(2048).url().refine((u) => /^https?:\/\//.test(u), 'endpoint: an http(s) URL'),
  expirationTime: z.number().int().nonnegative().nullable().optional(),
  keys: z.strictObject({
    /** The screen's P-256 public key, uncompressed (0x04, X, Y). */
    p256dh: b64urlBytes(65, 'keys.p256dh', (b) => b[0] === 4),
    /** The 16-byte authentication secret. */
    auth: b64urlBytes(16, 'keys.auth')
  })
})
export type PushSubscriptionInput = z.infer<typeof PushSubscriptionInput>

/** `POST /api/push/subscriptions`: this screen's subscription, and the name it is shown by. */
export const PushSubscribeRequest = z.strictObject({
  subscription: PushSubscriptionInput,
  screen: z.string().min(1).max(64).optional()
})
export type PushSubscribeRequest = z.infer<typeof PushSubscribeRequest>

/** `DELETE`-like `POST /api/push/unsubscribe`: this screen stops. */
export const PushUnsubscribeRequest = z.strictObject({ endpoint: z.string().max(2048).url() })
export type PushUnsubscribeRequest = z.infer<typeof PushUnsubscribeRequest>

/** `GET /api/push/key`: the hub's VAPID public key (base64url, uncompressed P-256), the browser's `applicationServerKey`. */
export const PushKeyResponse = z.strictObject({ publicKey: z.string(), subscriptions: z.number().int().nonnegative() })
export type PushKeyResponse = z.infer<typeof PushKeyResponse>

/** A member keeps at most this many screens subscribed; the oldest goes when one more subscribes. */
export const MAX_PUSH_SUBSCRIPTIONS_PER_MEMBER = 10

/**
 * RFC 8030 push services must take at least 4096 bytes of body. One aes128gcm record (RFC 8188)
 * costs a 86-byte header (salt 16, record size 4, key id length 1, the sender's key 65), a 16-byte
 * tag and a 1-byte delimiter, so the ring's JSON must fit in 4096 - 103 bytes.
 */
export const MAX_PUSH_BODY_BYTES = 4096
export const MAX_PUSH_PLAINTEXT_BYTES = MAX_PUSH_BODY_BYTES - 86 - 16 - 1
/** The picture in a push: a small JPEG, base64, or none. */
export const MAX_PUSH_PICTURE_BASE64 = 3072

/** What the service worker receives (decrypted by the browser) when a doorbell rings. */
export const RingPush = z.strictObject({
  v: z.literal(1),
  kind: z.literal('ring'),
  deviceId: Id,
  deviceName: z.string().min(1).max(64),
  ringId: Id,
  at: z.number().int().nonnegative(),
  /** A small JPEG of the visitor (base64), or null: no picture yet, none, or too big for a push. */
  jpeg: z.string().max(MAX_PUSH_PICTURE_BASE64).regex(/^\/9j\/[A-Za-z0-9+/]*={0,2}$/, 'a JPEG in base64').nullable()
})
export type RingPush = z.infer<typeof RingPush>
