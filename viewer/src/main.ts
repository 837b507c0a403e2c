import { createApp } from 'vue'
import App from './App.vue'
import InspectorPage from './inspector/InspectorPage.vue'
import './style.css'

// Two pages, no router: the residents' app, and the developers' inspector at /inspector.
const page = location.pathname.startsWith('/inspector') ? InspectorPage : App
createApp(page).mount('#app')
