import { onBeforeUnmount, ref, shallowRef } from 'vue'
import { consoleLogger, describeError } from '@doorbell/core'
import { HubApi } from '../lib/api'
import { fetchHubInfo } from '../composables/hubInfo'
import { codeFromUrl, urlWithoutCode } from '../composables/usePairing'
import { deviceIdFromUrl, forgetCameraPairing, loadCameraPairing, pairCameraNode, saveCameraPairing, type CameraNodePairing } from './pairing'
import { hubSocketUrl, startCameraNode, type CameraNode, type CameraNodeStatus } from './node'
import { NODE_MICROPHONE_CONSTRAINTS, loadMicrophoneSetting, microphoneErrorText, saveMicrophoneSetting } from './microphone'

/**
 * The camera node page's state: pairing (once), the camera (getUserMedia, video only), and the
 * node itself (hub link + answering side). The page only shows it; `cameraErrorText` is pure.
 */

export type NodePhase = 'unpaired' | 'starting' | 'camera-error' | 'live'

/** Why the camera could not be had, and what to do, from getUserMedia's DOMException. */
export function cameraErrorText (err: unknown, secure = true): string {
  const name = (err as { name?: string } | null)?.name ?? ''
  if (!secure) return 'This page was opened over plain http, where browsers give pages no camera. Open the hub\'s https address (install the home\'s certificate first), or use the hub\'s own machine (localhost).'
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'The browser was not allowed to use the camera. Allow camera access for this site (the camera icon in the address bar), then press "Try again".'
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found on this device. Connect one, then press "Try again".'
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera could not be started: another application may be using it. Close it, then press "Try again".'
    default: {
      const message = (err as { message?: string } | null)?.message
      return `The camera could not be started${message ? `: ${message}` : ''}. Press "Try again".`
    }
  }
}

export interface CameraNodeEnv {
  storage: Storage
  location: Location
  history: Pick<History, 'replaceState'>
  mediaDevices: MediaDevices | undefined
  isSecureContext: boolean
}

const browser = (): CameraNodeEnv => ({
  storage: localStorage,
  location,
  history,
  mediaDevices: navigator.mediaDevices,
  isSecureContext: window.isSecureContext
})

export function useCameraNode (env: CameraNodeEnv = browser()) {
  const pairing = shallowRef<CameraNodePairing | null>(loadCameraPairing(env.storage))
  const phase = ref<NodePhase>(pairing.value ? 'starting' : 'unpaired')
  const stream = shallowRef<MediaStream | null>(null)
  const status = ref<CameraNodeStatus>({ hub: 'connecting', watchers: 0 })
  const error = ref<string | null>(null)
  /** Send sound (the setting, off by default), the microphone's stream when it is on, and why there is none. */
  const microphone = ref(loadMicrophoneSetting(env.storage))
  const sound = shallowRef<MediaStream | null>(null)
  const soundError = ref<string | null>(null)
  // From an invitation link (`/camera#code=…`): taken, then removed from the address bar and history.
  const code = codeFromUrl(env.location) ?? ''
  const deviceId = deviceIdFromUrl(env.location) ?? ''
  const clean = urlWithoutCode(env.location)
  if (clean !== null) env.history.replaceState(null, '', clean)

  let node: CameraNode | null = null
  let stopped = false

  const stopCamera = (): void => {
    for (const t of stream.value?.getTracks() ?? []) { t.onended = null; t.stop() }
    stream.value = null
  }
  const stopMicrophone = (): void => {
    for (const t of sound.value?.getTracks() ?? []) t.stop()
    sound.value = null
  }
  /** The microphone, when sound is on and the camera runs: refused or missing, the picture goes on and the page says why. */
  const startMicrophone = async (): Promise<void> => {
    if (!microphone.value || sound.value || stopped) return
    soundError.value = null
    try {
      if (!env.mediaDevices?.getUserMedia) throw Object.assign(new Error('no media devices'), { name: 'NotFoundError' })
      const got = await env.mediaDevices.getUserMedia(NODE_MICROPHONE_CONSTRAINTS)
      // Turned off (or the page left) while the browser was asking: the microphone goes off again.
      if (!microphone.value || stopped || sound.value) { for (const t of got.getTracks()) t.stop(); return }
      if (got.getAudioTracks().length === 0) throw Object.assign(new Error('no audio track'), { name: 'NotFoundError' })
      sound.value = got
    } catch (err) {
      soundError.value = microphoneErrorText(err)
    }
  }
  const stopNode = async (): Promise<void> => {
    const n = node
    node = null
    await n?.stop()
  }

  /** The camera first (nothing is published without a picture), then the hub link. */
  const start = async (): Promise<void> => {
    const paired = pairing.value
    if (!paired || stopped) return
    phase.value = 'starting'
    error.value = null
    if (!stream.value) {
      if (!env.mediaDevices?.getUserMedia) { error.value = cameraErrorText(null, env.isSecureContext && env.mediaDevices !== undefined); phase.value = 'camera-error'; return }
      try {
        const got = await env.mediaDevices.getUserMedia({ video: true, audio: false })
        // "Stop being a camera" pressed while the browser was asking: the camera goes off again at once.
        if (stopped || pairing.value !== paired) { for (const t of got.getTracks()) t.stop(); return }
        stream.value = got
      } catch (err) {
        error.value = cameraErrorText(err)
        phase.value = 'camera-error'
        return
      }
      const track = stream.value.getVideoTracks()[0]
      if (!track) { stopCamera(); error.value = cameraErrorText({ name: 'NotFoundError' }); phase.value = 'camera-error'; return }
      track.onended = () => {
        // Unplugged, or taken away by the browser: the watchers' calls end, the page says why.
        node?.endCalls()
        stopCamera()
        error.value = 'The camera stopped (unplugged, or turned off in the browser). Press "Try again".'
        phase.value = 'camera-error'
      }
    }
    if (stopped) { stopCamera(); return }
    await startMicrophone()
    if (!node) {
      const info = await fetchHubInfo().catch(() => null)
      if (stopped || pairing.value !== paired) return
      const api = new HubApi({ token: paired.token })
      let started: CameraNode
      try {
        started = await startCameraNode({
          pairing: paired,
          url: hubSocketUrl(env.location, info?.mqttPath),
          track: () => stream.value?.getVideoTracks()[0] ?? null,
          microphone: () => microphone.value ? sound.value?.getAudioTracks()[0] ?? null : null,
          ice: async () => await api.ice(),
          log: consoleLogger(`camera ${paired.deviceId}`)
        })
      } catch (err) {
        // Its modules have stopped the ones before them: say why, and offer to try again.
        stopCamera()
        error.value = `The camera node could not start: ${describeError(err)}`
        phase.value = 'camera-error'
        return
      }
      // Stopped, or paired again, while the node was starting: it does not go live.
      if (stopped || pairing.value !== paired || node) { await started.stop(); return }
      node = started
      status.value = node.status()
      node.onStatus((s) => { status.value = s })
    }
    phase.value = 'live'
  }

  /** Redeems the owner's camera invite, keeps the pairing, and goes live. Throws what the form shows. */
  const pair = async (o: { code: string, name: string, deviceId: string }): Promise<void> => {
    const paired = await pairCameraNode({ api: new HubApi(), ...o })
    saveCameraPairing(env.storage, paired)
    pairing.value = paired
    await start()
  }

  /**
   * Sound on or off, kept in this browser. The calls in progress end, so that every watcher calls
   * again (the feed comes back by itself within seconds) with sound, or without any.
   */
  const setMicrophone = async (on: boolean): Promise<void> => {
    microphone.value = on
    saveMicrophoneSetting(env.storage, on)
    soundError.value = null
    if (on) await startMicrophone()
    else stopMicrophone()
    node?.endCalls()
  }

  /** "Stop being a camera": calls end, the hub link closes (offline), and the pairing is forgotten. */
  const forget = async (): Promise<void> => {
    await stopNode()
    stopCamera()
    stopMicrophone()
    forgetCameraPairing(env.storage)
    pairing.value = null
    error.value = null
    status.value = { hub: 'connecting', watchers: 0 }
    phase.value = 'unpaired'
  }

  onBeforeUnmount(() => {
    stopped = true
    stopCamera()
    stopMicrophone()
    void stopNode()
  })

  if (pairing.value) void start()

  return { pairing, phase, stream, status, error, microphone, sound, soundError, setMicrophone, code, deviceId, start, pair, forget }
}
