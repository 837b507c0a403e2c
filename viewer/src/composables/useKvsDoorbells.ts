import { onBeforeUnmount, ref, shallowReactive, shallowRef } from 'vue'
import { createActor, fromCallback, type Actor } from 'xstate'
import { viewerCallMachine, type CallActorInput } from '@doorbell/machines'
import { describeStockReply, newId, type AwsCredentials, type RingEvent, type StockDoorbell } from '@doorbell/core'
import { loadCloudSettings, saveCloudSettings } from '../lib/paths/cloud/settings'
import { loadStockDoorbells, saveStockDoorbells, type StockSaveResult } from '../lib/paths/cloud/stockSettings'
import type { StockDoorbells } from '../lib/paths/cloud/stockDoorbells'
import type { StockCall } from '../lib/paths/cloud/stockCall'
import { useRingAlert } from './useRingAlert'

/**
 * The stock KVS doorbells of this screen (the seed's doorbell), with no hub: each one's call
 * lifecycle is the viewer's own `viewerCall` machine (ring → incoming → active → ended), its
 * `call` actor a `StockCall` (plain SDP, trickle ICE, `commands` channel), its rings from AWS IoT
 * Core with the resident's AWS keys (the Away-from-home ones). The cloud code is loaded only when a
 * KVS doorbell is added.
 */

export type KvsDoorbellActor = Actor<typeof viewerCallMachine>

export interface KvsCallState {
  stream?: MediaStream
  /** Set when the doorbell's answer takes our audio: talk works. */
  sender?: RTCRtpSender
  /** The latest thing said about the door: what was sent, or what the doorbell said back. */
  door?: string
}

export function useKvsDoorbells (viewerId: string, o: { log?: (level: 'info' | 'warn' | 'error', message: string) => void } = {}) {
  const loaded = loadStockDoorbells()
  const doorbells = ref<StockDoorbell[]>(loaded.doorbells)
  const problem = ref<string | null>(loaded.problem)
  const credentials = shallowRef<AwsCredentials | undefined>(loadCloudSettings().settings.credentials)
  const actors = shallowReactive(new Map<string, KvsDoorbellActor>())
  const calls = shallowReactive(new Map<string, KvsCallState>())
  const connected = ref(false)
  const alerts = useRingAlert()
  const live = new Map<string, StockCall>()
  let client: StockDoorbells | null = null
  let generation = 0
  const log = o.log ?? ((level, message) => { console[level](`[kvs doorbells] ${message}`) })

  const setCall = (id: string, patch: Partial<KvsCallState>): void => { calls.set(id, { ...calls.get(id), ...patch }) }

  const actorFor = (d: StockDoorbell): KvsDoorbellActor => {
    const machine = viewerCallMachine.provide({
      actors: {
        call: fromCallback<{ type: string }, CallActorInput>(({ sendBack }) => {
          const call = client?.call(d.id) ?? null
          if (call === null) { sendBack({ type: 'FAILED', message: 'add your AWS keys under Away from home to call this doorbell' }); return () => {} }
          live.set(d.id, call)
          calls.set(d.id, {})
          call.on('connected', () => { sendBack({ type: 'CONNECTED' }) })
          call.on('failed', (message) => { sendBack({ type: 'FAILED', message }) })
          call.on('stream', (stream) => { setCall(d.id, { stream }) })
          call.on('talk', (sender) => { setCall(d.id, { sender }) })
          call.on('reply', (text) => { setCall(d.id, { door: describeStockReply(text) }) })
          call.start()
          return () => {
            call.close()
            if (live.get(d.id) === call) live.delete(d.id)
            calls.delete(d.id)
          }
        })
      },
      actions: {
        alert: ({ context }) => { alerts.alert(d.id, context.ring) },
        silence: () => { alerts.silence(d.id) }
      }
    })
    const actor = createActor(machine, { input: { deviceId: d.id, connectTimeoutMs: 30_000 }, id: `kvsDoorbell:${d.id}` })
    actor.start()
    return actor
  }

  const stop = async (): Promise<void> => {
    generation++
    for (const a of actors.values()) a.stop()
    actors.clear()
    calls.clear()
    live.clear()
    connected.value = false
    const c = client
    client = null
    await c?.close()
  }

  /** (Re)starts listening with the doorbells and keys as stored now. */
  const start = async (): Promise<void> => {
    await stop()
    const mine = ++generation
    credentials.value = loadCloudSettings().settings.credentials
    for (const d of doorbells.value) actors.set(d.id, actorFor(d))
    if (doorbells.value.length === 0 || credentials.value === undefined) return
    const { StockDoorbells } = await import('../lib/paths/cloud/stockDoorbells')
    if (mine !== generation) return
    client = new StockDoorbells({ doorbells: doorbells.value, credentials: credentials.value, viewerId, log })
    client.on('link', (up) => { connected.value = up })
    client.on('ring', (r) => {
      const d = doorbells.value.find((x) => x.id === r.doorbellId)
      if (d === undefined) return
      // The seed's timestamp names the ring: IoT's QoS 1 redelivery of the same ring alerts once.
      const ring: RingEvent = { type: 'ring', deviceId: d.id, deviceName: d.name, ringId: `r${Math.round(r.at / 1000)}`, at: r.at, count: 1 }
      actors.get(d.id)?.send({ type: 'RING', ring })
    })
  }

  const save = async (next: StockDoorbell[]): Promise<StockSaveResult> => {
    const r = saveStockDoorbells(next)
    if (!r.ok) return r
    doorbells.value = next
    problem.value = null
    await start()
    return r
  }

  return {
    doorbells,
    problem,
    credentials,
    actors,
    calls,
    connected,
    start,
    stop,
    add: async (d: StockDoorbell) => await save([...doorbells.value, d]),
    remove: async (id: string) => await save(doorbells.value.filter((d) => d.id !== id)),
    /** Stores the AWS keys with the Away-from-home settings (keeping their config), then listens with them. */
    saveKeys: async (keys: AwsCredentials): Promise<StockSaveResult> => {
      const current = loadCloudSettings().settings
      const r = saveCloudSettings({ ...current, credentials: keys })
      if (!r.ok) return r
      await start()
      return r
    },
    answer: (id: string) => { actors.get(id)?.send({ type: 'ANSWER', sessionId: newId('s') }) },
    watch: (id: string) => { actors.get(id)?.send({ type: 'WATCH', sessionId: newId('s') }) },
    hangUp: (id: string) => { actors.get(id)?.send({ type: 'HANGUP' }) },
    dismiss: (id: string) => { actors.get(id)?.send({ type: 'DISMISS' }) },
    /** `{"command":"OPEN_DOOR"}` on the call's `commands` channel; what the line then says. */
    openDoor: (id: string): void => {
      const sent = live.get(id)?.openDoor() ?? false
      setCall(id, { door: sent ? 'OPEN_DOOR sent. This doorbell may not confirm: watch the door.' : 'Not sent: the call\'s commands channel is not open.' })
    },
    dispose: () => { void stop() }
  }
}

export type KvsDoorbellsHandle = ReturnType<typeof useKvsDoorbells>

/** The composable, stopped when its component unmounts. */
export function useKvsDoorbellsHere (viewerId: string): KvsDoorbellsHandle {
  const h = useKvsDoorbells(viewerId)
  void h.start()
  onBeforeUnmount(() => { h.dispose() })
  return h
}
