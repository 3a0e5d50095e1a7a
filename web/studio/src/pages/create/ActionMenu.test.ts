import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import ActionMenu from './ActionMenu.vue'

const run = vi.fn()
const actions = ['Upscale', 'Vary', 'Zoom out'].map((label) => ({ key: label, label, icon: 'sparkles', run: () => run(label) }))

afterEach(() => {
  document.body.innerHTML = ''
})

describe('tile action menu', () => {
  it('opens from its button, walks with arrows, runs with a click and closes on Esc', async () => {
    const w = mount(ActionMenu, { props: { items: actions, label: 'More actions' }, attachTo: document.body })
    await w.get('button').trigger('click')
    await flushPromises()
    const items = () => Array.from(document.querySelectorAll<HTMLElement>('[role=menuitem]'))
    expect(items().map((i) => i.textContent?.trim())).toEqual(['Upscale', 'Vary', 'Zoom out'])
    expect(document.activeElement).toBe(items()[0])
    const menu = document.querySelector('[role=menu]')!
    menu.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowUp', bubbles: true }))
    expect(document.activeElement).toBe(items()[2])
    items()[1].click()
    await flushPromises()
    expect(run).toHaveBeenCalledWith('Vary')
    expect(document.querySelector('[role=menu]')).toBeNull()
    await w.get('button').trigger('click')
    await flushPromises()
    document.querySelector('[role=menu]')!.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }))
    await flushPromises()
    expect(document.querySelector('[role=menu]')).toBeNull()
    expect(document.activeElement).toBe(w.get('button').element)
  })
})
