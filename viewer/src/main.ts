import { createApp } from 'vue'
import App from './App.vue'
import InspectorPage from './inspector/InspectorPage.vue'
import ConsolePage from './console/ConsolePage.vue'
import CameraNodePage from './camera/CameraNodePage.vue'
import './style.css'

// The service worker (public/sw.js) keeps this page loadable when the hub is down. Registered
// first thing; it caches the shell and the files the shell references itself, so it does not
// matter that this script was loaded before it existed. Browsers allow service workers only in
// secure contexts (https, or http on localhost / 127.0.0.1), so http://<lan-ip> goes without.
// Not under `vite dev`, whose files are not the built ones.
if (!import.meta.env.DEV) {
  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err: unknown) => {
      console.warn('service worker not registered, the page will not load while the hub is down:', err)
    })
  } else {
    console.info('no service worker (needs https or localhost): the page will not load while the hub is down')
  }
}

// Pages by path, no router: the residents' app, the operators' console at /console, a browser
// camera node at /camera, and the developers' inspector at /inspector.
const page = location.pathname.startsWith('/inspector')
  ? InspectorPage
  : location.pathname.startsWith('/console') ? ConsolePage
    : location.pathname.startsWith('/camera') ? CameraNodePage : App
createApp(page).mount('#app')
