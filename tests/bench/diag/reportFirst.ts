/**
 * Does the report "Door open" is shown from leave sooner when the doorbell's bookkeeping after it
 * waits a turn of the loop? A bounded experiment, not a figure:
 * `node --import tsx tests/bench/diag/reportFirst.ts [rounds]` (inside scripts/isolated.sh).
 *
 * An echo in its own process (a werift peer made as the doorbell makes its peers, its sockets
 * prompt: device/src/peer/promptSend.ts) answers each command as the doorbell's door does: a few
 * promise steps (the guard, the lock machine), "unlocking", a few more (the relay), "unlocked",
 * then ~2 ms of bookkeeping in promise steps (audit, ack, log lines) and the ack. Rounds alternate
 * between the bookkeeping right after "unlocked" (`inline`, as before) and a turn of the loop later
 * (`yield`), or none at all (`none`, the floor), or a turn later with no "unlocking" before "unlocked"
 * (`one`: the commanding session's channel as the door tells it since 2026-12-07). A werift viewer
 * in this process times sent → "unlocked" received.
 */
import { fork } from 'node:child_process'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { RTCPeerConnection } from 'werift'
import { createPeerConnection, withoutDefaultStun } from '@doorbell/device'
import { asDtlsServer } from '@doorbell/core'
import { promptSend } from '../../../device/src/peer/promptSend'
import { round, spread } from '../lib'

const steps = async (n: number): Promise<void> => { for (let i = 0; i < n; i++) await null }
const busy = async (ms: number): Promise<void> => {
  for (let i = 0; i < ms * 5; i++) {
    const until = performance.now() + 0.2
    while (performance.now() < until) { /* bookkeeping */ }
    await null
  }
}

async function echo (): Promise<void> {
  process.on('message', (m: { sdp: string }) => {
    void (async () => {
      const pc = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
      pc.onDataChannel.subscribe((dc) => {
        dc.onMessage.subscribe((data) => {
          const { seq, mode } = JSON.parse(data.toString()) as { seq: number, mode: string }
          void (async () => {
            await steps(5)
            // `one`: the resident's own channel is told only "unlocked" (it shows "Opening…" while its command is pending).
            if (mode !== 'one') dc.send(JSON.stringify({ seq, lock: 'unlocking' }))
            await steps(5)
            dc.send(JSON.stringify({ seq, lock: 'unlocked' }))
            if (mode === 'yield' || mode === 'one') await new Promise<void>((resolve) => { setImmediate(resolve) })
            if (mode !== 'none') await busy(2)
            dc.send(JSON.stringify({ seq, ack: true }))
          })()
        })
      })
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp })
      withoutDefaultStun(pc, [])
      await pc.setLocalDescription(asDtlsServer(await pc.createAnswer()))
      if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete')
      promptSend(pc)
      process.send!({ sdp: pc.localDescription!.sdp })
    })()
  })
}

async function main (): Promise<void> {
  const rounds = Number(process.argv[2] ?? 100)
  const child = fork(fileURLToPath(import.meta.url), ['echo'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pc = new RTCPeerConnection({ iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], bundlePolicy: 'max-bundle' })
  try {
    const dc = pc.createDataChannel('commands')
    await pc.setLocalDescription(await pc.createOffer())
    withoutDefaultStun(pc, [])
    if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete')
    const answer = await new Promise<string>((resolve) => { child.once('message', (m: { sdp: string }) => { resolve(m.sdp) }); child.send({ sdp: pc.localDescription!.sdp }) })
    await pc.setRemoteDescription({ type: 'answer', sdp: answer })
    if (dc.readyState !== 'open') await dc.stateChanged.watch((s) => s === 'open')
    let waiting: ((m: { lock?: string, ack?: boolean }) => void) | null = null
    dc.onMessage.subscribe((data) => { waiting?.(JSON.parse(data.toString()) as { lock?: string, ack?: boolean }) })
    const until = (check: (m: { lock?: string, ack?: boolean }) => boolean): Promise<number> => new Promise((resolve) => {
      waiting = (m) => { if (check(m)) resolve(performance.now()) }
    })
    const modes = ['inline', 'yield', 'none', 'one']
    const results: Record<string, number[]> = { inline: [], yield: [], none: [], one: [] }
    const load = [loadavg()[0]!]
    for (let seq = 0; seq < rounds; seq++) {
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 50))
      const mode = modes[seq % modes.length]!
      const unlocked = until((m) => m.lock === 'unlocked')
      const sent = performance.now()
      dc.send(JSON.stringify({ seq, mode, pad: 'x'.repeat(260) }))
      results[mode]!.push(await unlocked - sent)
      await until((m) => m.ack === true)
    }
    load.push(loadavg()[0]!)
    console.log(`${rounds} rounds, load ${load.map((l) => round(l, 2)).join(' → ')}; sent → "unlocked" received, p50 / p95 / p99 ms:`)
    for (const [mode, xs] of Object.entries(results)) console.log(`  ${mode.padEnd(7)} ${spread(xs, 2)}`)
  } finally {
    await pc.close()
    child.kill()
  }
}

if (process.argv[2] === 'echo') await echo()
else await main()
