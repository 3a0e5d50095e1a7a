import { createApp } from 'vue'
import App from './App.vue'
import { makeRouter } from './router'
import './styles/base.css'
import { initTheme } from './theme'
import './stores/session'

initTheme()
createApp(App).use(makeRouter()).mount('#app')
