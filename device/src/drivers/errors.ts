/**
 * What went wrong with a GPIO, in the words a person fixing a doorbell needs: which pin, on which
 * chip, the likely cause and what to do. One class with a stable `name` and a `reason` to branch on.
 */
export type GpioFailure =
  /** EACCES: the doorbell's user may not open the chip or write sysfs (not in the `gpio` group). */
  | 'permission'
  /** EBUSY: another process (or a kernel driver, or an overlay) holds the line. */
  | 'busy'
  /** No chip with that label / name: the wrong chip, or not a Raspberry Pi. */
  | 'no-chip'
  /** The chip has no such line (an offset past its last line, or a header pin number given as BCM). */
  | 'no-line'
  /** No GPIO interface at all (no /dev/gpiochip*, no /sys/class/gpio), or the tools are missing. */
  | 'unavailable'
  /** sysfs numbering starts past 0 (kernel 6.6+): rpi-gpio cannot reach the pin. */
  | 'numbering'
  /** Anything else the kernel or a tool said. */
  | 'failed'

export interface GpioErrorInit {
  reason: GpioFailure
  /** The pin as the config names it: `BCM17`, `header pin 11`. */
  pin: string
  /** The chip as found: `gpiochip0 [pinctrl-bcm2711]`, or what was looked for. */
  chip: string
  /** Which driver: `libgpiod v2`, `sysfs`, `rpi-gpio`. */
  driver: string
  /** What the kernel or the tool said. */
  detail: string
}

const SEE = 'see docs/hardware.md'

/** What to do, per cause. */
export function gpioAdvice (reason: GpioFailure): string {
  switch (reason) {
    case 'permission': return 'the doorbell\'s user is not in the "gpio" group: sudo usermod -aG gpio doorbell-device (or SupplementaryGroups=gpio in the unit), then restart it'
    case 'busy': return 'another process or a kernel driver holds this line: stop the other program (gpioinfo shows its consumer), remove a dtoverlay that claims the pin, or pick a free pin'
    case 'no-chip': return 'no such GPIO chip: check gpio.chip against `gpiodetect` (pinctrl-rp1 on a Pi 5, pinctrl-bcm2711 on a Pi 4, pinctrl-bcm2835 on older Pis), or leave it out on a Pi'
    case 'no-line': return 'the chip has no such line: gpio.buttonLine and gpio.lockLine are BCM numbers (BCM17 is header pin 11), not header pins'
    case 'unavailable': return 'no usable GPIO here: on a Raspberry Pi install the gpiod tools (sudo apt install gpiod); off a Pi use gpio.driver "simulated"'
    case 'numbering': return 'this kernel numbers sysfs GPIOs from a base past 0 (512 on 6.6+): use gpio.driver "auto" (libgpiod, or sysfs with the base) and BCM line numbers'
    case 'failed': return 'check the kernel log (dmesg) and what `gpioinfo` says about the line'
  }
}

export class GpioError extends Error {
  override readonly name = 'GpioError'
  readonly reason: GpioFailure
  readonly pin: string
  readonly chip: string
  readonly driver: string
  readonly detail: string

  /** `headline` replaces the first part of the message (rpi-gpio keeps the words it always had). */
  constructor (init: GpioErrorInit, options?: { cause?: unknown, headline?: string }) {
    super(`${options?.headline ?? `GPIO ${init.pin} on ${init.chip} (${init.driver}): ${init.detail}`}. Likely cause and fix: ${gpioAdvice(init.reason)}; ${SEE}`, options)
    this.reason = init.reason
    this.pin = init.pin
    this.chip = init.chip
    this.driver = init.driver
    this.detail = init.detail
  }
}

/** The likely cause of an errno code or a tool's message (gpiod tools print strerror's text). */
export function gpioFailureOf (text: string): GpioFailure {
  // The tool itself could not be started (setpriv's or spawn's words), not the chip.
  if (/failed to execute|spawn \S+ ENOENT/.test(text)) return 'unavailable'
  if (/EACCES|EPERM|Permission denied|Operation not permitted/.test(text)) return 'permission'
  if (/EBUSY|Device or resource busy/.test(text)) return 'busy'
  if (/cannot find GPIO chip|ENOENT|No such file or directory|No such device/.test(text)) return 'no-chip'
  if (/out of range|EINVAL|Invalid argument|cannot find line/.test(text)) return 'no-line'
  return 'failed'
}
