/**
 * A trace handed to the inspector by another page of the viewer (Home settings' "Open in
 * inspector" on a kept call trace): kept in IndexedDB (database `doorbell-handoff`; a trace may be
 * 4 MiB, too much for sessionStorage), taken once by the inspector opened at `#kept-trace`, and
 * then replayed like a loaded file.
 */
export const HANDOFF_HASH = '#kept-trace'

const DB = 'doorbell-handoff'
const STORE = 'trace'
const RECORD = 'kept'

function opened (): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') { reject(new Error('this browser keeps no IndexedDB (a private window?): download the trace and load it in the inspector')); return }
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => { if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE) }
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new Error('IndexedDB would not open')) }
  })
}

async function withStore<T> (mode: IDBTransactionMode, request: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await opened()
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode)
      const req = request(tx.objectStore(STORE))
      tx.oncomplete = () => { resolve(req.result) }
      tx.onerror = () => { reject(tx.error ?? req.error ?? new Error('IndexedDB transaction failed')) }
      tx.onabort = () => { reject(tx.error ?? new Error('IndexedDB transaction aborted')) }
    })
  } finally {
    db.close()
  }
}

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
