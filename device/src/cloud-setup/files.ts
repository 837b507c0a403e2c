/**
 * The output folder: whole files or none (write to a temporary name, then rename), private ones
 * 0600 in a 0700 folder.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { SetupError } from './errors'
import { show } from './plan'

/** Writes `content` to `path` in one step: a reader sees the old file or the new one, never half. */
export function writeFileAtomic (path: string, content: string, mode: number): void {
  const dir = dirname(path)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // A fresh name, created here (wx): never a file or symlink someone left in the way.
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    writeFileSync(tmp, content, { mode, flag: 'wx' })
    chmodSync(tmp, mode) // the umask may have taken bits off
    renameSync(tmp, path)
  } catch (err) {
    try { unlinkSync(tmp) } catch {}
    throw new SetupError(`cannot write ${show(path)}: ${(err as Error).message}`)
  }
}

/** A folder for private files: made 0700, or set to 0700 if it was there. */
export function privateDir (dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
}

export function readText (path: string): string | null {
  try { return readFileSync(path, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new SetupError(`cannot read ${show(path)}: ${(err as Error).message}`)
  }
}

/** The JSON in `path`; null when there is no file. A file that is not JSON is an error (it is not overwritten blindly). */
export function readJson (path: string): unknown {
  const text = readText(path)
  if (text === null) return null
  try { return JSON.parse(text) } catch (err) {
    throw new SetupError(`${show(path)} is not JSON (${(err as Error).message}): fix or remove it`)
  }
}

export function removeFile (path: string): void {
  try { unlinkSync(path) } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new SetupError(`cannot remove ${show(path)}: ${(err as Error).message}`)
  }
}

/** Removes the folder if it is empty; a folder with other files is left (and said so). */
export function removeDirIfEmpty (dir: string): boolean {
  if (!existsSync(dir)) return true
  try { rmdirSync(dir); return true } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new SetupError(`cannot remove ${show(dir)}: ${(err as Error).message}`)
  }
}
