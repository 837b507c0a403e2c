import type { Page } from 'playwright-core'

/** In the page: keeps every door line it shows (`state: text` of the door status) in `window.doorLines`. */
function observeDoorLines (): void {
  const seen: string[] = []
  ;(window as unknown as { doorLines: string[] }).doorLines = seen
  new MutationObserver(() => {
    const el = document.querySelector('[data-testid=door-status]')
    const line = el ? `${el.getAttribute('data-door') ?? ''}: ${el.textContent ?? ''}` : null
    if (line !== null && seen.at(-1) !== line) seen.push(line)
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true })
}

/**
 * Records every door line the page shows (a MutationObserver): from now on, or with
 * `fromLoad` from before the app runs on its next load, so not even a first render is missed.
 */
export async function recordDoorLines (page: Page, o: { fromLoad?: boolean } = {}): Promise<void> {
  if (o.fromLoad === true) await page.addInitScript(observeDoorLines)
  else await page.evaluate(observeDoorLines)
}

/** The door lines recorded so far, oldest first. */
export const doorLines = async (page: Page): Promise<string[]> => await page.evaluate(() => (window as unknown as { doorLines: string[] }).doorLines)
