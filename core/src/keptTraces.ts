import { z } from 'zod'
import { Id } from './ids'
import { Nonce, Signed, newNonce, sign, type SigningKey } from './signing'
import { fromB64url, toB64url } from './b64url'
import { TRACE_MAX_BYTES } from './inspectTrace'

/**
 * The doorbell's kept call traces (docs/inspector.md), fetched by the owner from Home settings
 * over the signed command channel outside a call (docs/commands.md): `traces-list` answers the
 * kept list, `trace-read` one chunk of one trace. Owner only: the device checks the role in the
 * verified grant (DoorGuard.checkTraces). A trace may be 4 MiB and the broker forwards at most
 * 256 KiB a packet, so a trace travels in chunks, each asked for with its own signed command.
 */

/** Raw bytes of a trace per chunk: 96 KiB, 128 KiB once in base64, well under the broker's packet limit. */
export const TRACE_CHUNK_BYTES = 96 * 1024
/** The most chunks a trace can need (a kept trace is at most TRACE_MAX_BYTES). */
export const TRACE_MAX_CHUNKS = Math.ceil(TRACE_MAX_BYTES / TRACE_CHUNK_BYTES)
/** The most traces one list names (the keeper keeps far fewer: `keepTraces.calls`). */
export const MAX_KEPT_TRACES = 100

/** A kept trace's id: its file name, the call's start in ms and a sequence number. */
export const KeptTraceId = z.string().regex(/^\d{13}-\d{1,9}$/, 'not a kept trace id')

/** What the owner signs to list or read kept traces on one doorbell, once. */
export const TraceClaim = z.strictObject({
  home: Id,
  device: Id,
  session: Id,
  command: Id,
  action: z.enum(['traces-list', 'trace-read']),
  /** For a read: the trace and the chunk, so a signed read cannot be turned into another. */
  trace: KeptTraceId.nullable(),
  chunk: z.number().int().nonnegative().max(TRACE_MAX_CHUNKS).nullable(),
  ts: z.number().int().nonnegative(),
  nonce: Nonce
})
export type TraceClaim = z.infer<typeof TraceClaim>

export const TracesListCommand = z.strictObject({
  type: z.literal('traces-list'),
  id: Id,
  credential: Signed,
  proof: Signed
})
export type TracesListCommand = z.infer<typeof TracesListCommand>

export const TraceReadCommand = z.strictObject({
  type: z.literal('trace-read'),
  id: Id,
  trace: KeptTraceId,
  chunk: z.number().int().nonnegative().max(TRACE_MAX_CHUNKS),
  credential: Signed,
  proof: Signed
})
export type TraceReadCommand = z.infer<typeof TraceReadCommand>

export async function signTracesCommand (o: {
  credential: string, key: SigningKey, home: string, device: string, session: string, command: string, now?: number
} & ({ action: 'traces-list' } | { action: 'trace-read', trace: string, chunk: number })): Promise<TracesListCommand | TraceReadCommand> {
  const read = o.action === 'trace-read' ? { trace: o.trace, chunk: o.chunk } : null
  const proof = await sign(TraceClaim, {
    home: o.home, device: o.device, session: o.session, command: o.command, action: o.action,
    trace: read?.trace ?? null, chunk: read?.chunk ?? null, ts: o.now ?? Date.now(), nonce: newNonce()
  }, o.key)
  return read
    ? { type: 'trace-read', id: o.command, trace: read.trace, chunk: read.chunk, credential: o.credential, proof }
    : { type: 'traces-list', id: o.command, credential: o.credential, proof }
}

/** One kept trace as the owner's list shows it. */
export const KeptTraceSummary = z.strictObject({
  id: KeptTraceId,
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
  /** The names of the viewers that joined the call, in order. */
  who: z.array(z.string().max(64)).max(32),
  bytes: z.number().int().nonnegative().max(TRACE_MAX_BYTES)
})
export type KeptTraceSummary = z.infer<typeof KeptTraceSummary>

/** A `traces-list` result's body: whether keeping is on (an empty list says why it is empty), newest first. */
export const KeptTraceList = z.strictObject({
  keeping: z.boolean(),
  traces: z.array(KeptTraceSummary).max(MAX_KEPT_TRACES)
})
export type KeptTraceList = z.infer<typeof KeptTraceList>

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'not a SHA-256 in hex')

/** A `trace-read` result's body: chunk `index` of `total`, and the hash of the whole file to check once reassembled. */
export const TraceChunk = z.strictObject({
  trace: KeptTraceId,
  index: z.number().int().nonnegative(),
  total: z.number().int().min(1).max(TRACE_MAX_CHUNKS),
  /** The whole file's size and SHA-256: the same in every chunk. */
  bytes: z.number().int().nonnegative().max(TRACE_MAX_BYTES),
  sha256: Sha256Hex,
  /** This chunk's bytes, base64url (at most TRACE_CHUNK_BYTES of the file). */
  data: z.string().max(Math.ceil(TRACE_CHUNK_BYTES / 3) * 4)
}).refine((c) => c.index < c.total, 'a chunk index is below the total')
export type TraceChunk = z.infer<typeof TraceChunk>

/** Reassembling a fetched trace went wrong: a chunk is missing, inconsistent, or the whole does not hash to what the doorbell said. */
export class TraceTransferError extends Error {
  override readonly name = 'TraceTransferError'
}

export async function sha256Hex (bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Chunk `index` of a trace file's bytes (the device's side; `sha256` computed once by the caller). */
export function traceChunk (trace: string, file: Uint8Array, sha256: string, index: number): TraceChunk | null {
  const total = Math.max(1, Math.ceil(file.length / TRACE_CHUNK_BYTES))
  if (index >= total) return null
  return { trace, index, total, bytes: file.length, sha256, data: toB64url(file.subarray(index * TRACE_CHUNK_BYTES, (index + 1) * TRACE_CHUNK_BYTES)) }
}

/**
 * Fetches every chunk of one trace with `read(index)` in order and checks that they agree (same
 * trace, total, size and hash), that the sizes add up and that the whole hashes to the doorbell's
 * SHA-256; resolves the file's text. Throws TraceTransferError, never returns a partial file.
 */
export async function fetchTraceChunks (trace: string, read: (index: number) => Promise<TraceChunk>): Promise<string> {
  const first = await read(0)
  const parts: Uint8Array[] = []
  let size = 0
  for (let i = 0; i < first.total; i++) {
    const c = i === 0 ? first : await read(i)
    if (c.trace !== trace || c.index !== i || c.total !== first.total || c.bytes !== first.bytes || c.sha256 !== first.sha256) {
      throw new TraceTransferError(`chunk ${i + 1} of ${first.total} of trace ${trace} does not belong with the others`)
    }
    let bytes: Uint8Array
    try { bytes = fromB64url(c.data) } catch { throw new TraceTransferError(`chunk ${i + 1} of trace ${trace} is not base64url`) }
    parts.push(bytes)
    size += bytes.length
  }
  if (size !== first.bytes) throw new TraceTransferError(`trace ${trace} came as ${size} bytes, the doorbell said ${first.bytes}`)
  const whole = new Uint8Array(size)
  let at = 0
  for (const p of parts) { whole.set(p, at); at += p.length }
  if (await sha256Hex(whole) !== first.sha256) throw new TraceTransferError(`trace ${trace} does not match the doorbell's SHA-256: it was damaged on the way`)
  return new TextDecoder().decode(whole)
}
