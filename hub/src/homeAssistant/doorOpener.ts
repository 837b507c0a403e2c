import type { Aedes } from 'aedes'
import {
  COMMAND_RESULT_MARGIN_MS, COMMAND_RESULT_TIMEOUT_MS, FRESHNESS_MS, OutOfCallCommand, encode, newId, signOutOfCallDoorCommand, topics,
  type CommandResult, type LockCommand, type Logger, type Member
} from '@doorbell/core'
import type { Trust } from '../trust/trust'

/** What Home Assistant is told of its last open or unlock (the lock entity's attributes), so a refusal is visible there. */
export interface LockAttributes {
  last_command: Exclude<LockCommand, 'LOCK'>
  /** Who the command was signed as ("Home Assistant (integration)"), or who sent it when nobody was. */
  by: string
  result: 'opened' | 'refused' | 'no answer'
  /** The audit record's reason (`no-door-right`, `revoked`, `stale`...); null when opened. */
  reason: string | null
  message: string
  at: string
}

export interface DoorOpenerDeps {
  homeId: string
  trust: () => Trust
  broker: () => Aedes
  log: Logger
  /** Tells Home Assistant how the command went (the lock's attributes, on every broker). */
  tell: (deviceId: string, attributes: LockAttributes) => void
  timeoutMs?: number
}

/**
 * Home Assistant opens the door, signed: it cannot sign the doorbell's commands, so the hub signs
 * an open-door command as the integration's own member (a fresh grant with the door right the
 * owner gave it, and the member's key, which only the hub holds) and sends it to the doorbell on
 * the command topic (docs/commands.md), as the broker itself. The doorbell checks and audits it
 * as it does every member's; the hub only tells Home Assistant the result. `OPEN` and `UNLOCK`
 * both mean one release with auto-relock: the doorbell has no permanent unlock.
 */
export function doorOpener (d: DoorOpenerDeps): {
  /** A release asked for by `integration` (a live or removed integration member). Never throws. */
  open: (deviceId: string, integration: Member, command: Exclude<LockCommand, 'LOCK'>) => Promise<void>
  /** A command's result, as a doorbell published it (parsed by its schema already). */
  result: (deviceId: string, viewer: string, result: CommandResult) => void
} {
  const pending = new Map<string, { deviceId: string, subject: string, done: (r: CommandResult | null) => void }>()
  /** Commands Home Assistant was told got no answer: a result that comes later is still told (it can only be a refusal). */
  const late = new Map<string, { deviceId: string, subject: string, command: LockAttributes['last_command'], by: string, timer: ReturnType<typeof setTimeout> }>()
  const timeoutMs = d.timeoutMs ?? COMMAND_RESULT_TIMEOUT_MS
  // The doorbell may take the command only while Home Assistant still waits for its result: it
  // goes QoS 1 to the doorbell's persistent session, and a doorbell that was away would otherwise
  // open the door up to 30 s later, after Home Assistant was told "no answer".
  const validForMs = Math.max(1000, Math.min(FRESHNESS_MS, timeoutMs - COMMAND_RESULT_MARGIN_MS))
  const at = (): string => new Date().toISOString()

  const refuseHere = (deviceId: string, by: string, command: LockAttributes['last_command'], reason: string, message: string): void => {
    // Nothing reached the doorbell: the hub's own audit record says why.
    d.trust().audit.append({ at: Date.now(), kind: 'open-door', outcome: 'denied', reason, actor: by, deviceId, message: `${command} from Home Assistant refused: ${message}`.slice(0, 300), path: 'lan' })
    d.log.warn('refused a door command from Home Assistant', { device: deviceId, command, by, reason })
    d.tell(deviceId, { last_command: command, by, result: 'refused', reason, message, at: at() })
  }

  return {
    async open (deviceId, integration, command) {
      const by = `${integration.name.slice(0, 50)} (integration)`
      if (integration.revokedAt !== null) { refuseHere(deviceId, by, command, 'revoked', `${integration.name} has been removed from this home`); return }
      let signed: OutOfCallCommand
      let subject: string
      try {
        const signer = await d.trust().integrationSigner(integration.id)
        subject = signer.member.subject
        signed = await signOutOfCallDoorCommand({ credential: signer.credential, key: signer.key, home: d.homeId, device: deviceId, command: newId('c'), validForMs })
      } catch (err) {
        const removed = d.trust().members().find((m) => m.id === integration.id)?.revokedAt != null
        refuseHere(deviceId, by, command, removed ? 'revoked' : 'no-door-right', (err as Error).message)
        return
      }
      d.log.info('Home Assistant asked to open the door: sent, signed as its integration member', { device: deviceId, command, id: signed.id })
      const result = await new Promise<CommandResult | null>((resolve) => {
        const timer = setTimeout(() => { pending.delete(signed.id); resolve(null) }, timeoutMs)
        pending.set(signed.id, { deviceId, subject, done: (r) => { clearTimeout(timer); pending.delete(signed.id); resolve(r) } })
        // As the broker itself: no client may publish for Home Assistant, and the gate checks clients only.
        d.broker().publish({ cmd: 'publish', topic: topics.command(d.homeId, deviceId, subject), payload: Buffer.from(encode(OutOfCallCommand, signed)), qos: 1, retain: false, dup: false }, (err) => {
          if (err) d.log.warn('could not send Home Assistant\'s door command', { device: deviceId, error: err.message })
        })
      })
      if (result === null) {
        // The doorbell may be away: the command is no longer valid, and a doorbell that gets it
        // later refuses it as stale (audited there); that refusal is told too when it comes.
        d.log.warn('no answer from the doorbell to Home Assistant\'s door command', { device: deviceId, id: signed.id })
        d.tell(deviceId, { last_command: command, by, result: 'no answer', reason: null, message: `no answer from the doorbell in ${Math.round(timeoutMs / 1000)} s; the command is no longer valid`, at: at() })
        const timer = setTimeout(() => { late.delete(signed.id) }, FRESHNESS_MS)
        timer.unref()
        late.set(signed.id, { deviceId, subject, command, by, timer })
      } else if (result.ok) {
        d.tell(deviceId, { last_command: command, by, result: 'opened', reason: null, message: 'opened; the door relocks by itself', at: at() })
      } else {
        d.log.warn('the doorbell refused Home Assistant\'s door command', { device: deviceId, reason: result.reason ?? result.error.code, message: result.error.message })
        // The doorbell words it for a person ("guests cannot open the door"): said here for Home Assistant's owner.
        const message = result.reason === 'no-door-right' ? 'the owner has not given Home Assistant the door right (Home settings)' : result.error.message
        d.tell(deviceId, { last_command: command, by, result: 'refused', reason: result.reason ?? result.error.code, message, at: at() })
      }
    },
    result (deviceId, viewer, result) {
      if (result.id === null) return
      const waiting = pending.get(result.id)
      // Only the doorbell the command went to, answering the member it was sent as.
      if (waiting?.deviceId === deviceId && waiting.subject === viewer) { waiting.done(result); return }
      const gaveUp = late.get(result.id)
      if (gaveUp?.deviceId !== deviceId || gaveUp.subject !== viewer) return
      clearTimeout(gaveUp.timer)
      late.delete(result.id)
      const { command, by } = gaveUp
      if (result.ok) {
        // Cannot happen with a doorbell's clock in step (the command was no longer valid); said if it does.
        d.log.error('a door command Home Assistant was told got no answer opened the door later', { device: deviceId, id: result.id })
        d.tell(deviceId, { last_command: command, by, result: 'opened', reason: null, message: 'opened late, after no answer in time', at: at() })
        return
      }
      d.log.info('a late answer to Home Assistant\'s door command: refused', { device: deviceId, id: result.id, reason: result.reason ?? result.error.code })
      d.tell(deviceId, { last_command: command, by, result: 'refused', reason: result.reason ?? result.error.code, message: `refused when it reached the doorbell late: ${result.error.message}`, at: at() })
    }
  }
}
