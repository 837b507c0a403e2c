import {
  Listeners,
  type IceServerInit, type SignalToDevice, type SignalToViewer, type ViewerTransport, type ViewerTransportEvents
} from '@doorbell/core'
import type { LinkPath } from '@doorbell/machines'
import type { HubClient } from './lan/hubClient'

/** The home's events from one path, passed on. */
const forward = (from: ViewerTransport, to: Listeners<ViewerTransportEvents>): Array<() => void> => [
  from.on('ring', (r) => { to.emit('ring', r) }),
  from.on('snapshot', (s) => { to.emit('snapshot', s) }),
  from.on('state', (s) => { to.emit('state', s) }),
  from.on('presence', (p) => { to.emit('presence', p) }),
  from.on('call', (c) => { to.emit('call', c) })
]

/**
 * The viewer's signaling on the path the link machine has up, and on no other: `route` reads its
 * snapshot (`pathOf`), the one place that says which path is in use. The hub's client is always
 * here (its actor lives as long as the machine); the direct or cloud client is attached by its
 * actor while it lives. Events from both reach the same listeners (the call machines drop
 * repeats and stale ones); a session hears its answer on whichever path carried its offer, and
 * its bye goes on the path that is up when the resident hangs up.
 */
export class Paths implements ViewerTransport {
  private away: ViewerTransport | null = null
  private detachAway: Array<() => void> = []
  private readonly listeners = new Listeners<ViewerTransportEvents>()
  private readonly sessions = new Map<string, (message: SignalToViewer) => void>()

  constructor (readonly hub: HubClient, private readonly route: () => LinkPath | null) {
    forward(hub, this.listeners)
  }

  get path (): ViewerTransport['path'] { return this.active()?.path ?? 'lan' }
  get connected (): boolean { return this.active() !== null }

  private active (): ViewerTransport | null {
    const path = this.route()
    if (path === 'lan') return this.hub
    return path !== null && this.away?.path === path ? this.away : null
  }

  /** The link machine's direct or cloud actor hands over its client while it lives. */
  attach (client: ViewerTransport): void {
    this.detach()
    this.away = client
    this.detachAway.push(...forward(client, this.listeners))
    for (const [id, l] of this.sessions) this.detachAway.push(client.onSession(id, l))
  }

  /** Only the client given; a late detach from a path already replaced changes nothing. */
  detach (client?: ViewerTransport): void {
    if (client && client !== this.away) return
    for (const d of this.detachAway) d()
    this.detachAway = []
    this.away = null
  }

  on<K extends keyof ViewerTransportEvents>(event: K, listener: ViewerTransportEvents[K]): () => void {
    return this.listeners.on(event, listener)
  }

  onSession (sessionId: string, listener: (message: SignalToViewer) => void): () => void {
    this.sessions.set(sessionId, listener)
    const offHub = this.hub.onSession(sessionId, listener)
    const offAway = this.away?.onSession(sessionId, listener)
    return () => { this.sessions.delete(sessionId); offHub(); offAway?.() }
  }

  sendToDevice (deviceId: string, sessionId: string, message: SignalToDevice): void {
    const path = this.active()
    if (path) { path.sendToDevice(deviceId, sessionId, message); return }
    // No path up: an offer queued now would reach the device late, as a ghost call. It fails at once.
    if (message.type === 'offer') this.sessions.get(sessionId)?.({ type: 'bye', sessionId, reason: 'failed', message: 'no connection to the doorbell right now' })
  }

  async iceServers (deviceId: string): Promise<IceServerInit[]> {
    return await (this.active()?.iceServers?.(deviceId) ?? Promise.resolve([]))
  }

  async close (): Promise<void> {
    this.detach()
    await this.hub.close()
  }
}
