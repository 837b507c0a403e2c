// Preloaded into a doorbell process for a diagnostic run (`--import`): the event loop's delay
// (perf_hooks.monitorEventLoopDelay) over windows, one stderr line per window, so a bench can say
// whether a slow open-door round waited on the doorbell's own loop. Not part of any shipped program.
import { monitorEventLoopDelay } from 'node:perf_hooks'

const windowMs = Number(process.env.DOORBELL_LOOP_DELAY_WINDOW_MS ?? 5000)
const resolution = Number(process.env.DOORBELL_LOOP_DELAY_RESOLUTION_MS ?? 1)
const histogram = monitorEventLoopDelay({ resolution })
histogram.enable()
// perf_hooks records each whole interval between its timer's runs: the period is taken off (an idle loop reads ~0).
const ms = (ns) => Math.round(Math.max(0, ns / 1e6 - resolution) * 100) / 100
setInterval(() => {
  process.stderr.write(`${new Date().toISOString()} loop-delay p50=${ms(histogram.percentile(50))} p99=${ms(histogram.percentile(99))} max=${ms(histogram.max)} n=${histogram.count}\n`)
  histogram.reset()
}, windowMs).unref()
