import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DirectBook, DirectReach, EventFrame, HubHello, HubReply, MAX_FRAME_BYTES, Presence, ViewerHello, readFrame, writeFrame,
  type FrameIo
} from '../src/index'
import { presence, ring } from './fixtures'

const PEER = '12D3KooWKs2NjjcuWMEbp4LUiGxieNra8CTAJX83Hi862JGPdrVP'
const ADDR = `/ip4/192.168.1.20/udp/4102/webrtc-direct/certhash/uEiAmoVCjnORlaK81OBsKQERErQufnnLi8uCAyJ2GNxEsTw/p2p/${PEER}`
const reach = { peerId: PEER, addrs: [ADDR] }

/** A FrameIo over an array: what one side writes, the other reads. */
function pipe (): FrameIo & { frames: Uint8Array[] } {
  const frames: Uint8Array[] = []
  return {
    frames,
    write: async (data) => { frames.push(data) },
    read: async () => {
      const next = frames.shift()
      if (!next) throw new Error('the stream ended')
      return { subarray: () => next }
    }
  }
}

describe('direct path schemas', () => {
  test('a presence may carry webrtc-direct addresses; anything else there is refused', () => {
    assert.ok(Presence.safeParse(presence({ direct: reach })).success)
    for (const bad of [
      { peerId: 'not-a-peer', addrs: [ADDR] },
      { peerId: PEER, addrs: [] },
      { peerId: PEER, addrs: ['/ip4/192.168.1.20/tcp/4101/p2p/' + PEER] },
      { peerId: PEER, addrs: [ADDR.replace('/certhash/', '/')] },
      { peerId: PEER, addrs: ['https://evil.example/'] },
      { peerId: PEER, addrs: Array.from({ length: 17 }, () => ADDR) }
    ]) {
      assert.equal(DirectReach.safeParse(bad).success, false, JSON.stringify(bad).slice(0, 120))
    }
  })

  test('an address book maps device ids to reach, and refuses bad ids', () => {
    assert.ok(DirectBook.safeParse({ 'front-door': reach }).success)
    assert.equal(DirectBook.safeParse({ '../x': reach }).success, false)
    assert.equal(DirectBook.safeParse({ 'front-door': { peerId: PEER } }).success, false)
  })

  test('hellos and replies are strict', () => {
    assert.ok(HubHello.safeParse({ homeId: 'home', deviceId: 'porch', deviceName: 'Porch', direct: reach }).success)
    assert.equal(HubHello.safeParse({ homeId: 'home', deviceId: 'porch', deviceName: 'Porch', extra: 1 }).success, false)
    assert.ok(HubReply.safeParse({ ok: true, homeId: 'home', hubName: 'Hub', mqttPort: 1883 }).success)
    assert.equal(HubReply.safeParse({ ok: true, homeId: 'home', hubName: 'Hub', mqttPort: 0 }).success, false)
    assert.equal(HubReply.safeParse({ ok: true, homeId: 'home', hubName: 'Hub', mqttPort: 1883, mqttUrl: 'http://x' }).success, false)
    assert.ok(HubReply.safeParse({ ok: false, error: 'other-home', message: 'no' }).success)
    assert.equal(ViewerHello.safeParse({ homeId: 'home', viewerId: 'v 1', viewerName: 'x' }).success, false)
  })

  test('event frames carry the topic payloads, checked by their schemas', () => {
    assert.ok(EventFrame.safeParse({ kind: 'ring', payload: ring() }).success)
    assert.equal(EventFrame.safeParse({ kind: 'ring', payload: { ...ring(), count: 0 } }).success, false)
    assert.equal(EventFrame.safeParse({ kind: 'inspect', payload: {} }).success, false)
  })

  test('frames round-trip; a bad or oversized frame is an error value, not a throw', async () => {
    const io = pipe()
    await writeFrame(io, EventFrame, { kind: 'ring', payload: ring() })
    const back = await readFrame(io, EventFrame, 'test')
    assert.ok(back.ok)
    assert.deepEqual(back.value, { kind: 'ring', payload: ring() })

    io.frames.push(new TextEncoder().encode('{"kind":"ring"'))
    const broken = await readFrame(io, EventFrame, 'events')
    assert.equal(broken.ok, false)
    assert.equal(!broken.ok && broken.error.code, 'malformed-json')

    io.frames.push(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0x20))
    const big = await readFrame(io, EventFrame, 'events')
    assert.equal(!big.ok && big.error.code, 'too-large')

    await assert.rejects(readFrame(io, EventFrame, 'events'), /the stream ended/)
    // We never write what our own schema refuses.
    await assert.rejects(writeFrame(io, EventFrame, { kind: 'ring', payload: { ...ring(), count: 0 } }))
    assert.equal(io.frames.length, 0)
  })
})
