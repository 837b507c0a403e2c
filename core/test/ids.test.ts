import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Id, newId, parseTopic, topics } from '../src/index'

describe('Id', () => {
  test('accepts letters, digits, "_" and "-" up to 64 characters', () => {
    for (const s of ['a', 'Front-door_2', 'x'.repeat(64), '0']) assert.ok(Id.safeParse(s).success, s)
  })

  test('rejects empty, too long and anything that could break a topic level', () => {
    for (const s of ['', 'x'.repeat(65), 'a/b', 'a+b', 'a#b', 'a b', 'é', 'a.b', '$SYS']) {
      assert.equal(Id.safeParse(s).success, false, s)
    }
  })
})

describe('newId', () => {
  test('is 14 characters of lower-case base 36', () => {
    for (let i = 0; i < 200; i++) assert.match(newId(), /^[0-9a-z]{14}$/)
  })

  test('keeps the prefix in front', () => {
    assert.match(newId('ring-'), /^ring-[0-9a-z]{14}$/)
  })

  test('is always a valid Id and a valid topic level', () => {
    for (let i = 0; i < 200; i++) {
      const id = newId('s')
      assert.ok(Id.safeParse(id).success, id)
      assert.ok(parseTopic(topics.session('home', 'd', 'v', id, 'to-device')) !== null)
    }
  })

  test('does not repeat', () => {
    const seen = new Set(Array.from({ length: 5000 }, () => newId()))
    assert.equal(seen.size, 5000)
  })
})
