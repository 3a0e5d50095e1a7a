import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import FindBar from './FindBar.vue'
import SelectionBar from './SelectionBar.vue'
import { createFinder } from '../../stores/finder'
import { createJobsStore } from '../../stores/jobs'
import { createSelection } from '../../stores/selection'
import { actionSlots } from './actions'
import type { ApiClient } from '../../api/client'
import type { Image } from '../../api/types'

function setup() {
  const finder = createFinder(createJobsStore(), { debounceMs: 0 })
  const searchJobs = vi.fn(async () => ({ items: [], next_cursor: null }))
  finder.use({ searchJobs } as unknown as ApiClient)
  const selection = createSelection()
  const w = mount(FindBar, { props: { finder, selection }, attachTo: document.body })
  return { w, finder, selection, searchJobs }
}
afterEach(() => {
  actionSlots.value = []
  document.body.innerHTML = ''
})

describe('find bar', () => {
  it('searches the typed text and offers a way back to all', async () => {
    const { w, finder, searchJobs } = setup()
    expect(w.text()).not.toContain('Back to all')
    await w.get('input[type=search]').setValue('red fox')
    await new Promise((r) => setTimeout(r, 5))
    await flushPromises()
    expect(searchJobs).toHaveBeenCalledWith({ q: 'red fox' }, null, 40, expect.anything())
    expect(finder.active.value).toBe(true)
    const back = w.findAll('button').find((b) => b.text() === 'Back to all')!
    await back.trigger('click')
    await flushPromises()
    expect(finder.active.value).toBe(false)
    expect((w.get('input[type=search]').element as HTMLInputElement).value).toBe('')
  })

  it('filters by liked, date and action', async () => {
    actionSlots.value = [{ slot: 'upscale', label: 'Upscale' }]
    const { w, searchJobs } = setup()
    await w.get('button[title="Only jobs with a liked image"]').trigger('click')
    expect(w.get('button[title="Only jobs with a liked image"]').attributes('aria-pressed')).toBe('true')
    await w.get('button[aria-label="Today"]').trigger('click')
    await w.get('button[aria-haspopup=menu]').trigger('click')
    const item = w.findAll('[role=menuitemradio]').find((b) => b.text() === 'Upscale')!
    await item.trigger('click')
    await flushPromises()
    const last = searchJobs.mock.calls.at(-1) as unknown as [Record<string, string>]
    expect(last[0]).toMatchObject({ liked: 'true', action: 'upscale' })
    expect(last[0].since).toMatch(/T/)
    expect(w.get('button[aria-haspopup=menu]').text()).toContain('Upscale')
  })

  it('switches select mode', async () => {
    const { w, selection } = setup()
    const btn = w.findAll('button').find((b) => b.text() === 'Select')!
    await btn.trigger('click')
    expect(selection.state.active).toBe(true)
    await btn.trigger('click')
    expect(selection.state.active).toBe(false)
  })
})

const image = (id: string): Image => ({ id, job_id: 'j_1', kind: 'output', width: 1, height: 1, mime: 'image/png', url: `/i/${id}`, thumb_url: `/t/${id}`, created_at: '' })

describe('selection bar', () => {
  it('shows the count, links the zip, and leaves on Esc', async () => {
    const selection = createSelection()
    const w = mount(SelectionBar, { props: { selection }, attachTo: document.body })
    expect(w.find('[role=toolbar]').exists()).toBe(false)
    selection.enter()
    await flushPromises()
    expect(w.text()).toContain('Click images to select them')
    expect(w.get('button[aria-label="Delete selected"]').attributes('disabled')).toBeDefined()
    selection.toggle(image('i_1'))
    selection.toggle(image('i_2'))
    await flushPromises()
    expect(w.text()).toContain('2 selected')
    expect(w.get('a[aria-label="Download selected"]').attributes('href')).toBe('/studio/api/v1/images/archive?ids=i_1%2Ci_2')
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }))
    await flushPromises()
    expect(selection.state.active).toBe(false)
    expect(selection.count.value).toBe(0)
  })
})
