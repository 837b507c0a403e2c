import type { Page } from 'playwright-core'

/**
 * The picture an <img> shows, as the page decoded it: drawn at its own size on a canvas and
 * written out as a JPEG (the page's CSP lets no fetch read a data: or blob: URL).
 */
export async function imageBytes (page: Page, selector: string): Promise<Buffer> {
  const url = await page.locator(selector).first().evaluate(async (img: HTMLImageElement) => {
    await img.decode()
    const canvas = document.createElement('canvas')
    canvas.width = img.naturalWidth
    canvas.height = img.naturalHeight
    canvas.getContext('2d')!.drawImage(img, 0, 0)
    return canvas.toDataURL('image/jpeg', 0.95)
  })
  return Buffer.from(url.split(',')[1]!, 'base64')
}

/** The ring banner's picture (issue 19), once it shows one, as the page decoded it. */
export async function ringBannerPicture (page: Page, timeoutMs = 10_000): Promise<Buffer> {
  await page.waitForSelector('[data-testid=ring-snapshot][data-state=picture]', { timeout: timeoutMs })
  return await imageBytes(page, '[data-testid=ring-snapshot-img]')
}
