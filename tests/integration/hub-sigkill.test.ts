import { test } from 'node:test'
import { sigkillRounds } from '../src/sigkillRounds'

/**
 * The hub SIGKILLed during a ring, 5 rounds (the 20-round soak is `npm run soak -w
 * @doorbell/tests`; tests/src/sigkillRounds.ts says what each round checks): rounds 1-5 cover a
 * second press during the outage (1, 3, 5), a ring that ends during the outage (4) and the
 * screen that comes back after the doorbell (3).
 */
test('SIGKILL the hub during a ring, 5 times: every ring event reaches every screen, none alerts twice, one that ended during the outage is shown missed', { timeout: 300_000 }, async (t) => {
  await sigkillRounds(t, 5)
})
