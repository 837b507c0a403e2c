import type { Startable } from '@doorbell/core'

/**
 * The page's modules, in the order `main.ts` starts them (core's `startInOrder`): the service
 * worker, then the page for this path. Each page starts its own parts when it mounts (the
 * residents' page: pairing, hub info, then `Home` with the hub client, the paths, the link
 * machine and the inspection; see `composables/useHome.ts`). DOM-free here, so the tests run it.
 */

/** Pages by path, no router: the operators' console, a browser camera node, the developers' inspector, else the residents' app. */
export type PageName = 'inspector' | 'console' | 'camera' | 'home'

export function pageFor (pathname: string): PageName {
  if (pathname.startsWith('/inspector')) return 'inspector'
  if (pathname.startsWith('/console')) return 'console'
  if (pathname.startsWith('/camera')) return 'camera'
  return 'home'
}

export interface ServiceWorkerOptions {
  /** Off under `vite dev`, whose files are not the built ones. */
  enabled: boolean
  /** `navigator.serviceWorker`; absent in browsers without service workers. */
  container: { register: (url: string, options: { scope: string }) => Promise<unknown> } | undefined
  /** Browsers allow service workers only in secure contexts (https, or http on localhost / 127.0.0.1). */
  secure: boolean
  log: Pick<Console, 'info' | 'warn'>
}

/**
 * The service worker (public/sw.js) keeps this page loadable when the hub is down. First in the
 * list; it caches the shell and the files the shell references itself, so it does not matter that
 * this script was loaded before it existed. The registration is not awaited (the page does not
 * wait for it), and stop leaves it: it is meant to outlive the page.
 */
export function serviceWorker (o: ServiceWorkerOptions): Startable {
  return {
    name: 'service worker',
    start: async () => {
      if (!o.enabled) return
      if (!o.container || !o.secure) {
        o.log.info('no service worker (needs https or localhost): the page will not load while the hub is down')
        return
      }
      o.container.register('/sw.js', { scope: '/' }).catch((err: unknown) => {
        o.log.warn('service worker not registered, the page will not load while the hub is down:', err)
      })
    },
    stop: async () => {}
  }
}

/** The page for this path: mounted on start, unmounted on stop (its components stop what they started). */
export function page (name: PageName, mount: () => { unmount: () => void }): Startable {
  let mounted: { unmount: () => void } | null = null
  return {
    name: `page ${name}`,
    start: async () => { mounted = mount() },
    stop: async () => { mounted?.unmount(); mounted = null }
  }
}
