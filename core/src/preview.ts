import { z } from 'zod'

/**
 * The live preview on the call's data channel (issue 21). A session offered while it rings with
 * `preview: true` (schemas.ts, Offer) is a preview: video only, the device's microphone not
 * sent and nothing the viewer sends played. The resident's Answer is `take-call` on that
 * session's own channel (the session was admitted with the member's grant, and only its viewer
 * holds the channel, so it needs no signature); the device opens audio both ways and says
 * `call-taken`. No second offer: the audio lines were negotiated sendrecv at the start.
 */
export const TakeCall = z.strictObject({ type: z.literal('take-call') })
export type TakeCall = z.infer<typeof TakeCall>

/** The device opened audio on the session (its microphone is sent; the viewer may talk). */
export const CallTaken = z.strictObject({ type: z.literal('call-taken') })
export type CallTaken = z.infer<typeof CallTaken>

export const TAKE_CALL = 'take-call'
export const CALL_TAKEN = 'call-taken'
