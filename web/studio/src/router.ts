// Two pages, addressed by the URL hash so the server only has to serve /studio.
import { ref } from 'vue'

export type PageName = 'create' | 'settings'
export const PAGES: { name: PageName; label: string; hash: string }[] = [
  { name: 'create', label: 'Create', hash: '#/' },
  { name: 'settings', label: 'Settings', hash: '#/settings' },
]

export function pageFromHash(hash: string): PageName {
  return hash.replace(/^#\/?/, '').split(/[/?]/)[0] === 'settings' ? 'settings' : 'create'
}

export const currentPage = ref<PageName>(pageFromHash(typeof location === 'undefined' ? '' : location.hash))

if (typeof window !== 'undefined') {
  window.addEventListener('hashchange', () => {
    currentPage.value = pageFromHash(location.hash)
  })
}
