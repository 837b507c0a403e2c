import { computed, onBeforeUnmount, ref, shallowReactive, shallowRef, watch } from 'vue'
import type { InspectionEvent } from 'xstate'
import { pathOf, type LinkPath } from '@doorbell/machines'
import { Home, callCommands, type DoorbellKeptRings, type AudioSenderLike, type DoorbellActor, type KeptTraceFetcher, type LinkActor, type ReplyLink, type TalkLink } from '../lib'
import { loadIdentity } from './identity'
import { ringPicture, useRingAlert, type RingNotificationAction, type RingPicture } from './useRingAlert'
import { loadHubInfo, type HubInfo } from './hubInfo'
import { hubSocketUrl } from '../lib/paths/lan/socketUrl'
import { screenSession, type LockManagerLike } from '../lib/paths/lan/screenSession'
import { grantOf, removedNotice, usePairing } from './usePairing'
import type { StoredPairing } from './keystore'
import { ViewerCloudConfig } from '@doorbell/core'
import { HUB_CLOUD_KEY, cloudReady, loadCloudSettings } from '../lib/paths/cloud/settings'
import { doorbellReplies } from './doorbellReplies'

/** A page opened from a ring's notification: `?ring=<device>&ringId=<ring>&action=answer|open`. */
function fromUrl (): RingNotificationAction | null {
  const q = new URLSearchParams(location.search)
  const deviceId = q.get('ring')
  const ringId = q.get('ringId')
  const action = q.get('action')
  if (!deviceId || !ringId || (action !== 'answer' && action !== 'open')) return null
  return { type: 'ring-notification', action, deviceId, ringId }
}

/** The home's cloud config as the hub last gave it, kept so that a page opened away from home still has it. */function rememberedHubCloud (): ViewerCloudConfig | null {
  try {
    const r = ViewerCloudConfig.safeParse(JSON.parse(localStorage.getItem(HUB_CLOUD_KEY) ?? 'null'))
    return r.success ? r.data : null
  } catch { return null }
}

/**
 * The page's one Home: this screen's pairing, and once paired the hub connection and a call
 * machine per doorbell. Components read machine state with @xstate/vue's useSelector on the
 * actors listed here.
 */
export function useHome () {
  // The id and name this browser offers when it pairs; once paired, the pairing's own (the grant's `sub`, the member's name).
  const identity = loadIdentity(localStorage, location.search)
  const pairing = usePairing({ viewerId: identity.viewerId })
  const ringAlert = useRingAlert()
  const doorbells = shallowReactive(new Map<string, DoorbellActor>())
  const streams = shallowReactive(new Map<string, MediaStream>())
  /** Each call's audio sender: the call card's talk controls swap the microphone in. */
  const audioSenders = shallowReactive(new Map<string, AudioSenderLike>())
  /** Each call's talk lease: signed talk commands, and who is talking. */
  const talkLinks = shallowReactive(new Map<string, TalkLink & ReplyLink>())
  /** The owner's quick replies (GET /api/replies), read on each ring: the banner and the call view offer them. */
  const replies = ref<string[]>([])
  const loadReplies = (): void => {
    pairing.api.value?.replies().then((r) => { replies.value = r.replies }, () => {})
  }
  /** With the hub down, each doorbell's own list, read from it on each ring. */
  const fromDoorbells = doorbellReplies((m) => { console.info(`[replies] ${m}`) })
  const online = shallowReactive(new Map<string, boolean>())
  const link = shallowRef<LinkActor | null>(null)
  /** The path in use now (hub, direct), or null while none is up. */
  const path = ref<LinkPath | null>(null)
  const error = ref<string | null>(null)
  const history = shallowRef<Home['history']>([])
  /** Each doorbell's picture for its current ring (the newest of its snapshots), for the ring banner. */
  const snapshots = shallowReactive(new Map<string, RingPicture>())
  /** Grows when something the history shows may have changed (a ring, a picture, a call's end). */
  const historyChanges = ref(0)
  const hubInfo = shallowRef<HubInfo | null>(null)
  /** The home's cloud path (GET /api/cloud), null when it has none; the AWS credentials are this browser's own (Settings). */
  const hubCloud = shallowRef<ViewerCloudConfig | null>(rememberedHubCloud())
  let home: Home | null = null
  /** The pairing the running Home was made with. */
  let homeFor: StoredPairing | null = null
  let closed = false

  /** Who this screen is, for the page: the member once paired. */
  const me = computed(() => {
    const p = pairing.current.value
    return p
      ? { viewerId: p.viewerId, viewerName: p.name, role: p.role, until: grantOf(p.credential)?.exp ?? null }
      : { ...identity, role: null, until: null }
  })

  const loadInfo = async (): Promise<void> => {
    try {
      hubInfo.value = await loadHubInfo()
      error.value = null
      await startHome()
    } catch (err) {
      error.value = `Cannot reach the hub (${(err as Error).message}). Check that the hub is running and this page was opened from it.`
      if (!closed) setTimeout(() => { void loadInfo() }, 3000)
    }
  }

  const stopHome = (): void => {
    void home?.close()
    home = null
    homeFor = null
    link.value = null
    path.value = null
    doorbells.clear()
    streams.clear()
    audioSenders.clear()
    talkLinks.clear()
    online.clear()
    history.value = []
    snapshots.clear()
  }

  /** A Home once both the hub's info and a pairing are known; the pairing's credentials on every path. */
  const startHome = async (): Promise<void> => {
    const p = pairing.current.value
    const info = hubInfo.value
    if (!p || !info || closed || homeFor === p) return
    if (home) stopHome()
    homeFor = p
    // ?stately opens Stately's hosted inspector (needs the internet); loaded only then.
    const stately = new URLSearchParams(location.search).has('stately')
      ? (await import('@statelyai/inspect')).createBrowserInspector()
      : null
    // This screen's persistent session on the hub (one tab per browser install holds it), so
    // rings pressed while it or the hub was away still reach it.
    const session = await screenSession(localStorage, navigator.locks as LockManagerLike | undefined, p.memberId)
    if (homeFor !== p || closed) return // forgotten or replaced while the inspector loaded
    const h = new Home({
      ...(session !== undefined ? { session } : {}),
      ...(stately ? { alsoInspect: (e: InspectionEvent) => { stately.inspect.next?.(e) } } : {}),
      url: hubSocketUrl(location, info.mqttPath),
      homeId: info.homeId,
      viewerId: p.viewerId,
      viewerName: p.name,
      trust: { memberId: p.memberId, token: p.token, credential: p.credential, key: p.key.privateKey, role: p.role, name: p.name },
      // The owner changed this screen's rights: its new grant, fetched on each connect and when the hub names it.
      fetchCredential: async () => {
        const api = pairing.api.value
        if (!api) throw new Error('not paired')
        return await api.credential()
      },
      onCredential: (credential) => { void pairing.keepCredential(p, credential) },
      // The hub refused this screen's credentials: it was removed (or its access ended).
      onUnauthorized: () => { void pairing.forget(removedNotice(p.credential)) },
      inspect: info.inspect,
      // The doorbells' direct addresses, for when the hub is down.
      storage: localStorage,
      // Away from home: read when the link machine tries the cloud, so settings saved since count.
      cloud: () => cloudReady(loadCloudSettings(localStorage).settings, hubCloud.value),
      // No ICE servers on the LAN: host candidates are all a call needs, and nothing waits on the
      // internet. Away from home the cloud path gives its TURN servers.
      createPeerConnection: (iceServers) => new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' }),
      // The visitor live and muted in the ring banner (the doorbell may refuse: over its cap, or turned off).
      preview: true,
      // A connection gathered before the ring: the preview's (or Answer's) offer goes at once.
      // `?spare=off` makes calls gather at the ring, as before (the preview bench compares both).
      spare: new URLSearchParams(location.search).get('spare') !== 'off',
      onTrack: (call, event: RTCTrackEvent) => {
        // The visitor's video and sound in one stream of the page's (the <video> shows it, the <audio>
        // plays it). The doorbell sends them in streams of their own, so the browser does not hold
        // the voice back to the video: they are put together here.
        const stream = streams.get(call.deviceId) ?? new MediaStream()
        // One track of each kind: a track of this kind left from a call before this one goes.
        for (const old of stream.getTracks()) if (old.kind === event.track.kind && old !== event.track) stream.removeTrack(old)
        if (!stream.getTracks().includes(event.track)) stream.addTrack(event.track)
        streams.set(call.deviceId, stream)
      },
      onAudioSender: (call, sender) => { audioSenders.set(call.deviceId, sender) },
      onTalkLink: (call, link) => { talkLinks.set(call.deviceId, link) },
      onClosed: (call) => { streams.delete(call.deviceId); audioSenders.delete(call.deviceId); talkLinks.delete(call.deviceId) },
      alert: (deviceId, ring) => {
        ringAlert.alert(deviceId, ring)
        const shown = snapshots.get(deviceId)
        if (shown) ringAlert.picture(deviceId, shown)
      },
      silence: (deviceId) => { ringAlert.silence(deviceId) },
      // The history says who dismissed a ring nobody answered. The hub down, the doorbell keeps the
      // dismissal (told on the direct path, else away from home on the cloud path) and hands it to the hub.
      onDismissed: (deviceId, ringId) => {
        const direct = (why: unknown): void => {
          if (!home) { console.info(`[hub] the dismissal was not recorded: ${(why as Error).message}`); return }
          home.dismissWithoutHub(deviceId, ringId).catch((err: unknown) => { console.info(`[hub] the dismissal was not recorded: ${(why as Error).message}; on the doorbell: ${(err as Error).message}`) })
        }
        const api = pairing.api.value
        // This screen's own (per tab) id: "dismissed by everyone" counts screens, not members.
        if (api) api.dismissRing(deviceId, ringId, home ? { screen: home.hub.clientId } : {}).catch(direct)
        else direct(new Error('not signed in to the hub'))
      },
      onDoorbell: (deviceId, actor) => { doorbells.set(deviceId, actor) },
      log: (level, message) => { console[level](`[hub] ${message}`) }
    })
    home = h
    link.value = h.link
    h.link.subscribe((s) => { if (home === h) path.value = pathOf(s.value) })
    h.paths.on('presence', (pr) => { if (home === h) online.set(pr.deviceId, pr.online) })
    h.onHistory(() => { if (home === h) { history.value = [...h.history]; historyChanges.value++ } })
    loadReplies()
    h.paths.on('ring', (ring) => {
      if (home !== h) return
      loadReplies()
      fromDoorbells.ring(ring.deviceId, ring.ringId, h.paths.path, async (id) => await h.repliesWithoutHub(id))
      // A new ring's banner waits for its own picture, not the last ring's.
      if (snapshots.get(ring.deviceId)?.ringId !== ring.ringId) snapshots.delete(ring.deviceId)
      historyChanges.value++
    })
    h.paths.on('snapshot', (s) => {
      if (home !== h) return
      const shown = snapshots.get(s.deviceId)
      if (shown?.ringId === s.ringId && shown.seq >= s.seq) return
      // "No picture" never replaces a picture already shown for this ring.
      if (s.jpeg === null && shown?.ringId === s.ringId && shown.url !== null) return
      snapshots.set(s.deviceId, ringPicture(s))
      ringAlert.picture(s.deviceId, snapshots.get(s.deviceId)!)
      historyChanges.value++
    })
    void refreshCloud()
  }

  /** Asks the hub for the home's cloud config while it can be reached, and keeps it for when it cannot. */
  const refreshCloud = async (): Promise<void> => {
    const api = pairing.api.value
    if (!api) return
    try {
      const config = await api.cloud()
      hubCloud.value = config
      if (config) localStorage.setItem(HUB_CLOUD_KEY, JSON.stringify(config))
      else localStorage.removeItem(HUB_CLOUD_KEY)
      // The cloud path's code is fetched while the hub can serve it (it cannot once the page needs it).
      if (config) setTimeout(() => { import('../lib/paths/cloud/cloudClient').then(async (m) => { await m.preloadCloud() }).catch(() => {}) }, 1500)
    } catch (err) {
      console.warn(`[hub] could not read the home's cloud config: ${(err as Error).message}`)
    }
  }

  /**
   * A tap on a ring's notification (sw.js): Answer answers that doorbell's ring, Dismiss dismisses
   * it, a tap on the notification itself brings the page (and the ring's card) forward. A page the
   * notification opened carries the same in its URL, acted on once the doorbell's card exists.
   */
  const onNotification = (m: RingNotificationAction): void => {
    const actor = doorbells.get(m.deviceId)
    if (!actor) { pendingNotification = m; return }
    pendingNotification = null
    const snap = actor.getSnapshot()
    if (!snap.matches('incoming') || snap.context.ring?.ringId !== m.ringId) return
    if (m.action === 'answer') callCommands.answer(actor)
    if (m.action === 'dismiss') callCommands.dismiss(actor)
  }
  let pendingNotification: RingNotificationAction | null = fromUrl()
  const onWorkerMessage = (e: MessageEvent): void => {
    const m = e.data as Partial<RingNotificationAction> | null
    if (m?.type === 'ring-notification' && typeof m.deviceId === 'string' && typeof m.ringId === 'string' && (m.action === 'answer' || m.action === 'dismiss' || m.action === 'open')) {
      onNotification(m as RingNotificationAction)
    }
  }
  if (typeof navigator !== 'undefined' && 'serviceWorker' in navigator) navigator.serviceWorker.addEventListener('message', onWorkerMessage)
  watch(() => doorbells.size, () => {
    const p = pendingNotification
    if (p && doorbells.has(p.deviceId)) {
      // Its ring reaches the card a moment after the card exists.
      setTimeout(() => { onNotification(p) }, 500)
    }
  })

  // Paired: start; forgotten (removed by the owner): stop at once, the pairing screen takes over.
  watch(pairing.current, (p) => { if (p) void startHome(); else stopHome() })

  void (async () => {
    await pairing.load()
    await loadInfo()
  })()
  onBeforeUnmount(() => {
    closed = true
    stopHome()
    if (typeof navigator !== 'undefined' && 'serviceWorker' in navigator) navigator.serviceWorker.removeEventListener('message', onWorkerMessage)
  })

  return {
    identity,
    me,
    pairing,
    /** The hub's API with this screen's token (null unpaired). */
    api: pairing.api,
    doorbells,
    streams,
    audioSenders,
    talkLinks,
    replies,
    /** The replies a doorbell's banner offers: the hub's list, or with the hub down the doorbell's own. */
    repliesFor: (deviceId: string): readonly string[] => fromDoorbells.offer(deviceId, path.value, replies.value),
    /** Plays a quick reply without answering (the ring banner): a signed command over the hub. */
    replyOutsideCall: async (deviceId: string, reply: string): Promise<{ ok: true, durationMs: number } | { ok: false, message: string }> => {
      if (!home) return { ok: false, message: 'not connected to the home' }
      const r = await home.replyOutsideCall(deviceId, reply)
      return r.ok ? { ok: true, durationMs: r.durationMs ?? 0 } : { ok: false, message: r.error.message }
    },
    /** The owner's kept call traces on a doorbell (Home settings); null while not connected to the home. */
    keptTraces: (deviceId: string): KeptTraceFetcher | null => home?.keptTraces(deviceId) ?? null,
    /** The rings the doorbells keep, read directly while the hub is down (null: no direct connection now). */
    keptRings: async (): Promise<DoorbellKeptRings[] | null> => await (home?.keptRings() ?? Promise.resolve(null)),
    link,
    path,
    error,
    history,
    historyChanges,
    snapshots,
    hubInfo,
    hubCloud,
    enableAlerts: () => ringAlert.enable(),
    online
  }
}

export type HomeApi = ReturnType<typeof useHome>
