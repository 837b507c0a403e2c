import {
  CommandTimeoutError, decodeCloudCommandResult, decodeCloudDismissResult, isCloudCommandResult, isCloudDismissResult,
  type CommandResult, type DismissDirectAnswer
} from '@doorbell/core'
import { decodeCloudRepliesResult, isCloudRepliesResult, type RepliesReadAnswer } from '@doorbell/core'

export class CloudCommandError extends Error {
  override readonly name = 'CloudCommandError'
}

/** What waits for its answer, by id: none in time rejects with CommandTimeoutError, as over the hub. */
class Waiting<T> {
  private readonly waiting = new Map<string, { resolve: (r: T) => void, reject: (err: Error) => void, timer: ReturnType<typeof setTimeout> }>()

  expect (id: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(id); reject(new CommandTimeoutError(id, timeoutMs)) }, timeoutMs)
      this.waiting.set(id, { resolve, reject, timer })
    })
  }

  /** Settles `id` (false: nothing waits for it). */
  settle (id: string, outcome: { value: T } | { error: Error }): boolean {
    const w = this.waiting.get(id)
    if (!w) return false
    clearTimeout(w.timer)
    this.waiting.delete(id)
    if ('error' in outcome) w.reject(outcome.error)
    else w.resolve(outcome.value)
    return true
  }

  get size (): number { return this.waiting.size }
  get ids (): string[] { return [...this.waiting.keys()] }
}

/**
 * The commands outside a call and the dismissals this screen sent on a doorbell's KVS channel
 * (core/src/cloudCommand.ts), waiting for their answers: each is parsed by its schema and matched
 * to what was sent by id.
 */
export class CloudCommands {
  private readonly commands = new Waiting<CommandResult>()
  private readonly dismissals = new Waiting<DismissDirectAnswer>()
  private readonly repliesReads = new Waiting<RepliesReadAnswer>()

  /** The result of command `id`, when it comes. */
  expect (id: string, timeoutMs: number): Promise<CommandResult> { return this.commands.expect(id, timeoutMs) }

  /** The doorbell's answer to dismissal `id`, when it comes. */
  expectDismissal (id: string, timeoutMs: number): Promise<DismissDirectAnswer> { return this.dismissals.expect(id, timeoutMs) }

  /** The doorbell's answer to replies read `id` (core/src/repliesRead.ts), when it comes. */
  expectReplies (id: string, timeoutMs: number): Promise<RepliesReadAnswer> { return this.repliesReads.expect(id, timeoutMs) }

  /** The command, dismissal or read `id` could not be sent: its caller hears why at once. */
  fail (id: string, err: Error): void {
    if (!this.commands.settle(id, { error: err }) && !this.dismissals.settle(id, { error: err })) this.repliesReads.settle(id, { error: err })
  }

  /**
   * A payload from the doorbell: true when it is a command's result or a dismissal's answer
   * (taken, or dropped with a log line), false when it is signaling for the calls.
   */
  take (payload: unknown, log: (message: string) => void): boolean {
    if (isCloudDismissResult(payload)) {
      const d = decodeCloudDismissResult(payload)
      if (!d.ok) { log(`rejected a dismissal's answer: ${d.error}`); return true }
      const { id, answer } = d.message
      if (id === null || !this.dismissals.settle(id, { value: answer })) log(`dropped an answer for dismissal ${id ?? '(unreadable)'}: nothing waits for it`)
      return true
    }
    if (isCloudRepliesResult(payload)) {
      const d = decodeCloudRepliesResult(payload)
      if (!d.ok) { log(`rejected a replies read's answer: ${d.error}`); return true }
      const { id, answer } = d.message
      if (id === null || !this.repliesReads.settle(id, { value: answer })) log(`dropped an answer for replies read ${id ?? '(unreadable)'}: nothing waits for it`)
      return true
    }
    if (!isCloudCommandResult(payload)) return false
    const d = decodeCloudCommandResult(payload)
    if (!d.ok) { log(`rejected a command result: ${d.error}`); return true }
    const result = d.message.result
    if (result.id === null || !this.commands.settle(result.id, { value: result })) log(`dropped a result for command ${result.id ?? '(unreadable)'}: nothing waits for it`)
    return true
  }

  /** Commands and dismissals still waiting for their answer (a channel is not closed under them). */
  get waitingCount (): number { return this.commands.size + this.dismissals.size + this.repliesReads.size }

  /** Everything waiting fails (the client closes). */
  clear (why: string): void {
    for (const id of [...this.commands.ids, ...this.dismissals.ids, ...this.repliesReads.ids]) this.fail(id, new CloudCommandError(why))
  }
}
