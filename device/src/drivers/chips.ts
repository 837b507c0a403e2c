/**
 * Which GPIO chip is the Raspberry Pi's header. Chips are found by label, never by number: the
 * Pi 5's header moved from gpiochip4 to gpiochip0 between kernels, and sysfs bases differ by
 * kernel (0, 512, 571...).
 */

/** The pin controllers that drive the 40-pin header, newest first. */
export const PI_CHIP_LABELS = [
  'pinctrl-rp1', // Pi 5
  'pinctrl-bcm2711', // Pi 4, 400, CM4
  'pinctrl-bcm2835' // Pi 3, Zero 2 W and older
] as const

export interface ChipInfo {
  /** gpiochip0 (character device) or gpiochip512 (sysfs). */
  name: string
  label: string
  /** How many lines the chip has. */
  lines: number
}

/** The chip with the wanted label, or else the first Pi header controller present. */
export function pickChip<C extends ChipInfo> (chips: readonly C[], wanted?: string): C | undefined {
  if (wanted !== undefined) return chips.find((c) => c.label === wanted)
  for (const label of PI_CHIP_LABELS) {
    const chip = chips.find((c) => c.label === label)
    if (chip) return chip
  }
  return undefined
}

/** `gpiochip0 [pinctrl-bcm2711]`, as gpiodetect prints it. */
export const describeChip = (chip: ChipInfo): string => `${chip.name} [${chip.label}]`

/** What was looked for, for an error when nothing matched. */
export const wantedChip = (wanted?: string): string =>
  wanted !== undefined ? `a chip labelled "${wanted}"` : `the Pi's header chip (${PI_CHIP_LABELS.join(', ')})`

/** The list of what is there, for the same error. */
export const presentChips = (chips: readonly ChipInfo[]): string =>
  chips.length === 0 ? 'no GPIO chips' : `only ${chips.map(describeChip).join(', ')}`

/**
 * Contact bounce: an edge counts only after `debounceMs` without any edge, so the extra edges of
 * a bouncing press or release are dropped. Called with every edge seen (press = the edge towards
 * the pressed level); says whether this one is a press.
 */
export function pressDebouncer (debounceMs: number, now: () => number = Date.now): (press: boolean) => boolean {
  let lastEdge = -Infinity
  return (press) => {
    const t = now()
    const quiet = t - lastEdge >= debounceMs
    lastEdge = t
    return press && quiet
  }
}
