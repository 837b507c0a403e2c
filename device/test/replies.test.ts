import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryLogger } from '@doorbell/core'
import { findFfmpeg } from '../src/camera/camera'
import { QuickReplies, rtpPacket } from '../src/audio/replies'
import { opusPackets } from '../src/audio/oggOpus'
import { OPUS_PAYLOAD_TYPE } from '../src/audio/ffmpegArgs'

/** What reaches the speaker: each packet with the time it came. */
function sink () {
  const got: Array<{ from: string, packet: Uint8Array, at: number }> = []
  return { got, enabled: true, play (from: string, packet: Uint8Array) { got.push({ from, packet, at: Date.now() }) } }
}

/** Quick replies on the real ffmpeg and espeak-ng, in a folder of their own (removed after the test), started and enabled. */
async function startedReplies (t: { after: (fn: () => Promise<void>) => void }, folder: string): Promise<{ dir: string, lines: string[], speaker: ReturnType<typeof sink>, replies: QuickReplies }> {
  const dir = await mkdtemp(join(tmpdir(), folder))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const lines: string[] = []
  const speaker = sink()
  const replies = new QuickReplies({ dir, ffmpeg: findFfmpeg(), speaker, log: memoryLogger(lines, 'replies') })
  await replies.start()
  assert.equal(replies.enabled, true, lines.join('\n'))
  return { dir, lines, speaker, replies }
}

test('a quick reply is rendered once by espeak-ng into the cache, and played as 20 ms Opus RTP packets, paced', { timeout: 60_000 }, async (t) => {
  const { dir, lines, speaker, replies } = await startedReplies(t, 'doorbell-replies-')

  // A reply starting with "-" is said, not taken as an option of espeak-ng.
  await replies.use(['Leave it at the door', '-v is not an option'])
  assert.deepEqual(replies.texts(), ['Leave it at the door', '-v is not an option'])
  assert.equal((await readdir(dir)).filter((f) => f.endsWith('.opus')).length, 2, 'one cache file per reply, nothing left over')

  // Played: RTP, Opus's payload type, consecutive sequence numbers, 960 samples apart, paced at 20 ms.
  const ended = new Promise<void>((resolve) => {
    const ms = replies.play('Leave it at the door', resolve)
    assert.ok(ms !== null && ms > 500 && ms < 5000, `the reply lasts ${ms} ms`)
  })
  const started = Date.now()
  await ended
  const took = Date.now() - started
  const packets = speaker.got.map((g) => Buffer.from(g.packet))
  assert.ok(packets.length >= 25, `${packets.length} packets`)
  assert.ok(took >= (packets.length - 1) * 20 - 40, `paced like a talker: ${packets.length} packets in ${took} ms`)
  for (const [i, p] of packets.entries()) {
    assert.equal(p[0]! >> 6, 2)
    assert.equal(p[1]! & 0x7f, OPUS_PAYLOAD_TYPE)
    if (i > 0) {
      assert.equal(p.readUInt16BE(2), (packets[i - 1]!.readUInt16BE(2) + 1) & 0xffff)
      assert.equal(p.readUInt32BE(4) - packets[i - 1]!.readUInt32BE(4), 960)
    }
  }
  assert.equal(new Set(speaker.got.map((g) => g.from)).size, 1, 'one source for the whole reply')

  // The list changes: the removed reply is forgotten with its file; the kept one is not rendered again.
  lines.length = 0
  await replies.use(['Leave it at the door'])
  assert.deepEqual(replies.texts(), ['Leave it at the door'])
  assert.equal(replies.has('-v is not an option'), false)
  assert.equal((await readdir(dir)).length, 1)
  assert.equal(replies.play('-v is not an option', () => {}), null, 'a reply not in the list does not play')
})

test('without espeak-ng the replies are off with one warning, and nothing throws', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-replies-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const lines: string[] = []
  const replies = new QuickReplies({ dir, ffmpeg: findFfmpeg(), espeak: join(dir, 'no-espeak-ng'), speaker: sink(), log: memoryLogger(lines, 'replies') })
  await replies.start()
  assert.equal(replies.enabled, false)
  assert.match(lines.join('\n'), /quick replies are off: espeak-ng cannot be run.*apt-get install espeak-ng/)
  await replies.use(['Leave it at the door'])
  assert.equal(replies.has('Leave it at the door'), false)
})

test('oggOpus: the packets of an Ogg Opus file, and a clear error on anything else', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'doorbell-ogg-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  assert.throws(() => opusPackets(Buffer.from('not ogg at all')), /not an Ogg page at byte 0/)
  // One page, one packet that is not OpusHead.
  const page = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(22), Buffer.from([1, 3]), Buffer.from('abc')])
  assert.throws(() => opusPackets(page), /not Ogg Opus/)
  assert.throws(() => opusPackets(page.subarray(0, page.length - 1)), /truncated/)
  const rtp = Buffer.from(rtpPacket(Buffer.from([9, 9]), 65535, 2 ** 32 - 1, 7, true))
  assert.deepEqual([...rtp.subarray(0, 12)], [0x80, 0x80 | OPUS_PAYLOAD_TYPE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 7])
})

test('stop ends every reply playing: its end is called once (the talk lease is released) and nothing more reaches the speaker', { timeout: 60_000 }, async (t) => {
  const { dir, lines, speaker, replies } = await startedReplies(t, 'doorbell-replies-stop-')
  await replies.use(['We will be right there'])
  let ended = 0
  const ms = replies.play('We will be right there', () => { ended++ })
  assert.ok(ms !== null && ms > 300, `the reply lasts ${ms} ms`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  replies.stop()
  assert.equal(ended, 1, 'ended at stop, not left holding the lease')
  const sentAtStop = speaker.got.length
  assert.ok(sentAtStop > 0 && sentAtStop < Math.floor(ms / 20), `${sentAtStop} packets before stop`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(speaker.got.length, sentAtStop, 'nothing after stop')
  replies.stop()
  assert.equal(ended, 1, 'a second stop ends nothing twice')
})
