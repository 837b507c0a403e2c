/**
 * One IndexedDB object store, opened for each request and closed after it: the pairing
 * (composables/keystore.ts) and a trace handed to the inspector (inspector/handoff.ts) use it.
 * `unavailable` is what to say when the browser keeps no IndexedDB (a private window, say).
 */
export function idbStore (o: { db: string, version: number, store: string, unavailable: string }): {
  withStore: <T>(mode: IDBTransactionMode, request: (store: IDBObjectStore) => IDBRequest<T>) => Promise<T>
} {
  const opened = (): Promise<IDBDatabase> => new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') { reject(new Error(o.unavailable)); return }
    const req = indexedDB.open(o.db, o.version)
    req.onupgradeneeded = () => { if (!req.result.objectStoreNames.contains(o.store)) req.result.createObjectStore(o.store) }
    req.onsuccess = () => {
      // Another tab upgrading the database must not be blocked by this one.
      req.result.onversionchange = () => { req.result.close() }
      resolve(req.result)
    }
    req.onerror = () => { reject(req.error ?? new Error('IndexedDB would not open')) }
    req.onblocked = () => { reject(new Error('IndexedDB is blocked by another tab of this page')) }
  })

  return {
    /** One request in its own transaction; resolves when the transaction has committed, not merely when the request succeeded. */
    async withStore<T> (mode: IDBTransactionMode, request: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
      const db = await opened()
      try {
        return await new Promise<T>((resolve, reject) => {
          const tx = db.transaction(o.store, mode)
          const req = request(tx.objectStore(o.store))
          tx.oncomplete = () => { resolve(req.result) }
          tx.onerror = () => { reject(tx.error ?? req.error ?? new Error('IndexedDB transaction failed')) }
          tx.onabort = () => { reject(tx.error ?? new Error('IndexedDB transaction aborted')) }
        })
      } finally {
        db.close()
      }
    }
  }
}
