import { onBeforeUnmount, ref, shallowReactive, shallowRef } from 'vue'
import { Grant, mayTalk, peek } from '@doorbell/core'
import { pathOf, type LinkPath } from '@doorbell/machines'
import { Home, type HubApi } from '../lib'
import { loadHubInfo, type HubInfo } from '../composables/hubInfo'
import { hubSocketUrl } from '../lib/paths/lan/socketUrl'
import { removedNotice, type PairingApi } from '../composables/usePairing'
import type { StoredPairing } from '../composables/keystore'
import { IceKeeper, rtcConfiguration } from './ice'
import { StatsLoop } from './statsLoop'
import { TileFeed } from './tileFeed'
import { consoleTalk } from './consoleTalk'
import { gridShape, zoneGroups, type ZoneGroup } from './zones'

/** How often the zones are read again (a camera paired or removed meanwhile). */
const ZONES_EVERY_MS = 30_000
const RETRY_MS = 3000

/**
 * The operator console of one paired screen: the zones it may watch (GET /api/zones), one tile
 * feed per camera, all fed by one Home whose hub connection subscribes to those cameras one by
 * one (an operator may not use the home-wide wildcard), every call made with the home's ICE
 * settings (GET /api/ice), and one stats loop for the page.
 */
export function useConsole (p: StoredPairing, api: HubApi, pairing: Pick<PairingApi, 'forget'> & Partial<Pick<PairingApi, 'keepCredential'>>) {
  const groups = shallowRef<ZoneGroup[]>([])
  const feeds = shallowReactive(new Map<string, TileFeed>())
  const shape = shallowRef(gridShape([]))
  const info = shallowRef<HubInfo | null>(null)
  const path = ref<LinkPath | null>(null)
  /** A path has been up at least once (before that the page is connecting, not cut off). */
  const everUp = ref(false)
  const problem = ref<string | null>(null)
  const iceProblem = ref<string | null>(null)
  const ready = ref(false)
  const loop = new StatsLoop()
  const ice = new IceKeeper({
    fetch: async () => await api.ice(),
    onError: (err) => { iceProblem.value = `Cannot get the home's ICE settings (${err.message}); calls start again when they can be read.` }
  })
  /** This screen's grant as it stands (the owner may change its talk zones: the Home fetches the new one). */
  const credential = ref(p.credential)
  /** May this screen talk to a camera of `zone`? What the tile shows; the device checks it anyway. */
  const mayTalkIn = (zone: string): boolean => {
    const g = peek(Grant, credential.value)
    return g.ok && mayTalk(g.value, zone)
  }
  const talk = consoleTalk((id) => feeds.get(id), async (c) => await navigator.mediaDevices.getUserMedia(c))
  let home: Home | null = null
  let closed = false
  let zonesTimer: ReturnType<typeof setTimeout> | null = null

  const addFeed = (h: Home, deviceId: string, name: string, zone: string): void => {
    const existing = feeds.get(deviceId)
    if (existing) { existing.name.value = name; return }
    const actor = h.doorbell(deviceId)
    const feed: TileFeed = new TileFeed({
      deviceId,
      name,
      zone,
      inspect: h.inspect,
      actor,
      start: async () => {
        await ice.fresh()
        iceProblem.value = null
        if (closed || home !== h) return
        const at = performance.now()
        h.watch(deviceId)
        feed.begin(actor.getSnapshot().context.sessionId, at)
      },
      hangUp: () => { h.hangUp(deviceId) },
      dismiss: () => { h.dismiss(deviceId) }
    })
    feeds.set(deviceId, feed)
    loop.add(feed)
    feed.keeper.update({ linkUp: path.value !== null, refused: h.hub.refused.has(deviceId) })
  }

  const dropFeed = (deviceId: string): void => {
    const feed = feeds.get(deviceId)
    if (!feed) return
    loop.delete(feed)
    talk.dropped(deviceId)
    feed.stop()
    home?.hangUp(deviceId)
    feeds.delete(deviceId)
  }

  /** The zones as the hub gives them now: tiles for new cameras, none for removed ones. */
  const applyZones = (h: Home, next: ZoneGroup[]): void => {
    groups.value = next
    shape.value = gridShape(next)
    const wanted = new Map(next.flatMap((g) => g.devices.map((d) => [d.deviceId, { ...d, zone: g.zone }] as const)))
    for (const id of [...feeds.keys()]) if (!wanted.has(id)) dropFeed(id)
    h.hub.watchDevices([...wanted.keys()])
    for (const d of wanted.values()) addFeed(h, d.deviceId, d.name, d.zone)
  }

  const refreshZones = async (): Promise<void> => {
    zonesTimer = null
    if (closed || !home) return
    const h = home
    try {
      applyZones(h, zoneGroups(await api.zones()))
    } catch (err) {
      console.warn(`[console] could not read the zones: ${(err as Error).message}`)
    }
    if (!closed) zonesTimer = setTimeout(() => { void refreshZones() }, ZONES_EVERY_MS)
  }

  const start = async (): Promise<void> => {
    if (closed) return
    let hub: HubInfo
    let zones: ZoneGroup[]
    try {
      hub = await loadHubInfo()
      zones = zoneGroups(await api.zones())
    } catch (err) {
      problem.value = `Cannot start the console (${(err as Error).message}). Trying again…`
      if (!closed) setTimeout(() => { void start() }, RETRY_MS)
      return
    }
    if (closed) return
    info.value = hub
    problem.value = null
    // The first settings now, so the first calls need not wait for them (a failure is retried per call).
    ice.fresh().catch(() => {})
    const h = new Home({
      url: hubSocketUrl(location, hub.mqttPath),
      homeId: hub.homeId,
      viewerId: p.viewerId,
      viewerName: p.name,
      trust: { memberId: p.memberId, token: p.token, credential: p.credential, key: p.key.privateKey, role: p.role, name: p.name },
      devices: zones.flatMap((g) => g.devices.map((d) => d.deviceId)),
      onUnauthorized: () => { void pairing.forget(removedNotice(p.credential)) },
      // The owner changed this screen's talk zones: its new grant, fetched on each connect and when the hub names it.
      fetchCredential: async () => await api.credential(),
      onCredential: (next) => {
        credential.value = next
        void pairing.keepCredential?.(p, next)
      },
      inspect: hub.inspect,
      // The home's STUN/TURN servers and policy ('relay': relay candidates only), plus what the path gives.
      createPeerConnection: (fromPath) => {
        const settings = ice.current
        if (!settings) throw new Error('no ICE settings yet')
        return new RTCPeerConnection(rtcConfiguration(settings, fromPath))
      },
      onTrack: (call, event: RTCTrackEvent, pc) => { feeds.get(call.deviceId)?.takeTrack(call, event, pc as unknown as RTCPeerConnection) },
      onClosed: (call) => {
        const feed = feeds.get(call.deviceId)
        // The call that ended was the one this console talked on: let go (a new call starts silent).
        if (feed?.talksOn(call.sessionId) === true) talk.dropped(call.deviceId)
        feed?.closed(call)
      },
      onAudioSender: (call, sender) => { feeds.get(call.deviceId)?.takeSender(call, sender) },
      onTalkLink: (call, link) => { feeds.get(call.deviceId)?.takeLink(call, link) },
      log: (level, message) => { console[level](`[console] ${message}`) }
    })
    home = h
    h.hub.onRefused((deviceId) => { feeds.get(deviceId)?.keeper.update({ refused: true }) })
    h.hub.onGranted((deviceId) => { feeds.get(deviceId)?.keeper.update({ refused: false }) })
    h.paths.on('presence', (pr) => { feeds.get(pr.deviceId)?.keeper.update({ online: pr.online }) })
    h.link.subscribe((s) => {
      if (home !== h) return
      path.value = pathOf(s.value)
      if (path.value !== null) everUp.value = true
      for (const feed of feeds.values()) feed.keeper.update({ linkUp: path.value !== null })
    })
    applyZones(h, zones)
    loop.start()
    ready.value = true
    zonesTimer = setTimeout(() => { void refreshZones() }, ZONES_EVERY_MS)
  }

  void start()

  onBeforeUnmount(() => {
    closed = true
    if (zonesTimer) clearTimeout(zonesTimer)
    loop.stop()
    ice.stop()
    talk.release()
    for (const feed of feeds.values()) feed.stop()
    feeds.clear()
    void home?.close()
    home = null
  })

  return { groups, feeds, shape, info, path, everUp, problem, iceProblem, ready, talk, mayTalkIn }
}

export type ConsoleApi = ReturnType<typeof useConsole>
