import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import ImageViewer from './ImageViewer.vue'
import { markMissing } from '../../stores/features'
import type { Image, Job } from '../../api/types'
import { api } from '../../api/client'

const img = (id: string): Image => ({ id, job_id: 'j_1', kind: 'output', width: 640, height: 480, mime: 'image/png', url: `/full/${id}`, thumb_url: `/t/${id}`, created_at: '' })
const job: Job = { id: 'j_1', state: 'done', prompt_text: 'a <b>cat</b> --ar 4:3', created_at: '', images: [] }

afterEach(() => {
  document.body.innerHTML = ''
})

describe('image viewer', () => {
  it('shows the large image with its prompt, walks with ←/→ and closes on Esc', async () => {
    markMissing('preview') // no parse call in this test
    const images = [img('i_1'), img('i_2')]
    const w = mount(ImageViewer, { props: { images, index: 0, jobOf: () => job }, attachTo: document.body })
    await flushPromises()
    expect(w.get('img.full').attributes('src')).toBe('/full/i_1')
    expect(w.get('.prompt').text()).toBe('a <b>cat</b> --ar 4:3')
    expect(w.find('.prompt b').exists()).toBe(false)
    expect(w.text()).toContain('640 × 480')
    expect(document.activeElement?.getAttribute('aria-label')).toBe('Close viewer (Esc)')
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight' }))
    expect(w.emitted('update:index')![0]).toEqual([1])
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowLeft' })) // already at the first: nothing
    expect(w.emitted('update:index')).toHaveLength(1)
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))
    expect(w.emitted('close')).toHaveLength(1)
  })

  it('lets the owner mark an output expirable, and says when maintenance removed its file', async () => {
    markMissing('preview')
    const calls: [string, boolean][] = []
    const spy = vi.spyOn(api, 'setExpirable').mockImplementation(async (id: string, on: boolean) => {
      calls.push([id, on])
      return {}
    })
    const images = [img('i_1'), { ...img('i_2'), purged: true }, { ...img('i_3'), kind: 'upload' }]
    const w = mount(ImageViewer, { props: { images, index: 0, jobOf: () => job }, attachTo: document.body })
    await flushPromises()
    const box = w.get<HTMLInputElement>('.expirable input')
    expect(box.element.checked).toBe(false)
    box.element.checked = true
    await box.trigger('change')
    await flushPromises()
    expect(calls).toEqual([['i_1', true]])
    expect(images[0].expirable).toBe(true)
    await w.setProps({ index: 1 })
    expect(w.find('.expirable').exists()).toBe(false)
    expect(w.get('.purged').text()).toBe('file removed by maintenance')
    await w.setProps({ index: 2 })
    expect(w.text()).not.toContain('storage') // an upload is not the owner's kept output
    spy.mockRestore()
  })
})
