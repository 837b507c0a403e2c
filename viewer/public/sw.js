// Doorbell service worker: keeps the app loadable when the hub is down (viewer/README.md,
// "Loading with the hub down"). Hand-written on purpose: small enough to read in one go.
// Bump the version to drop everything cached by older workers.
const CACHE = 'doorbell-v1'
const SHELL = '/' // index.html: every page of the app (/, /inspector) is this one file
const STATIC = ['/manifest.webmanifest', '/icon.svg'] // unhashed files worth having offline
const TIMEOUT_MS = 2500 // a hub that has not answered by then is treated as down
const FALLBACK_HEADER = 'X-Doorbell-Cache' // set on answers taken from the cache because the network failed

// The shell is stored only together with the hashed files it references, so a cached shell always
// has its script and style. We do this rather than rely on the fetch handler because the page
// loads its own script before it can register this worker: on the first visit those requests
// never pass through here. Files loaded later (lazy chunks) are cached by the fetch handler.
// Old hashed files stay until CACHE changes; a build adds a few hundred KB.
async function keepShell (res) {
  const cache = await caches.open(CACHE)
  const html = await res.clone().text()
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1])
  const missing = []
  for (const url of assets) if (!(await cache.match(url))) missing.push(url)
  await cache.addAll(missing)
  await cache.put(SHELL, res)
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const res = await fetch(SHELL, { cache: 'reload' })
    if (!res.ok) throw new Error(`app shell: HTTP ${res.status}`) // install fails; the browser retries later
    await keepShell(res)
    await (await caches.open(CACHE)).addAll(STATIC)
    await self.skipWaiting() // a new worker takes over at once: it only ever adds to what works
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name)
    await self.clients.claim() // control the page that registered us, without a reload
  })())
})

// Network first: the hub's answer when it gives one within TIMEOUT_MS (and it refreshes the cache,
// even when it comes late), else the cached copy. With nothing cached, wait for the network.
function networkFirst (event, key, store) {
  const network = fetch(event.request)
  event.waitUntil(network.then((res) => { if (res.ok) return store(res.clone()) }).catch(() => {}))
  event.respondWith((async () => {
    const cached = await (await caches.open(CACHE)).match(key)
    if (!cached) return network
    const timeout = new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS, null))
    const res = await Promise.race([network.catch(() => null), timeout])
    if (res) return res
    const headers = new Headers(cached.headers)
    headers.set(FALLBACK_HEADER, 'fallback')
    return new Response(cached.body, { status: cached.status, statusText: cached.statusText, headers })
  })())
}

// Cache first for /assets/*: the name changes whenever the content does, so a stored copy is never stale.
async function cacheFirst (event) {
  const cache = await caches.open(CACHE)
  const hit = await cache.match(event.request)
  if (hit) return hit
  const res = await fetch(event.request)
  if (res.ok) event.waitUntil(cache.put(event.request, res.clone()))
  return res
}

self.addEventListener('fetch', (event) => {
  const { request } = event
  const url = new URL(request.url)
  if (request.method !== 'GET' || url.origin !== self.location.origin) return
  const put = (key) => async (res) => { await (await caches.open(CACHE)).put(key, res) }
  if (url.pathname === '/api/info') return networkFirst(event, '/api/info', put('/api/info'))
  if (/^\/(api\/|mqtt|healthz)/.test(url.pathname)) return // live data: never answered from a cache
  if (request.mode === 'navigate') {
    // Only an HTML answer replaces the shell (a navigation straight to /icon.svg must not).
    return networkFirst(event, SHELL, async (res) => {
      if ((res.headers.get('content-type') ?? '').startsWith('text/html')) await keepShell(res)
    })
  }
  if (url.pathname.startsWith('/assets/')) return event.respondWith(cacheFirst(event))
  if (STATIC.includes(url.pathname)) return networkFirst(event, url.pathname, put(url.pathname))
})

// A ring's notification (viewer/src/composables/useRingAlert.ts shows it with the picture, Answer
// and Dismiss). Answer or a tap opens the app on that ring (an open window is focused and told;
// else a new one opens with the ring in its URL); Dismiss tells the open windows.
self.addEventListener('notificationclick', (event) => {
  const data = event.notification.data
  event.notification.close()
  if (!data || data.kind !== 'ring') return
  const action = event.action === 'answer' || event.action === 'dismiss' ? event.action : 'open'
  const message = { type: 'ring-notification', action, deviceId: data.deviceId, ringId: data.ringId }
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true })
    if (action === 'dismiss') { for (const w of windows) w.postMessage(message); return }
    const shown = windows[0]
    if (shown) {
      await shown.focus().catch(() => {}) // not allowed everywhere: the message still goes
      shown.postMessage(message)
      return
    }
    const params = new URLSearchParams({ ring: data.deviceId, ringId: data.ringId, action })
    await self.clients.openWindow(`/?${params.toString()}`)
  })())
})

// Web Push (docs/history.md, "Web Push"): the hub wakes a closed page when a doorbell rings. The
// payload is the hub's RingPush (core/src/push.ts), decrypted by the browser. The notification is
// the one the open page shows (ringNotification in useRingAlert.ts, kept identical by
// viewer/test/serviceWorkerPush.test.ts), with the push's small picture. A page that is open
// already showed this ring (same tag, same ring, likely a bigger picture): that one stays.
const ID = /^[A-Za-z0-9_-]{1,64}$/
function ringPush (data) {
  let p
  try { p = data ? data.json() : null } catch { return null }
  if (!p || p.v !== 1 || p.kind !== 'ring' || !ID.test(p.deviceId) || !ID.test(p.ringId)) return null
  if (typeof p.deviceName !== 'string' || p.deviceName.length < 1 || p.deviceName.length > 64) return null
  if (!Number.isSafeInteger(p.at) || p.at < 0) return null
  if (p.jpeg !== null && (typeof p.jpeg !== 'string' || p.jpeg.length > 3072 || !/^\/9j\/[A-Za-z0-9+/]*={0,2}$/.test(p.jpeg))) return null
  return p
}

function ringPushNotification (p) {
  return {
    title: `${p.deviceName} is ringing`,
    options: {
      body: `at ${new Date(p.at).toLocaleTimeString()}`,
      tag: `ring-${p.deviceId}`,
      requireInteraction: true,
      data: { kind: 'ring', deviceId: p.deviceId, ringId: p.ringId },
      ...(p.jpeg ? { image: `data:image/jpeg;base64,${p.jpeg}` } : {}),
      icon: '/icon.svg',
      actions: [{ action: 'answer', title: 'Answer' }, { action: 'dismiss', title: 'Dismiss' }]
    }
  }
}

self.addEventListener('push', (event) => {
  const p = ringPush(event.data)
  if (!p) { console.warn('a push that is not a doorbell ring: ignored'); return }
  const { title, options } = ringPushNotification(p)
  event.waitUntil((async () => {
    const shown = await self.registration.getNotifications({ tag: options.tag })
    if (shown.some((n) => n.data && n.data.ringId === p.ringId)) return
    await self.registration.showNotification(title, options)
  })())
})
