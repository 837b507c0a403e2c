import { join } from 'node:path'
import { memoryLogger, type DeviceCloudConfig } from '@doorbell/core'
import { SimulatedButton, SimulatedLock, startDoorbell, type Doorbell } from '@doorbell/device'
import type { Hub } from '@doorbell/hub'
import { eventually } from '../harness'
import { deviceInvite } from '../trust'

/**
 * A doorbell in its own folder, paired with `hub` and provisioned on the AWS stand-ins, with no
 * direct path (away from home the cloud path is the only one left); resolves once it is on the
 * hub, IoT Core and its KVS channel. Its simulated button rings it.
 */
export async function startAwayDoorbell (o: { hub: Hub, dir: string, cloud: DeviceCloudConfig, lines: string[], ringTimeoutSeconds: number, cleanup: Array<() => Promise<void> | void> }): Promise<{ device: Doorbell, button: SimulatedButton }> {
  const button = new SimulatedButton()
  const device = await startDoorbell({
    hubUrl: o.hub.mqttUrl,
    pairing: { url: await deviceInvite(o.hub, 'front-door') },
    dataDir: join(o.dir, 'device'),
    mesh: { enabled: false },
    cloud: o.cloud,
    ringTimeoutSeconds: o.ringTimeoutSeconds
  }, { log: memoryLogger(o.lines, 'device'), drivers: { button, lock: new SimulatedLock(() => {}) } })
  o.cleanup.push(() => device.stop())
  await device.hubConnected(AbortSignal.timeout(10_000))
  await eventually('the doorbell on IoT Core and its KVS channel', () => device.cloud?.connected.iot === true && device.cloud.connected.kvs, 30_000)
  return { device, button }
}
