import { createApp } from 'vue'
import App from './App.vue'
import './styles/base.css'
import { initTheme } from './theme'
import './stores/session'

initTheme()
createApp(App).mount('#app')
