import {
  CommandTimeoutError, decodeCloudCommandResult, isCloudCommandResult,
  type CommandResult
} from '@doorbell/core'

export class CloudCommandError extends Error {
  override readonly name = 'CloudCommandError'
}

/**
 * The commands outside a call this screen sent on a doorbell's KVS channel
 * (core/src/cloudCommand.ts), waiting for their results: each result is parsed by its schema and
 * matched to its command by id; none in time rejects with CommandTimeoutError, as over the hub.
 */
export class CloudCommands {
  private readonly waiting = new Map<string, { resolve: (r: CommandResult) => void, reject: (err: Error) => void, timer: ReturnType<typeof setTimeout> }>()

  /** The result of command `id`, when it comes. */
  expect (id: string, timeoutMs: number): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new CommandTimeoutError(id, timeoutMs)) }, timeoutMs)
      this.waiting.set(id, { resolve, reject, timer })
    })
  }

  /** The command `id` could not be sent: its caller hears why at once. */
  fail (id: string, err: Error): void {
    const w = this.waiting.get(id)
    if (!w) return
    clearTimeout(w.timer)
    this.waiting.delete(id)
    w.reject(err)
  }

  /**
   * A payload from the doorbell: true when it is a command's result (taken, or dropped with a
   * log line), false when it is signaling for the calls.
   */
  take (payload: unknown, log: (message: string) => void): boolean {
    if (!isCloudCommandResult(payload)) return false
    const d = decodeCloudCommandResult(payload)
    if (!d.ok) { log(`rejected a command result: ${d.error}`); return true }
    const result = d.message.result
    const w = result.id === null ? undefined : this.waiting.get(result.id)
    if (!w || result.id === null) { log(`dropped a result for command ${result.id ?? '(unreadable)'}: nothing waits for it`); return true }
    clearTimeout(w.timer)
    this.waiting.delete(result.id)
    w.resolve(result)
    return true
  }

  /** Commands still waiting for their result (a channel is not closed under them). */
  get waitingCount (): number { return this.waiting.size }

  /** Every waiting command fails (the client closes). */
  clear (why: string): void {
    for (const id of [...this.waiting.keys()]) this.fail(id, new CloudCommandError(why))
  }
}
