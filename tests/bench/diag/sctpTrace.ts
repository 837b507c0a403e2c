/**
 * The 1 s data-channel rounds between Chromium and a werift peer (docs/performance.md, "A DTLS
 * record number used twice"): a bounded experiment, not a figure, run inside scripts/isolated.sh:
 * `node --import tsx tests/bench/diag/sctpTrace.ts [rounds]`.
 *
 * An echo (werift, made as the doorbell makes its peers, in its own process) answers the page's
 * offer and sends each message straight back, then a second one (as the door sends two reports).
 * The echo notes every SCTP chunk it sends and receives, every datagram its sockets hand over or
 * read (with each DTLS record's epoch and number), and its T3 timer; for each round over 100 ms it
 * prints what it saw from just before the page's send to the reply's arrival (`SCTP_TRACE_SLOW=MS`:
 * another threshold; the round whose reply was dropped is always printed). The kernel's UDP
 * counters of the run's network namespace say whether it dropped anything.
 *
 * - `SCTP_TRACE_WERIFT_AS_IS=1`: werift's own record numbers (without dtlsRecordNumbers.ts).
 * - `SCTP_TRACE_SECOND=none|same|MS`: no second message, in the same turn, or MS later (default:
 *   the next turn).
 * - `SCTP_TRACE_DROP=N`: the datagram with round N's reply is dropped (a loss on the way);
 *   `SCTP_TRACE_RECOVERY=werift`: werift's own recovery (three reports, a timeout of 1 s at least)
 *   instead of the doorbell's (sctpRecovery.ts); `=rto`: only the doorbell's timeout bounds.
 * - `SCTP_TRACE_EARLY=1`: watch the sockets from the start (the handshake's records too);
 *   `SCTP_TRACE_BEFORE=MS`: print from that long before each slow round's send (default 20).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { MediaStreamTrack, type RTCPeerConnection } from 'werift'
import { createPeerConnection, fasterRecovery, peerSockets, uniqueRecordNumbers, webrtcRto, withoutDefaultStun } from '@doorbell/device'
import { asDtlsServer } from '@doorbell/core'

const now = (): number => performance.timeOrigin + performance.now()
type Ev = [number, string]

function echo (): void {
  const events: Ev[] = []
  const note = (what: string): void => { events.push([now(), what]); if (events.length > 200_000) events.splice(0, 100_000) }
  const chunkText = (c: any): string => {
    const name = c.constructor?.name ?? `type ${c.type}`
    if (c.type === 0) return `${name} tsn ${c.tsn} sid ${c.streamId} ssn ${c.streamSeqNum} len ${c.userData?.length}`
    if (c.type === 3) return `${name} cum ${c.cumulativeTsn} rwnd ${c.advertisedRwnd} gaps ${JSON.stringify(c.gaps)} dups ${JSON.stringify(c.duplicates)}`
    return name
  }
  // SCTP_TRACE_DROP=N: the datagram with the reply of round N is not sent (a loss on the way).
  const dropRound = process.env.SCTP_TRACE_DROP !== undefined ? Number(process.env.SCTP_TRACE_DROP) : null
  let dropData = false
  let dropDatagram = false
  const watch = (pc: RTCPeerConnection): void => {
    const sctp = (pc as any).sctpTransport?.sctp
    if (sctp) {
      const send = sctp.sendChunk.bind(sctp)
      sctp.sendChunk = async (c: any) => {
        note(`sctp out ${chunkText(c)} flight ${sctp.flightSize} cwnd ${sctp.cwnd} rto ${sctp.rto}`)
        if (dropData && c.type === 0) { dropData = false; dropDatagram = true }
        return await send(c)
      }
      const recv = sctp.receiveChunk.bind(sctp)
      sctp.receiveChunk = async (c: any) => { note(`sctp in  ${chunkText(c)}`); return await recv(c) }
      const t3 = sctp.timer3Expired
      sctp.timer3Expired = () => { note(`T3 expired: sentQueue ${sctp.sentQueue.map((c: any) => c.tsn).join(',')} outbound ${sctp.outboundQueue.length}`); t3() }
      const t3s = sctp.timer3Start.bind(sctp)
      sctp.timer3Start = () => { note(`T3 start rto ${sctp.rto}`); t3s() }
    }
    for (const socket of peerSockets(pc)) {
      const local = (() => { try { return socket.address().port } catch { return 0 } })()
      // Every DTLS record in the datagram (RFC 6347 §4.1: type, version, epoch, sequence number, length).
      const rec = (d: Buffer): string => {
        if (d[0]! < 20 || d[0]! > 63) return ''
        const out: string[] = []
        for (let i = 0; i + 13 <= d.length; i += 13 + d.readUInt16BE(i + 11)) out.push(`[${d[i]} e${d.readUInt16BE(i + 3)} s${d.readUIntBE(i + 5, 6)}]`)
        return ` ${out.join('')}`
      }
      socket.prependListener('message', (data: Buffer, rinfo) => { note(`udp in  ${local}<-${rinfo.address}:${rinfo.port} type ${data[0]} len ${data.length}${rec(data)}`) })
      const s = socket.send.bind(socket) as (...a: unknown[]) => void
      ;(socket as any).send = (...a: unknown[]) => {
        const d = a[0] as Buffer
        if (dropDatagram && d[0] === 23) { dropDatagram = false; note(`udp out DROPPED (len ${d.length}${rec(d)})`); return }
        note(`udp out ${local}->${a.slice(1).filter((x) => typeof x !== 'function').join(',')} type ${d[0]} len ${d.length}${rec(d)}`)
        s(...a)
      }
    }
  }
  process.on('message', (m: { type: string, sdp?: string, from?: number, to?: number }) => {
    if (m.type === 'stop') process.exit(0)
    if (m.type === 'dump') { process.send!({ type: 'dump', events: events.filter(([t]) => t >= m.from! && t <= m.to!) }); return }
    if (m.type !== 'offer') return
    void (async () => {
      const pc = createPeerConnection({ codec: 'h264', iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'] })
      pc.addTransceiver(new MediaStreamTrack({ kind: 'video' }), { direction: 'sendonly' })
      pc.onDataChannel.subscribe((dc) => {
        dc.onMessage.subscribe((data) => {
          const seq = (JSON.parse(data.toString()) as { seq: number }).seq
          note(`message ${seq} in; reply sent`)
          if (seq === dropRound) dropData = true
          dc.send(JSON.stringify({ seq, reply: true }))
          const second = (): void => { note(`message ${seq}: second sent`); dc.send(JSON.stringify({ seq, times: true })) }
          if (process.env.SCTP_TRACE_SECOND === 'none') return
          if (process.env.SCTP_TRACE_SECOND === 'same') second()
          else if (process.env.SCTP_TRACE_SECOND !== undefined) setTimeout(second, Number(process.env.SCTP_TRACE_SECOND))
          else setImmediate(second)
        })
      })
      await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp! })
      // As the doorbell does, unless SCTP_TRACE_WERIFT_AS_IS=1 (werift's own record numbers).
      const dtls = pc.getTransceivers()[0]?.sender.dtlsTransport
      if (process.env.SCTP_TRACE_WERIFT_AS_IS !== '1' && dtls) uniqueRecordNumbers(dtls, (kept) => { note(`record numbers kept: ${kept}`) })
      // As the doorbell recovers a lost message (sctpRecovery.ts), unless SCTP_TRACE_RECOVERY says otherwise.
      const association = (pc as any).sctpTransport?.sctp
      const recovery = process.env.SCTP_TRACE_RECOVERY ?? 'doorbell'
      if (recovery === 'rto') note(`WebRTC's RTO bounds: ${webrtcRto(association)}`)
      else if (recovery !== 'werift') note(`the doorbell's recovery: ${fasterRecovery(association)}`)
      withoutDefaultStun(pc, [])
      await pc.setLocalDescription(asDtlsServer(await pc.createAnswer()))
      if (pc.iceGatheringState !== 'complete') await pc.iceGatheringStateChange.watch((s) => s === 'complete')
      if (process.env.SCTP_TRACE_EARLY === '1') watch(pc)
      else pc.connectionStateChange.subscribe((s) => { if (s === 'connected') watch(pc) })
      process.send!({ type: 'answer', sdp: pc.localDescription!.sdp })
    })()
  })
  process.send!({ type: 'ready' })
}

const ask = <T>(child: ChildProcess, message: object, type: string): Promise<T> => new Promise((resolve) => {
  const on = (m: { type: string }): void => { if (m.type === type) { child.off('message', on); resolve(m as T) } }
  child.on('message', on)
  child.send(message)
})

async function main (): Promise<void> {
  const rounds = Number(process.argv[2] ?? 600)
  // Rounds slower than this are printed with what the echo saw (SCTP_TRACE_SLOW=MS), and the round whose reply was dropped.
  const SLOW_MS = Number(process.env.SCTP_TRACE_SLOW ?? 100)
  const dropped = process.env.SCTP_TRACE_DROP !== undefined ? Number(process.env.SCTP_TRACE_DROP) : -1
  const child = fork(fileURLToPath(import.meta.url), ['echo'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  await new Promise<void>((resolve) => child.once('message', () => { resolve() }))
  const { chromium } = await import('playwright-core')
  const { CHROMIUM, CHROMIUM_ARGS, pageAnswer, pageOffer } = await import('../../src/browser')
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  try {
    const page = await browser.newPage()
    const { sdp } = await ask<{ sdp: string }>(child, { type: 'offer', sdp: await pageOffer(page) }, 'answer')
    await pageAnswer(page, sdp)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const got = await page.evaluate(`(async () => {
      const out = []
      const at = () => performance.timeOrigin + performance.now()
      for (let i = 0; i < ${rounds}; i++) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 100))
        let reply
        const second = new Promise((r) => { window.dc.onmessage = (e) => { const m = JSON.parse(e.data); if (m.reply) { reply = at(); if (${JSON.stringify(process.env.SCTP_TRACE_SECOND === 'none')}) r(reply) } else r(at()) } })
        const sent = at()
        window.dc.send(JSON.stringify({ seq: i, pad: 'x'.repeat(260) }))
        const secondAt = await second
        out.push([i, sent, reply, secondAt])
      }
      return out
    })()`) as Array<[number, number, number, number]>
    const rtt = got.map(([, s, r]) => r - s).sort((a, b) => a - b)
    const q = (p: number): string => rtt[Math.min(rtt.length - 1, Math.floor(rtt.length * p))]!.toFixed(2)
    console.log(readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:')).join('\n'))
    console.log(`${got.length} rounds: p50 ${q(0.5)} / p95 ${q(0.95)} / p99 ${q(0.99)} / max ${rtt.at(-1)!.toFixed(2)} ms`)
    for (const [seq, sent, reply, second] of got) {
      if (reply - sent < SLOW_MS && second - sent < SLOW_MS && seq !== dropped) continue
      console.log(`\nround ${seq}: reply after ${(reply - sent).toFixed(1)} ms, second after ${(second - sent).toFixed(1)} ms (page clock; the echo's events from 20 ms before the send)`)
      const { events } = await ask<{ events: Ev[] }>(child, { type: 'dump', from: sent - Number(process.env.SCTP_TRACE_BEFORE ?? 20), to: Math.max(reply, second) + 20 }, 'dump')
      for (const [t, what] of events) console.log(`  ${(t - sent).toFixed(2).padStart(9)}  ${what}`)
    }
  } finally {
    await browser.close()
    child.send({ type: 'stop' })
  }
}

if (process.argv[2] === 'echo') echo()
else void main().then(() => process.exit(0), (err: unknown) => { console.error(err); process.exit(1) })
