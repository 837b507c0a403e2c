/**
 * The names the cloud setup gives a doorbell's AWS resources. They are derived from the home and
 * device ids alone, so a second run (or a teardown) finds what the first one made without any
 * local state.
 */
import { Id } from '@doorbell/core'

export interface ResourceNames {
  home: string
  device: string
  /** IoT thing; also the MQTT client id the device must connect with. */
  thing: string
  /** KVS signaling channel (SINGLE_MASTER): the device is its master. */
  channel: string
  /** IoT policy attached to the thing's certificate. */
  iotPolicy: string
  /** IAM role the IoT credentials provider hands out for KVS. */
  role: string
  /** The inline policy of that role. */
  rolePolicy: string
  /** IoT role alias pointing at the role. */
  roleAlias: string
  /** Managed IAM policy residents attach to their IAM user (one per home). */
  viewerPolicy: string
}

/** IAM role names are at most 64 characters: `doorbell-` + home + `-` + device + `-kvs`. */
export const MAX_HOME_AND_DEVICE = 64 - 'doorbell-'.length - '-'.length - '-kvs'.length

export function resourceNames (home: string, device: string): ResourceNames {
  const base = `doorbell-${home}-${device}`
  return {
    home,
    device,
    thing: base,
    channel: base,
    iotPolicy: base,
    role: `${base}-kvs`,
    rolePolicy: 'kvs-master',
    roleAlias: `${base}-kvs`,
    viewerPolicy: `doorbell-${home}-viewers`
  }
}

/** The thing name a device of `home` has; used to tell whether a viewer-config entry belongs to the home. */
export const thingOf = (home: string, device: string): string => resourceNames(home, device).thing

/** Problems with a home or device id, as sentences; empty when both are usable. */
export function checkIds (home: string | undefined, device: string | undefined): string[] {
  const problems: string[] = []
  if (home === undefined || home === '') problems.push('--home is required (the home id, as in the hub\'s config)')
  else if (!Id.safeParse(home).success) problems.push(`--home "${home}": an id is 1-64 characters of A-Z, a-z, 0-9, "_" or "-"`)
  if (device === undefined || device === '') problems.push('--device is required (the doorbell\'s deviceId, as in its config)')
  else if (!Id.safeParse(device).success) problems.push(`--device "${device}": an id is 1-64 characters of A-Z, a-z, 0-9, "_" or "-"`)
  if (problems.length === 0 && home!.length + device!.length > MAX_HOME_AND_DEVICE) {
    problems.push(`--home and --device together are ${home!.length + device!.length} characters; at most ${MAX_HOME_AND_DEVICE} fit (the IAM role doorbell-<home>-<device>-kvs is limited to 64)`)
  }
  return problems
}
