import jpeg from 'jpeg-js'
import { MAX_PUSH_PICTURE_BASE64 } from '@doorbell/core'

/**
 * A push can carry about 3 KB of picture; the doorbell's is 640 px and ~20-50 KB. The hub makes a
 * small copy (pure JS, no ffmpeg on the hub; once per ring, and only when a screen is subscribed): box-averaged down to THUMB_WIDTH, re-encoded at
 * falling qualities until its base64 fits. Null when it cannot (not a JPEG, or nothing fits).
 */
const THUMB_WIDTH = 96
const QUALITIES = [50, 35, 25, 15]

export function pushThumbnail (picture: Uint8Array): string | null {
  let image: { width: number, height: number, data: Uint8Array }
  try {
    image = jpeg.decode(picture, { useTArray: true, maxResolutionInMP: 4, maxMemoryUsageInMB: 64 })
  } catch {
    return null
  }
  const scale = Math.max(1, image.width / THUMB_WIDTH)
  const w = Math.max(1, Math.round(image.width / scale))
  const h = Math.max(1, Math.round(image.height / scale))
  const out = new Uint8Array(w * h * 4)
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor(y * scale)
    const y1 = Math.min(image.height, Math.max(y0 + 1, Math.floor((y + 1) * scale)))
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor(x * scale)
      const x1 = Math.min(image.width, Math.max(x0 + 1, Math.floor((x + 1) * scale)))
      let r = 0; let g = 0; let b = 0; let n = 0
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const i = (yy * image.width + xx) * 4
          r += image.data[i]!; g += image.data[i + 1]!; b += image.data[i + 2]!; n++
        }
      }
      const o = (y * w + x) * 4
      out[o] = r / n; out[o + 1] = g / n; out[o + 2] = b / n; out[o + 3] = 255
    }
  }
  for (const q of QUALITIES) {
    const b64 = jpeg.encode({ width: w, height: h, data: out }, q).data.toString('base64')
    if (b64.length <= MAX_PUSH_PICTURE_BASE64) return b64
  }
  return null
}
