import { idbStore } from '../lib/idb'

/**
 * A trace handed to the inspector by another page of the viewer (Home settings' "Open in
 * inspector" on a kept call trace): kept in IndexedDB (database `doorbell-handoff`; a trace may be
 * 4 MiB, too much for sessionStorage), taken once by the inspector opened at `#kept-trace`, and
 * then replayed like a loaded file.
 */
export const HANDOFF_HASH = '#kept-trace'

const RECORD = 'kept'
const { withStore } = idbStore({
  db: 'doorbell-handoff', version: 1, store: 'trace',
  unavailable: 'this browser keeps no IndexedDB (a private window?): download the trace and load it in the inspector'
})

/** Keeps a trace file's text for the inspector (the last one handed replaces any before). */
export async function handTraceToInspector (text: string): Promise<void> {
  await withStore('readwrite', (store) => store.put(text, RECORD))
}

/** The trace handed over, once (it is removed as it is taken), or null if there is none. */
export async function takeHandedTrace (): Promise<string | null> {
  const text = await withStore('readonly', (store) => store.get(RECORD) as IDBRequest<unknown>)
  await withStore('readwrite', (store) => store.delete(RECORD))
  return typeof text === 'string' ? text : null
}
