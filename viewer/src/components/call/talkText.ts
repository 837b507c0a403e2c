import type { TalkerView } from '../../lib'

/** "You are talking" on the talker's own screen, "Kitchen tablet is talking" on the others; '' when no one is. */
export function talkerText (v: TalkerView): string {
  if (v.talker === null) return ''
  return v.self ? 'You are talking' : `${v.talker.name} is talking`
}
