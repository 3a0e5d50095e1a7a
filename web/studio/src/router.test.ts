import { describe, expect, it } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { NAV, inSection, makeRouter } from './router'

describe('router', () => {
  it('resolves deep links, ids with _ and capitals included', async () => {
    const router = makeRouter(createMemoryHistory('/studio/'))
    await router.push('/settings')
    expect(router.currentRoute.value.name).toBe('settings')
    await router.push('/')
    expect(router.currentRoute.value.name).toBe('create')
    await router.push('/workflows/w_AbC_12')
    expect(router.currentRoute.value.name).toBe('workflow')
    expect(router.currentRoute.value.params.id).toBe('w_AbC_12')
    await router.push('/explore?tab=models')
    expect(router.currentRoute.value.name).toBe('explore')
    await router.push('/edit/i_01ABC')
    expect(router.currentRoute.value.name).toBe('edit')
    expect(router.currentRoute.value.params.imageId).toBe('i_01ABC')
    await router.push('/edit')
    expect(router.currentRoute.value.name).toBe('edit')
    await router.push('/no/such/page')
    expect(router.currentRoute.value.name).toBe('not-found')
  })

  it('sends the old #/settings links to their page', async () => {
    const router = makeRouter(createMemoryHistory('/studio/'))
    await router.push('/#/settings')
    expect(router.currentRoute.value.path).toBe('/settings')
  })

  it('marks the nav entry of the current section', () => {
    const settings = NAV.find((n) => n.name === 'settings')!
    expect(inSection(settings, 'settings')).toBe(true)
    expect(inSection(settings, 'create')).toBe(false)
    expect(NAV.map((n) => n.label)).toEqual(['Create', 'Edit', 'Explore', 'Workflows', 'Shortcodes', 'Settings'])
  })

  it('loads Explore as its own chunk, not with the Create page', () => {
    const explore = makeRouter(createMemoryHistory('/studio/')).getRoutes().find((r) => r.name === 'explore')!
    expect(typeof explore.components?.default).toBe('function')
  })
})
