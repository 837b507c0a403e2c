import { test } from 'node:test'
import assert from 'node:assert/strict'
import { effectScope, ref } from 'vue'
import { PENDING_SHOWN_AFTER_MS, heldFor } from '../src/composables/heldFor'

test('a state is shown only once it has held: an answer within the delay never draws "Opening…"', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const scope = effectScope()
  const pending = ref(false)
  const shown = scope.run(() => heldFor(() => pending.value, PENDING_SHOWN_AFTER_MS))!
  assert.equal(shown.value, false)

  // Answered 10 ms after the send, as on the home network: never shown.
  pending.value = true
  t.mock.timers.tick(10)
  pending.value = false
  t.mock.timers.tick(PENDING_SHOWN_AFTER_MS * 2)
  assert.equal(shown.value, false)

  // An answer that takes longer: shown once the delay has passed, gone the moment it comes.
  pending.value = true
  t.mock.timers.tick(PENDING_SHOWN_AFTER_MS - 1)
  assert.equal(shown.value, false)
  t.mock.timers.tick(1)
  assert.equal(shown.value, true)
  pending.value = false
  assert.equal(shown.value, false)

  // Gone with its scope (the card unmounted): a timer left running changes nothing.
  pending.value = true
  scope.stop()
  t.mock.timers.tick(PENDING_SHOWN_AFTER_MS)
  assert.equal(shown.value, false)
})
