// Theme: the system's by default, or the user's choice kept in localStorage (`studio.theme`). The
// inline script in index.html applies the same rule before paint; this keeps it in sync afterwards.
import { computed, ref } from 'vue'

export type ThemePref = 'system' | 'dark' | 'light'
export const THEME_KEY = 'studio.theme'

function readPref(): ThemePref {
  try {
    const v = localStorage.getItem(THEME_KEY)
    return v === 'dark' || v === 'light' ? v : 'system'
  } catch {
    return 'system'
  }
}

const media = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: light)') : null
const systemLight = ref(media?.matches ?? false)
media?.addEventListener?.('change', (e) => {
  systemLight.value = e.matches
  apply()
})

export const themePref = ref<ThemePref>(readPref())
export const effectiveTheme = computed<'dark' | 'light'>(() =>
  themePref.value === 'system' ? (systemLight.value ? 'light' : 'dark') : themePref.value,
)

function apply() {
  document.documentElement.setAttribute('data-theme', effectiveTheme.value)
}

export function setTheme(p: ThemePref) {
  themePref.value = p
  try {
    if (p === 'system') localStorage.removeItem(THEME_KEY)
    else localStorage.setItem(THEME_KEY, p)
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  apply()
}

/** The top bar's toggle: flips what is shown now, remembering it as an explicit choice. */
export function toggleTheme() {
  setTheme(effectiveTheme.value === 'dark' ? 'light' : 'dark')
}

export function initTheme() {
  apply()
}
