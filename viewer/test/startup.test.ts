import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StartError, startInOrder } from '@doorbell/core'
import { page, pageFor, serviceWorker } from '../src/startup'

test('each path gets its page; anything else is the residents\' app', () => {
  assert.deepEqual(['/inspector', '/console', '/console/zones', '/camera', '/', '/pair', '/history'].map(pageFor),
    ['inspector', 'console', 'console', 'camera', 'home', 'home', 'home'])
})

function recorder () {
  const said: string[] = []
  const registered: Array<[string, { scope: string }]> = []
  return {
    said,
    registered,
    log: { info: (m: string) => { said.push(`info ${m}`) }, warn: (m: string) => { said.push(`warn ${m}`) } }
  }
}

test('the service worker is registered at /sw.js for the whole origin, without the page waiting for it; a refusal is said, not thrown', async () => {
  const r = recorder()
  let settle: (v: unknown) => void = () => {}
  const sw = serviceWorker({ enabled: true, secure: true, log: r.log, container: { register: async (url, options) => { r.registered.push([url, options]); return await new Promise((resolve) => { settle = resolve }) } } })
  await sw.start(new AbortController().signal) // resolves while the registration is still pending
  assert.deepEqual(r.registered, [['/sw.js', { scope: '/' }]])
  settle(undefined)

  const refused = recorder()
  await serviceWorker({ enabled: true, secure: true, log: refused.log, container: { register: async () => { throw new Error('SecurityError') } } }).start(new AbortController().signal)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(refused.said, ['warn service worker not registered, the page will not load while the hub is down:'])
})

test('no service worker under vite dev, nor where the browser allows none (http on a LAN address)', async () => {
  const dev = recorder()
  await serviceWorker({ enabled: false, secure: true, log: dev.log, container: { register: async (url, o) => { dev.registered.push([url, o]) } } }).start(new AbortController().signal)
  assert.deepEqual([dev.registered, dev.said], [[], []])
  const insecure = recorder()
  await serviceWorker({ enabled: true, secure: false, log: insecure.log, container: { register: async (url, o) => { insecure.registered.push([url, o]) } } }).start(new AbortController().signal)
  assert.deepEqual(insecure.registered, [])
  assert.match(insecure.said[0] ?? '', /^info no service worker \(needs https or localhost\)/)
})

test('the page mounts after the service worker and unmounts on stop; a page that cannot mount is a StartError naming it', async () => {
  const events: string[] = []
  const r = recorder()
  const started = await startInOrder([
    serviceWorker({ enabled: true, secure: true, log: r.log, container: { register: async () => { events.push('register') } } }),
    page('home', () => { events.push('mount'); return { unmount: () => { events.push('unmount') } } })
  ])
  assert.deepEqual(started.names, ['service worker', 'page home'])
  await started.stop()
  assert.deepEqual(events, ['register', 'mount', 'unmount'])

  await assert.rejects(startInOrder([page('console', () => { throw new Error('no #app element') })]), (err: unknown) => {
    assert.ok(err instanceof StartError)
    assert.equal(err.module, 'page console')
    return true
  })
})
