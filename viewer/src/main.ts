import { createApp, type Component } from 'vue'
import { startInOrder } from '@doorbell/core'
import App from './App.vue'
import InspectorPage from './inspector/InspectorPage.vue'
import ConsolePage from './console/ConsolePage.vue'
import CameraNodePage from './camera/CameraNodePage.vue'
import { page, pageFor, serviceWorker, type PageName } from './startup'
import './style.css'

const PAGES: Record<PageName, Component> = { home: App, console: ConsolePage, camera: CameraNodePage, inspector: InspectorPage }
const name = pageFor(location.pathname)

// The page's start-up, in order (see startup.ts): a module that fails stops the ones before it.
startInOrder([
  serviceWorker({ enabled: !import.meta.env.DEV, container: 'serviceWorker' in navigator ? navigator.serviceWorker : undefined, secure: window.isSecureContext, log: console }),
  page(name, () => { const app = createApp(PAGES[name]); app.mount('#app'); return app })
], { log: { info: (msg, data) => { console.debug(`[start] ${msg}`, data) }, error: (msg, data) => { console.error(`[start] ${msg}`, data) } } })
  .catch((err: unknown) => { console.error('[start] the page could not start:', err) })
