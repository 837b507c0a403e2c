import { getCurrentScope, onScopeDispose, readonly, ref, watch, type Ref } from 'vue'

/**
 * How long a door command may be on its way before the screen says "Opening…". On the home
 * network the doorbell answers in about 10 ms, under one frame: the word would only flicker, and
 * drawing it (the text, the disabled button) is rendering work the page does while the answer is
 * arriving, which delays the answer's own handling (docs/performance.md, "Opening…" drawn only
 * when it lasts). Away from home, where an answer can take longer, it shows as before.
 */
export const PENDING_SHOWN_AFTER_MS = 150

/**
 * `source`, shown only once it has held: true `delayMs` after it turns true, false the moment it
 * turns false. A state that passes sooner is never drawn.
 */
export function heldFor (source: () => boolean, delayMs: number): Readonly<Ref<boolean>> {
  const shown = ref(false)
  let timer: ReturnType<typeof setTimeout> | undefined
  const stop = watch(source, (on) => {
    clearTimeout(timer)
    timer = undefined
    if (!on) { shown.value = false; return }
    timer = setTimeout(() => { timer = undefined; shown.value = true }, delayMs)
  }, { immediate: true, flush: 'sync' })
  if (getCurrentScope() !== undefined) onScopeDispose(() => { stop(); clearTimeout(timer) })
  return readonly(shown)
}
