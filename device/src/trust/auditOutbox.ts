import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { DoorAttempt, decode, encode, type Logger } from '@doorbell/core'

/** Most attempts kept while the hub is away; beyond it the oldest go (and the log says how many). */
const MAX_PENDING = 50_000

/**
 * Every open-door attempt the device decided, kept on disk (one JSON line each) until the hub
 * acknowledges it, so a device that cannot reach the hub delivers its records later, in order.
 */
export class AuditOutbox {
  private readonly pending = new Map<string, DoorAttempt>()
  private sending = false
  private dropped = 0
  private compactTimer: ReturnType<typeof setTimeout> | null = null

  constructor (private readonly file: string, private readonly log: Logger, private send: ((a: DoorAttempt) => Promise<void>) | null = null) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    let text = ''
    try { text = readFileSync(file, 'utf8') } catch {}
    let bad = 0
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      const r = decode(DoorAttempt, line, file)
      if (r.ok) this.pending.set(r.value.id, r.value)
      else bad++
    }
    if (bad > 0) log.warn('skipped unreadable lines in the audit outbox', { file, lines: bad })
    if (this.pending.size > 0) log.info('audit records waiting for the hub', { count: this.pending.size })
  }

  get size (): number { return this.pending.size }

  /** Records an attempt: on disk first, then to the hub when it is there. */
  add (attempt: DoorAttempt): void {
    const line = encode(DoorAttempt, attempt)
    if (this.pending.size >= MAX_PENDING) {
      const oldest = this.pending.keys().next().value as string
      this.pending.delete(oldest)
      this.dropped++
      if (this.dropped === 1 || this.dropped % 1000 === 0) this.log.error('audit outbox full: oldest records dropped', { dropped: this.dropped })
    }
    this.pending.set(attempt.id, attempt)
    appendFileSync(this.file, line + '\n', { mode: 0o600 })
    this.flush()
  }

  /** Where records go (the hub link); null while there is none. */
  setSender (send: ((a: DoorAttempt) => Promise<void>) | null): void {
    this.send = send
    this.flush()
  }

  /** Sends what waits, one at a time and in order; stops at the first failure (the hub went away). */
  flush (): void {
    if (this.sending || !this.send || this.pending.size === 0) return
    this.sending = true
    void (async () => {
      try {
        for (const [id, attempt] of this.pending) {
          const send = this.send
          if (!send) break
          await send(attempt)
          this.pending.delete(id)
          this.scheduleCompaction()
        }
      } catch {
        // Kept; sent again by the next flush (the link flushes on connect).
      } finally {
        this.sending = false
      }
    })()
  }

  /** Rewrites the file with what is still pending, at most once a second. */
  private scheduleCompaction (): void {
    if (this.compactTimer) return
    this.compactTimer = setTimeout(() => { this.compactTimer = null; this.compact() }, 1000)
  }

  compact (): void {
    const lines = [...this.pending.values()].map((a) => encode(DoorAttempt, a) + '\n').join('')
    writeFileSync(this.file + '.tmp', lines, { mode: 0o600 })
    renameSync(this.file + '.tmp', this.file)
  }

  stop (): void {
    if (this.compactTimer) clearTimeout(this.compactTimer)
    this.compactTimer = null
    this.compact()
  }
}
