import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignedReplies } from '@doorbell/core'

/**
 * Where the hub keeps the owner's quick replies: the signed list with the hub's stamp (its
 * sequence inside). One small interface, so a cluster can keep it in shared storage instead of
 * this file.
 */
export interface RepliesStore {
  /** The list kept, or null (none yet). Throws when what is kept cannot be read. */
  load: () => SignedReplies | null
  save: (signed: SignedReplies) => void
}

/** `dataDir/replies.json`, written whole through a temporary file, 0600. */
export function fileRepliesStore (dataDir: string): RepliesStore {
  const file = join(dataDir, 'replies.json')
  return {
    load () {
      try {
        return SignedReplies.parse(JSON.parse(readFileSync(file, 'utf8')))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw new Error(`${file}: ${(err as Error).message}`)
      }
    },
    save (signed) {
      const tmp = `${file}.tmp`
      writeFileSync(tmp, JSON.stringify(signed), { mode: 0o600 })
      renameSync(tmp, file)
    }
  }
}
