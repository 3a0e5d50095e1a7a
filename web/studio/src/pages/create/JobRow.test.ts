import { afterEach, describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import JobRow from './JobRow.vue'
import { layoutRow } from './layout'
import { actionSlots } from './actions'
import { markMissing } from '../../stores/features'
import type { Job } from '../../api/types'

const base: Job = { id: 'j_1', state: 'queued', prompt_text: 'a cat', created_at: '2026-11-25T18:00:00Z', images: [] }
const image = { id: 'i_1', job_id: 'j_1', kind: 'output', width: 512, height: 512, mime: 'image/png', url: '/studio/api/v1/images/i_1', thumb_url: '/studio/api/v1/images/i_1/thumb', created_at: '' }
const row = (over: Partial<Job>) => mount(JobRow, { props: { row: layoutRow({ ...base, ...over }, true, 1000) } })

afterEach(() => {
  actionSlots.value = []
})

describe('job tile', () => {
  it('shows a queued job with its position and its id', () => {
    const w = row({ queue_position: 2 })
    expect(w.text()).toContain('Queued · #2')
    expect(w.get('.id').text()).toBe('j_1')
    expect(w.text()).toContain('Cancel')
  })

  it('titles an action run without text by its action', () => {
    actionSlots.value = [{ slot: 'upscale', label: 'Upscale (2×)', icon: 'upscale' }]
    const w = row({ state: 'done', prompt_text: null, action_slot: 'upscale', images: [image] })
    expect(w.get('.prompt').text()).toBe('Upscale (2×)')
    expect(row({ prompt_text: null }).get('.prompt').text()).toBe('Untitled prompt')
  })

  it('shows a running job with a progress bar from progress.overall', () => {
    const w = row({ state: 'running', progress: { overall: 0.42 } })
    expect(w.text()).toContain('Generating · 42%')
    expect((w.get('.fill').element as HTMLElement).style.width).toBe('42%')
    expect(w.text()).toContain('Stop')
  })

  it('shows an indeterminate bar when overall progress is unknown (foreign jobs)', () => {
    const w = row({ state: 'running', progress: { overall: null as unknown as number }, foreign: true })
    expect(w.text()).toContain('Generating')
    expect(w.text()).not.toContain('%')
    expect(w.get('.fill').classes()).toContain('indeterminate')
    expect(w.get('.foreign').text()).toBe('ComfyUI')
  })

  it('shows a readable error for a failed job', () => {
    const w = row({ state: 'error', error: { message: 'CUDA out of memory', node_type: 'KSampler', node_id: '3' } })
    expect(w.get('.message').text()).toBe('CUDA out of memory (KSampler #3)')
  })

  it('shows thumbnails with the action slots, copy, download and delete', () => {
    actionSlots.value = [
      { slot: 'generate', label: 'Generate', needs_image: false },
      { slot: 'upscale', label: 'Upscale', icon: 'upscale', needs_image: true },
      { slot: 'vary', label: 'Vary', icon: 'variation', needs_image: true, ready: false, problem: 'No checkpoint' },
      { slot: 'inpaint', label: 'Inpaint', needs_image: true, needs_mask: true },
      { slot: 'zoom', label: 'Zoom out', needs_image: true },
    ]
    const w = row({ state: 'done', images: [image] })
    expect(w.get('img').attributes('src')).toBe('/studio/api/v1/images/i_1/thumb')
    const labels = w.findAll('.toolbar .tool').map((b) => b.attributes('aria-label'))
    // two actions inline, the rest in "more"; text-only and masked actions are not offered on a tile
    expect(labels).toEqual(['Upscale', 'Vary', 'Like', 'Copy prompt', 'Download image', 'More actions'])
    expect(w.get('[aria-label=Vary]').attributes('aria-disabled')).toBe('true')
    expect(w.get('[aria-label=Vary]').attributes('title')).toBe('Vary: No checkpoint')
  })

  it('folds tools that do not fit a narrow tile into the more menu', () => {
    actionSlots.value = [{ slot: 'upscale', label: 'Upscale', needs_image: true }]
    const narrow = layoutRow({ ...base, state: 'done', images: [{ ...image, width: 200, height: 600 }] }, true, 1000)
    expect(narrow.tiles[0].w).toBeLessThan(160)
    const w = mount(JobRow, { props: { row: narrow } })
    const labels = w.findAll('.toolbar .tool').map((b) => b.attributes('aria-label'))
    expect(labels.length).toBeLessThanOrEqual(Math.floor((narrow.tiles[0].w - 14) / 34))
    expect(labels[labels.length - 1]).toBe('More actions')
  })

  it('hides controls whose routes the server lacks', () => {
    markMissing('queue.front')
    const w = row({})
    expect(w.text()).not.toContain('Run next')
    expect(w.text()).toContain('Cancel')
  })

  it('renders prompt text as text, never as HTML', () => {
    const w = row({ prompt_text: '<img src=x onerror=alert(1)><b>bold</b>' })
    expect(w.find('b').exists()).toBe(false)
    expect(w.get('.prompt').text()).toBe('<img src=x onerror=alert(1)><b>bold</b>')
  })
})

describe('tile like and select', () => {
  it('shows a liked image with a filled heart and offers Unlike', () => {
    const w = row({ state: 'done', images: [{ ...image, liked: true }] })
    expect(w.find('.liked').exists()).toBe(true)
    expect(w.get('.toolbar [aria-label=Unlike]').find('svg').attributes('fill')).toBe('currentColor')
    const plain = row({ state: 'done', images: [image] })
    expect(plain.find('.liked').exists()).toBe(false)
    expect(plain.get('.toolbar [aria-label=Like]').find('svg').attributes('fill')).toBe('none')
  })

  it('picks a tile with its checkbox and hides the toolbar while selecting', async () => {
    const { selection } = await import('../../stores/selection')
    const w = row({ state: 'done', images: [image] })
    const box = w.get('[role=checkbox]')
    expect(box.attributes('aria-checked')).toBe('false')
    await box.trigger('click')
    expect(selection.has('i_1')).toBe(true)
    expect(w.get('[role=checkbox]').attributes('aria-checked')).toBe('true')
    expect(w.get('.tile.image').classes()).toContain('selected')
    expect(w.find('.toolbar').exists()).toBe(false)
    selection.exit()
  })

  it('passes the click with its modifiers to the page', async () => {
    const w = row({ state: 'done', images: [image] })
    await w.get('.open').trigger('click', { shiftKey: true })
    const [img, ev] = w.emitted('open')![0] as [typeof image, MouseEvent]
    expect(img.id).toBe('i_1')
    expect(ev.shiftKey).toBe(true)
  })

  it('offers the prompt and its codes for reuse', async () => {
    const w = row({ state: 'done', prompt_text: 'a cat --ar 16:9', images: [image] })
    const reuse = w.findAll('.toolbar .tool').find((b) => b.attributes('aria-label') === 'Reuse prompt and parameters')
    if (reuse) await reuse.trigger('click')
    else await w.get('[aria-label="Use this prompt"]').trigger('click')
    expect(w.emitted('reuse')![0]).toEqual(['a cat --ar 16:9'])
  })
})
