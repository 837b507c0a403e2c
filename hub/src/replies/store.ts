import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignedReplies } from '@doorbell/core'

/**
 * Where the owner's quick replies are kept, as the owner signed them: `dataDir/replies.json` on
 * one hub, PostgreSQL in a cluster (../cluster/pgSharedState.ts), so every hub serves the same
 * list. The routes check a list before it is saved; a shared store keeps the newest, by `at` and `seq`.
 */
export interface RepliesStore {
  /** The list kept, or null (none yet, or the kept one cannot be read: `problem` says why). */
  load: () => Promise<{ signed: SignedReplies | null, problem?: string }>
  /**
   * Keeps `signed` (made at `at`, stamped `seq`) unless a list at least as new, or stamped at least
   * `seq`, is kept (another hub's save got there first); false then, and nothing changed.
   */
  save: (signed: SignedReplies, at: number, seq: number) => Promise<boolean>
}

/** One hub's: `replies.json` in `dataDir`, written whole (tmp, rename). The routes hold the newest in memory. */
export function fileRepliesStore (dataDir: string): RepliesStore {
  const file = join(dataDir, 'replies.json')
  return {
    async load () {
      try {
        return { signed: SignedReplies.parse(JSON.parse(await readFile(file, 'utf8'))) }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { signed: null }
        return { signed: null, problem: (err as Error).message }
      }
    },
    async save (signed) {
      const tmp = `${file}.tmp`
      await writeFile(tmp, JSON.stringify(signed), { mode: 0o600 })
      await rename(tmp, file)
      return true
    }
  }
}
