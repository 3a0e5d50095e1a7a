import { beforeEach, describe, expect, it } from 'vitest'
import { THEME_KEY, effectiveTheme, setTheme, themePref, toggleTheme } from './theme'

describe('theme', () => {
  beforeEach(() => {
    localStorage.clear()
    setTheme('system')
  })

  it('follows the system by default and stores nothing', () => {
    expect(themePref.value).toBe('system')
    expect(localStorage.getItem(THEME_KEY)).toBeNull()
    expect(document.documentElement.getAttribute('data-theme')).toBe(effectiveTheme.value)
  })

  it('the toggle flips the shown theme and remembers it in localStorage', () => {
    const before = effectiveTheme.value
    toggleTheme()
    const after = before === 'dark' ? 'light' : 'dark'
    expect(effectiveTheme.value).toBe(after)
    expect(localStorage.getItem('studio.theme')).toBe(after)
    expect(document.documentElement.getAttribute('data-theme')).toBe(after)
  })

  it('choosing System again forgets the stored choice', () => {
    setTheme('light')
    expect(localStorage.getItem('studio.theme')).toBe('light')
    setTheme('system')
    expect(localStorage.getItem('studio.theme')).toBeNull()
  })
})
