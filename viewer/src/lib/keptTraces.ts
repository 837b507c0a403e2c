import {
  KeptTraceList, TraceChunk, fetchTraceChunks, parseTrace,
  type CommandResult, type InspectTrace, type OutOfCallCommand
} from '@doorbell/core'

/**
 * The owner's view of one doorbell's kept call traces (docs/inspector.md): the list, and one
 * trace fetched chunk by chunk, reassembled, checked against the doorbell's SHA-256 and parsed
 * as any trace file is. Each request is a command signed for no call (docs/commands.md).
 */
export interface KeptTraceFetcher {
  list: () => Promise<KeptTraceList>
  /** The trace's file text (checked) and the trace parsed from it. */
  read: (id: string) => Promise<{ text: string, trace: InspectTrace }>
}

/** The doorbell refused (not the owner, keeping off, no such trace...) or answered out of shape; `code` as the result gave it. */
export class KeptTraceError extends Error {
  override readonly name = 'KeptTraceError'
  constructor (readonly code: string, message: string) { super(message) }
}

export type TraceAction = { action: 'traces-list' } | { action: 'trace-read', trace: string, chunk: number }

export function keptTraceFetcher (o: {
  /** Signs one command for no call, with a fresh id. */
  sign: (action: TraceAction) => Promise<OutOfCallCommand>
  send: (command: OutOfCallCommand) => Promise<CommandResult>
}): KeptTraceFetcher {
  const ask = async (action: TraceAction): Promise<CommandResult & { ok: true }> => {
    const result = await o.send(await o.sign(action))
    if (!result.ok) throw new KeptTraceError(result.error.code, result.error.message)
    return result
  }
  return {
    async list () {
      const parsed = KeptTraceList.safeParse((await ask({ action: 'traces-list' })).traces)
      if (!parsed.success) throw new KeptTraceError('invalid-result', 'the doorbell answered without a list of traces')
      return parsed.data
    },
    async read (id) {
      const text = await fetchTraceChunks(id, async (chunk) => {
        const parsed = TraceChunk.safeParse((await ask({ action: 'trace-read', trace: id, chunk })).chunk)
        if (!parsed.success) throw new KeptTraceError('invalid-result', `the doorbell answered chunk ${chunk + 1} without its data`)
        return parsed.data
      })
      return { text, trace: parseTrace(text) }
    }
  }
}
