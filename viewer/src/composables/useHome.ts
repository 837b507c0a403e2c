import { onBeforeUnmount, ref, shallowReactive, shallowRef } from 'vue'
import type { InspectionEvent } from 'xstate'
import { pathOf, type LinkPath } from '@doorbell/machines'
import { Home, type DoorbellActor, type LinkActor } from '../lib'
import { loadIdentity } from './identity'
import { useRingAlert } from './useRingAlert'
import { loadHubInfo, hubSocketUrl, type HubInfo } from './hubInfo'

/**
 * The page's one Home: the hub connection and a call machine per doorbell. Components read
 * machine state with @xstate/vue's useSelector on the actors listed here.
 */
export function useHome () {
  const identity = loadIdentity(localStorage, location.search)
  const ringAlert = useRingAlert()
  const doorbells = shallowReactive(new Map<string, DoorbellActor>())
  const streams = shallowReactive(new Map<string, MediaStream>())
  const online = shallowReactive(new Map<string, boolean>())
  const link = shallowRef<LinkActor | null>(null)
  /** The path in use now (hub, direct), or null while none is up. */
  const path = ref<LinkPath | null>(null)
  const error = ref<string | null>(null)
  const history = shallowRef<Home['history']>([])
  const hubInfo = shallowRef<HubInfo | null>(null)
  let home: Home | null = null

  const start = async (): Promise<void> => {
    let info: HubInfo
    try {
      info = await loadHubInfo()
    } catch (err) {
      error.value = `Cannot reach the hub (${(err as Error).message}). Check that the hub is running and this page was opened from it.`
      setTimeout(() => { void start() }, 3000)
      return
    }
    error.value = null
    hubInfo.value = info
    // ?stately opens Stately's hosted inspector (needs the internet); loaded only then.
    const stately = new URLSearchParams(location.search).has('stately')
      ? (await import('@statelyai/inspect')).createBrowserInspector()
      : null
    home = new Home({
      ...(stately ? { alsoInspect: (e: InspectionEvent) => { stately.inspect.next?.(e) } } : {}),
      url: hubSocketUrl(info),
      homeId: info.homeId,
      ...identity,
      inspect: info.inspect,
      // The doorbells' direct addresses, for when the hub is down.
      storage: localStorage,
      createPeerConnection: () => {
        // No ICE servers: on the LAN host candidates are all a call needs, and nothing waits on the internet.
        return new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' })
      },
      onTrack: (call, event: RTCTrackEvent) => {
        streams.set(call.deviceId, event.streams[0] ?? new MediaStream([event.track]))
      },
      onClosed: (call) => { streams.delete(call.deviceId) },
      alert: (deviceId, ring) => { ringAlert.alert(deviceId, ring) },
      silence: (deviceId) => { ringAlert.silence(deviceId) },
      onDoorbell: (deviceId, actor) => { doorbells.set(deviceId, actor) },
      log: (level, message) => { console[level](`[hub] ${message}`) }
    })
    link.value = home.link
    home.link.subscribe((s) => { path.value = pathOf(s.value) })
    home.paths.on('presence', (p) => { online.set(p.deviceId, p.online) })
    home.onHistory(() => { history.value = [...home!.history] })
  }
  void start()
  onBeforeUnmount(() => { void home?.close() })

  return {
    identity,
    doorbells,
    streams,
    link,
    path,
    error,
    history,
    hubInfo,
    enableAlerts: () => ringAlert.enable(),
    answer: (id: string) => home?.answer(id),
    watch: (id: string) => home?.watch(id),
    unlock: (id: string) => home?.unlock(id),
    hangUp: (id: string) => home?.hangUp(id),
    dismiss: (id: string) => home?.dismiss(id),
    online
  }
}

export type HomeApi = ReturnType<typeof useHome>
