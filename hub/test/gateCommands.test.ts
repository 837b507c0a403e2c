import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CommandResult, DoorCommand, MAX_COMMAND_BYTES, encode, topics, type Member } from '@doorbell/core'
import { mayPublish, maySubscribe, principalFor, type GateResult, type Principal } from '../src/broker/gate'

/**
 * The broker's gate for signed commands outside a call (docs/commands.md): any signed-in screen
 * of the home may send one to a device (the doorbell checks the signature and the right), only
 * as itself; only the device reads its commands and only it answers, to that screen alone.
 */

const H = 'home'
const FRONT = 'front-door'
const CAM_N = 'cam-n'
const member = (o: Partial<Member> & Pick<Member, 'id' | 'kind' | 'subject'>): Member => ({
  name: o.subject, role: o.kind === 'device' ? null : 'resident', door: o.kind !== 'device', zones: [], createdAt: 0, expiresAt: null, revokedAt: null, ...o
})
const must = (p: Principal | null): Principal => { assert.ok(p, 'a principal'); return p }
const device = must(principalFor(member({ id: 'm-front', kind: 'device', subject: FRONT }), H, `device-${FRONT}`))
const viewer = (role: NonNullable<Member['role']>, zones: string[] = []): Principal =>
  must(principalFor(member({ id: `m-${role}`, kind: 'viewer', subject: `v-${role}`, role, zones }), H, `viewer-v-${role}-tab1`))
const integration = must(principalFor(member({ id: 'm-ha', kind: 'integration', subject: 'ha', role: null }), H, 'integration-ha'))
const owner = viewer('owner')
const resident = viewer('resident')
const guest = viewer('guest')
const operator = viewer('operator', ['north'])
const zonesOf = (d: string): string[] => d === CAM_N ? ['north'] : []
const devices = (): string[] => [FRONT, CAM_N]

const TOKEN = `e30.${'A'.repeat(86)}`
const command = Buffer.from(encode(DoorCommand, { type: 'unlock', id: 'c1', credential: TOKEN, proof: TOKEN }))
const result = Buffer.from(encode(CommandResult, { ok: false, id: 'c1', error: { code: 'denied', message: 'no' }, reason: 'no-door-right' }))

function refused (r: GateResult, reason?: RegExp): void {
  assert.equal(r.ok, false, 'refused')
  if (!r.ok && reason) assert.match(r.reason, reason)
}
const allowed = (r: GateResult): void => { assert.deepEqual(r, { ok: true }) }

describe('commands outside a call: who may publish', () => {
  it('a screen of any role sends a command as itself, never retained', () => {
    for (const v of [owner, resident, guest]) {
      const id = v.kind === 'viewer' ? v.viewerId : ''
      allowed(mayPublish(v, topics.command(H, FRONT, id), command))
      refused(mayPublish(v, topics.command(H, FRONT, id), command, zonesOf, true), /command may not be retained/)
    }
  })
  it('the viewer level binds a command to its sender: none as another screen', () => {
    refused(mayPublish(guest, topics.command(H, FRONT, 'v-owner'), command), /v-guest may not send commands as v-owner/)
  })
  it('an operator only to the devices of its zones', () => {
    allowed(mayPublish(operator, topics.command(H, CAM_N, 'v-operator'), command, zonesOf))
    refused(mayPublish(operator, topics.command(H, FRONT, 'v-operator'), command, zonesOf), /not in the operator's zones/)
  })
  it('a device sends no commands; Home Assistant\'s sign-in sends none either (the hub signs for it)', () => {
    refused(mayPublish(device, topics.command(H, FRONT, 'v-resident'), command), /a device does not send commands/)
    refused(mayPublish(integration, topics.command(H, FRONT, 'ha'), command), /an integration publishes only/)
  })
  it('another home, malformed JSON, a command of an unknown type and one over the bound are refused with a reason', () => {
    refused(mayPublish(resident, topics.command('other', FRONT, 'v-resident'), command), /may not publish to home other/)
    refused(mayPublish(resident, topics.command(H, FRONT, 'v-resident'), Buffer.from('{"type":"unlock"')), /not JSON/)
    refused(mayPublish(resident, topics.command(H, FRONT, 'v-resident'), Buffer.from(JSON.stringify({ type: 'launch', id: 'c1', credential: TOKEN, proof: TOKEN }))), /type/)
    refused(mayPublish(resident, topics.command(H, FRONT, 'v-resident'), Buffer.alloc(MAX_COMMAND_BYTES + 1, 0x20)), new RegExp(`exceeds ${MAX_COMMAND_BYTES}`))
  })
  it('only the device answers, on its own topics', () => {
    allowed(mayPublish(device, topics.commandResult(H, FRONT, 'v-resident'), result))
    refused(mayPublish(device, topics.commandResult(H, CAM_N, 'v-resident'), result), /may not publish for device cam-n/)
    refused(mayPublish(resident, topics.commandResult(H, FRONT, 'v-resident'), result), /only the device may publish command-result/)
  })
})

describe('commands outside a call: who may subscribe', () => {
  it('a device reads its own commands only', () => {
    allowed(maySubscribe(device, topics.commandInbox(H, FRONT)))
    refused(maySubscribe(device, topics.commandInbox(H, CAM_N)), /may not subscribe/)
    refused(maySubscribe(device, topics.commandResults(H, 'v-resident')), /may not subscribe/)
  })
  it('a screen reads its own results only, never another screen\'s nor any commands', () => {
    for (const v of [owner, resident, guest, operator]) {
      const id = v.kind === 'viewer' ? v.viewerId : ''
      allowed(maySubscribe(v, topics.commandResults(H, id), devices, zonesOf))
      allowed(maySubscribe(v, topics.commandResult(H, FRONT, id), devices, zonesOf))
      refused(maySubscribe(v, topics.commandResults(H, 'v-other'), devices, zonesOf), /may not subscribe/)
      refused(maySubscribe(v, `doorbell/${H}/+/command/+/to-viewer`, devices, zonesOf), /may not subscribe/)
      refused(maySubscribe(v, topics.commandInbox(H, FRONT), devices, zonesOf), /may not subscribe/)
    }
    refused(maySubscribe(integration, topics.commandInbox(H, FRONT)), /may not subscribe/)
    refused(maySubscribe(integration, topics.commandResults(H, 'ha')), /may not subscribe/)
  })
})
