/**
 * A retained message that must end as the newest word (the revocation list with the stock
 * settings, the replaced grants). Two changes may publish at once: two on one hub, or one on each
 * of a cluster's hubs, and the publish that lands last in the retained store may be the one that
 * read the older state. So the calls of one hub run one after the other, and after each publish
 * the message is computed again: if a change committed meanwhile made it differ, it is published
 * again. The last publish of all is then one made after reading the newest state.
 */
export function retainedLatest (compute: () => Promise<Buffer>, publish: (payload: Buffer) => Promise<void>, tries = 5): () => Promise<void> {
  let queue: Promise<void> = Promise.resolve()
  const once = async (): Promise<void> => {
    let payload = await compute()
    for (let i = 0; i < tries; i++) {
      await publish(payload)
      const now = await compute()
      if (now.equals(payload)) return
      payload = now
    }
    await publish(payload)
  }
  return async () => {
    const run = queue.then(once)
    queue = run.catch(() => {})
    await run
  }
}
