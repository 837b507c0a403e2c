/**
 * The connection figures of one feed, from `RTCPeerConnection.getStats()`: pure functions, so the
 * console's one stats loop only feeds them and writes the result, and a test can hand them the
 * entries a browser reports (test/stats.test.ts, with Chromium 156's shapes).
 *
 * Rates (bitrate, frames per second when the browser gives none, loss over the last second) need
 * the previous reading's counters: the `Sample` each call returns is the next call's `previous`.
 * Counters that go backwards (a new peer connection after a reconnect, a new SSRC) give no rate
 * for that reading rather than a negative or absurd one.
 */

/** One entry of an RTCStatsReport (`[...report.values()]`): only the fields read here are named. */
export interface StatsEntry {
  id: string
  type: string
  timestamp?: number
  [field: string]: unknown
}

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay'

export interface Candidate {
  type: CandidateType | null
  /** Null when the browser hides it (Chromium blanks addresses for pages without media permission) and the SDP has none either. */
  address: string | null
  port: number | null
  /** udp or tcp: how this end sends. */
  protocol: string | null
  /** A relay candidate: how the browser reaches its TURN server (udp, tcp, tls). */
  relayProtocol: string | null
}

/** The counters kept from one reading to the next. */
export interface Sample {
  /** When these counters were read (the inbound-rtp's own timestamp, else `now`), ms. */
  at: number
  /** Which inbound-rtp they are from: another one (a new SSRC, a new call) gives no rate. */
  inboundId: string | null
  bytesReceived: number | null
  framesDecoded: number | null
  packetsReceived: number | null
  packetsLost: number | null
  /** The first decoded frame (the page's clock), once seen: it stays. */
  firstFrameAt: number | null
}

export interface Figures {
  /** Candidate types of the selected pair: host / srflx / prflx / relay. */
  path: { local: CandidateType | null, remote: CandidateType | null } | null
  local: Candidate | null
  remote: Candidate | null
  rttMs: number | null
  fps: number | null
  bitrateKbps: number | null
  /** Packets lost over the last interval, of those expected, %. */
  lossPct: number | null
  /** Since the start of the call, %. */
  lossTotalPct: number | null
  dtlsCipher: string | null
  srtpCipher: string | null
  /** DTLS 1.2 / DTLS 1.3 (Chromium reports the version as hex: FEFD, FEFC). */
  tlsVersion: string | null
  /** Start of the call → first decoded frame, ms. */
  ttffMs: number | null
  framesDecoded: number | null
  /** The video decoded nothing since the previous reading (or nothing at all yet). */
  frozen: boolean
  sample: Sample
}

/** When the call started and, if the page saw it (requestVideoFrameCallback), its first frame; both on the page's clock. */
export interface CallTiming {
  startedAt: number | null
  firstFrameAt?: number | null
}

/** The peer connection's SDP, where candidate addresses are when the stats hide them. */
export interface Descriptions {
  local?: string | null
  remote?: string | null
}

const num = (v: unknown): number | null => typeof v === 'number' && Number.isFinite(v) ? v : null
const str = (v: unknown): string | null => typeof v === 'string' && v !== '' ? v : null
const CANDIDATE_TYPES: readonly string[] = ['host', 'srflx', 'prflx', 'relay']
const candidateType = (v: unknown): CandidateType | null => typeof v === 'string' && CANDIDATE_TYPES.includes(v) ? v as CandidateType : null

interface SdpCandidate { address: string, port: number, protocol: string, type: string }

/** The `a=candidate:` lines of an SDP (RFC 8839 §5.1): foundation component transport priority address port typ type. */
export function candidatesFromSdp (sdp: string | null | undefined): SdpCandidate[] {
  if (!sdp) return []
  const found: SdpCandidate[] = []
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/.exec(line)
    if (m) found.push({ protocol: m[1]!.toLowerCase(), address: m[2]!, port: Number(m[3]), type: m[4]! })
  }
  return found
}

function candidateOf (entry: StatsEntry | undefined, sdp: SdpCandidate[]): Candidate | null {
  if (!entry) return null
  const type = candidateType(entry.candidateType)
  const port = num(entry.port)
  const protocol = str(entry.protocol)?.toLowerCase() ?? null
  // `address` (spec) or `ip` (older); a blank one is hidden, and the SDP the page already holds may name it.
  let address = str(entry.address) ?? str(entry.ip)
  if (address === null && port !== null) {
    const same = sdp.filter((c) => c.port === port && (protocol === null || c.protocol === protocol) && (type === null || c.type === type))
    if (same.length === 1) address = same[0]!.address
  }
  return { type, address, port, protocol, relayProtocol: str(entry.relayProtocol) }
}

const TLS_VERSIONS: Record<string, string> = { FEFD: 'DTLS 1.2', FEFC: 'DTLS 1.3', FEFF: 'DTLS 1.0' }

/** The figures of one reading. `now` is the page's clock (performance.now()), used where an entry has no timestamp. */
export function figuresOf (entries: Iterable<StatsEntry>, previous: Sample | null, now: number, call: CallTiming = { startedAt: null }, sdp: Descriptions = {}): Figures {
  const byId = new Map<string, StatsEntry>()
  const transports: StatsEntry[] = []
  const pairs: StatsEntry[] = []
  const videos: StatsEntry[] = []
  for (const e of entries) {
    byId.set(e.id, e)
    if (e.type === 'transport') transports.push(e)
    else if (e.type === 'candidate-pair') pairs.push(e)
    else if (e.type === 'inbound-rtp' && (e.kind ?? e.mediaType) === 'video') videos.push(e)
  }

  // The transport that carries the video (max-bundle: the only one), and its selected pair. Only
  // without `selectedCandidatePairId` (Firefox) a pair is picked by its own flags: several can be
  // nominated and succeeded at once (Chromium 156 shows two).
  const video = videos.reduce<StatsEntry | undefined>((best, v) => (num(v.bytesReceived) ?? 0) > (num(best?.bytesReceived) ?? -1) ? v : best, undefined)
  const transport = (video && transports.find((t) => t.id === video.transportId)) ?? transports[0]
  const selectedId = str(transport?.selectedCandidatePairId)
  const pair = selectedId !== null
    ? byId.get(selectedId)
    : pairs.find((p) => p.selected === true) ?? pairs.find((p) => p.nominated === true && p.state === 'succeeded')

  const local = candidateOf(pair ? byId.get(String(pair.localCandidateId)) : undefined, candidatesFromSdp(sdp.local))
  const remote = candidateOf(pair ? byId.get(String(pair.remoteCandidateId)) : undefined, candidatesFromSdp(sdp.remote))
  const rtt = num(pair?.currentRoundTripTime)

  const at = num(video?.timestamp) ?? now
  const counters = {
    inboundId: video?.id ?? null,
    bytesReceived: num(video?.bytesReceived),
    framesDecoded: num(video?.framesDecoded),
    packetsReceived: num(video?.packetsReceived),
    // Can be negative (duplicates counted as received): nothing was lost then.
    packetsLost: num(video?.packetsLost) === null ? null : Math.max(0, num(video?.packetsLost)!)
  }
  const firstFrameAt = call.firstFrameAt ?? previous?.firstFrameAt ?? ((counters.framesDecoded ?? 0) > 0 ? now : null)
  const sample: Sample = { at, ...counters, firstFrameAt }

  // Rates only between two readings of the same stream whose counters did not go back.
  const comparable = previous !== null && previous.inboundId !== null && previous.inboundId === counters.inboundId && at > previous.at
  const delta = (k: 'bytesReceived' | 'framesDecoded' | 'packetsReceived' | 'packetsLost'): number | null => {
    if (!comparable) return null
    const a = previous[k]
    const b = counters[k]
    return a === null || b === null || b < a ? null : b - a
  }
  const seconds = comparable ? (at - previous.at) / 1000 : 0
  const dBytes = delta('bytesReceived')
  const dFrames = delta('framesDecoded')
  const dReceived = delta('packetsReceived')
  const dLost = delta('packetsLost')

  const fps = num(video?.framesPerSecond) ?? (dFrames !== null && seconds > 0 ? dFrames / seconds : null)
  const bitrateKbps = dBytes !== null && seconds > 0 ? dBytes * 8 / seconds / 1000 : null
  const lossPct = dLost !== null && dReceived !== null
    ? (dLost + dReceived > 0 ? 100 * dLost / (dLost + dReceived) : 0)
    : null
  const lossTotalPct = counters.packetsLost !== null && counters.packetsReceived !== null
    ? (counters.packetsLost + counters.packetsReceived > 0 ? 100 * counters.packetsLost / (counters.packetsLost + counters.packetsReceived) : 0)
    : null
  const version = str(transport?.tlsVersion)
  const ttffMs = firstFrameAt !== null && call.startedAt !== null && firstFrameAt >= call.startedAt ? firstFrameAt - call.startedAt : null

  return {
    path: pair ? { local: local?.type ?? null, remote: remote?.type ?? null } : null,
    local,
    remote,
    rttMs: rtt === null ? null : rtt * 1000,
    fps,
    bitrateKbps,
    lossPct,
    lossTotalPct,
    dtlsCipher: str(transport?.dtlsCipher),
    srtpCipher: str(transport?.srtpCipher),
    tlsVersion: version === null ? null : TLS_VERSIONS[version.toUpperCase()] ?? version,
    ttffMs,
    framesDecoded: counters.framesDecoded,
    frozen: (counters.framesDecoded ?? 0) === 0 || dFrames === 0,
    sample
  }
}

// ---------------------------------------------------------------- what the tile shows

/** In the order a tile lists them (the long cipher last: it may wrap). */
export const FIGURE_KEYS = ['path', 'local', 'remote', 'rtt', 'fps', 'bitrate', 'loss', 'ttff', 'cipher'] as const
export type FigureKey = typeof FIGURE_KEYS[number]

/** Shown for a figure the browser did not give (yet). */
export const NONE = '—'

/** Above these, a figure is wrong and gets the console's one colour. Relay is not wrong: it is a choice. */
export const LIMITS = { lossPct: 2, rttMs: 250, fps: 10 } as const

/** Chromium's mDNS name for its own host address (`<uuid>.local`) is long and says nothing to read: its first 4 characters. */
const shortMdns = (address: string): string => /^[0-9a-f]{8}-[0-9a-f-]{27}\.local$/i.test(address) ? `${address.slice(0, 4)}….local` : address

const hostPort = (c: Candidate): string => {
  const address = c.address === null ? null : c.address.includes(':') ? `[${c.address}]` : shortMdns(c.address)
  return address === null ? `(hidden):${c.port}` : `${address}:${c.port}`
}

function candidateText (c: Candidate | null): string {
  if (!c || c.port === null) return NONE
  const via = c.type === 'relay' && c.relayProtocol ? ` (relay via ${c.relayProtocol})` : ''
  return `${hostPort(c)} ${c.protocol ?? '?'}${via}`
}

const ms = (v: number): string => v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`
const pct = (v: number): string => `${v.toFixed(1)} %`

/** The text of each figure: "—" for what is missing, never a guess. */
export function figureTexts (f: Figures | null): Record<FigureKey, string> {
  if (!f) return Object.fromEntries(FIGURE_KEYS.map((k) => [k, NONE])) as Record<FigureKey, string>
  const cipher = f.dtlsCipher === null && f.srtpCipher === null
    ? NONE
    : `${f.dtlsCipher ?? NONE} · ${f.srtpCipher ?? NONE}${f.tlsVersion ? ` · ${f.tlsVersion}` : ''}`
  return {
    path: f.path ? `${f.path.local ?? '?'} → ${f.path.remote ?? '?'}` : NONE,
    local: candidateText(f.local),
    remote: candidateText(f.remote),
    rtt: f.rttMs === null ? NONE : ms(f.rttMs),
    fps: f.fps === null ? NONE : `${Math.round(f.fps)} fps`,
    bitrate: f.bitrateKbps === null ? NONE : `${Math.round(f.bitrateKbps)} kbit/s`,
    loss: f.lossPct === null && f.lossTotalPct === null
      ? NONE
      : `${f.lossPct === null ? NONE : pct(f.lossPct)} (total ${f.lossTotalPct === null ? NONE : pct(f.lossTotalPct)})`,
    cipher,
    ttff: f.ttffMs === null ? NONE : `${Math.round(f.ttffMs)} ms`
  }
}

/** Which figures are wrong: loss above 2 %, RTT above 250 ms, under 10 fps or no frame. */
export function alarmsOf (f: Figures | null): Set<FigureKey> {
  const wrong = new Set<FigureKey>()
  if (!f) return wrong
  if ((f.lossPct ?? 0) > LIMITS.lossPct || (f.lossPct === null && (f.lossTotalPct ?? 0) > LIMITS.lossPct)) wrong.add('loss')
  if ((f.rttMs ?? 0) > LIMITS.rttMs) wrong.add('rtt')
  if ((f.fps !== null && f.fps < LIMITS.fps) || f.frozen) wrong.add('fps')
  return wrong
}
