import { parentPort, workerData } from 'node:worker_threads'
import { HistoryStore } from './store'
import { HISTORY_THREAD_CALLS, type ThreadCall, type ThreadError, type ThreadReply } from './threadCalls'

/**
 * The history's thread (threadStore.ts starts it): the only connection to `history.db`, so every
 * write and read runs here, one message at a time, in the order they were sent. A slow disk holds
 * this thread, never the broker's.
 */
const port = parentPort
if (port === null) throw new Error('storeThread.ts runs as a worker thread (threadStore.ts starts it)')

const errorOf = (err: unknown): ThreadError => {
  const e = err as Partial<NodeJS.ErrnoException>
  return { name: typeof e.name === 'string' ? e.name : 'Error', message: typeof e.message === 'string' ? e.message : String(err), ...(typeof e.code === 'string' ? { code: e.code } : {}) }
}

let store: HistoryStore | null = null
try {
  store = new HistoryStore((workerData as { dir: string }).dir)
  port.postMessage({ id: 0, ok: true, value: null } satisfies ThreadReply)
} catch (err) {
  port.postMessage({ id: 0, ok: false, error: errorOf(err) } satisfies ThreadReply)
}

port.on('message', (call: ThreadCall) => {
  let reply: ThreadReply
  try {
    if (store === null) throw new Error('the history database is not open')
    if (call.method === 'close') {
      store.close()
      store = null
      reply = { id: call.id, ok: true, value: null }
      port.postMessage(reply)
      port.close()
      return
    }
    // Only the store's own calls (threadCalls.ts), never any other property.
    if (!HISTORY_THREAD_CALLS.has(call.method)) throw new TypeError(`not a history call: ${String(call.method)}`)
    const args = call.method === 'setSnapshot' && call.args[2] instanceof Uint8Array
      // A picture arrives as a Uint8Array (structured clone): the store writes it as a Buffer.
      ? [call.args[0], call.args[1], Buffer.from(call.args[2].buffer, call.args[2].byteOffset, call.args[2].byteLength), ...call.args.slice(3)]
      : call.args
    let value = (store[call.method] as (...a: unknown[]) => unknown)(...args)
    // Sent again after a crash: the thread that died may have deleted it already (then it is gone, as asked).
    if (call.resent === true && call.method === 'delete' && value === false) value = true
    reply = { id: call.id, ok: true, value: value === undefined ? null : value }
  } catch (err) {
    reply = { id: call.id, ok: false, error: errorOf(err) }
  }
  port.postMessage(reply)
})
