import type { BrowserContext, CDPSession, Page } from 'playwright-core'

/**
 * What Chromium's own processes cost, read through the DevTools protocol: `SystemInfo.getProcessInfo`
 * gives every process of the browser (browser, renderer, GPU, each utility service) with its pid
 * and its CPU time since it started. It is a browser-target method (a page's CDP session is
 * refused: "only supported on the browser target"), so the session is the browser's, which
 * Playwright also gives for a persistent context.
 */

export interface ChromiumProcess {
  /** browser, renderer, GPU, or a utility's service name (network.mojom.NetworkService, …). */
  type: string
  pid: number
  /** CPU time, all threads, since the process started (s; Chromium rounds it to 10 ms). */
  cpuSeconds: number
}

/** A process's CPU over a window, as % of one core. */
export interface ProcessCpu { type: string, pid: number, percent: number }

interface ProcessInfoReply { processInfo: Array<{ type: string, id: number, cpuTime: number }> }

export class ChromiumCpu {
  private constructor (private readonly session: CDPSession) {}

  static async of (context: BrowserContext): Promise<ChromiumCpu> {
    const browser = context.browser()
    if (!browser) throw new Error('this context has no browser to ask for its processes (Playwright gave none)')
    return new ChromiumCpu(await browser.newBrowserCDPSession())
  }

  async processes (): Promise<ChromiumProcess[]> {
    const reply = await this.session.send('SystemInfo.getProcessInfo') as unknown as ProcessInfoReply
    return reply.processInfo.map((p) => ({ type: p.type, pid: p.id, cpuSeconds: p.cpuTime }))
  }

  /**
   * The renderer that runs `page`. The protocol does not say which renderer serves which page, so
   * the page is made to spin its main thread for `busyMs`: the renderer whose CPU time grows by
   * most of that is the page's. The others (Chromium keeps WebUI and spare renderers) stay near
   * idle; a page sharing its renderer with another busy one would be refused, not guessed.
   *
   * On a loaded machine (two cores shared with a load of 20 and more) a 1 s spin may get too
   * small a share of a core to stand out from renderers busy with their own frames: the spin is
   * then tried again, twice as long each time, up to `attempts` tries; what every try saw is in
   * the error if none tells.
   */
  async rendererOf (page: Page, busyMs = 1000, attempts = 4): Promise<number> {
    const tries: string[] = []
    for (let i = 0, ms = busyMs; i < attempts; i++, ms *= 2) {
      const before = await this.processes()
      await page.evaluate((spin) => { const end = performance.now() + spin; while (performance.now() < end) { /* spin */ } }, ms)
      const after = await this.processes()
      const grown = after
        .filter((p) => p.type === 'renderer')
        .map((p) => ({ pid: p.pid, seconds: p.cpuSeconds - (before.find((b) => b.pid === p.pid)?.cpuSeconds ?? 0) }))
        .sort((a, b) => b.seconds - a.seconds)
      const [first, second] = grown
      // Under load the spinning thread may get a share of a core only; what matters is that one renderer stands out.
      if (first && first.seconds >= (ms / 1000) * 0.3 && !(second && second.seconds > first.seconds / 2)) return first.pid
      tries.push(`spun ${ms} ms: ${JSON.stringify(grown)}`)
    }
    throw new Error(`could not tell which renderer runs the page: CPU seconds each renderer grew by while it spun (${tries.join('; ')})`)
  }

  async close (): Promise<void> {
    await this.session.detach().catch(() => {})
  }
}

/** Each process's CPU between two readings `seconds` apart, % of one core (processes that started or ended meanwhile are left out). */
export function cpuBetween (before: ChromiumProcess[], after: ChromiumProcess[], seconds: number): ProcessCpu[] {
  return after.flatMap((p) => {
    const b = before.find((x) => x.pid === p.pid)
    return b ? [{ type: p.type, pid: p.pid, percent: (100 * (p.cpuSeconds - b.cpuSeconds)) / seconds }] : []
  })
}

/** The CPU of each kind of process (renderers summed, utilities by service), % of one core, for a log line. */
export function cpuByType (cpu: ProcessCpu[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of cpu) {
    // network.mojom.NetworkService → NetworkService
    const kind = p.type.split('.').at(-1)!
    out[kind] = (out[kind] ?? 0) + p.percent
  }
  return out
}
