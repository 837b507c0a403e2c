import { test } from 'node:test'
import { sigkillRounds } from '../src/sigkillRounds'

/** The hub SIGKILLed during a ring, 20 rounds in a row (tests/src/sigkillRounds.ts says what each round checks). */
test('SIGKILL the hub during a ring, 20 times: every ring event reaches every screen, none alerts twice, one that ended during the outage is shown missed', { timeout: 900_000 }, async (t) => {
  await sigkillRounds(t, 20)
})
