import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import PromptBar from './PromptBar.vue'
import type { Job, PromptPreview, SuggestResult } from '../../api/types'
import { wantsSuggestions } from './useAutocomplete'

const job = (text: string): Job => ({ id: 'j_new', state: 'queued', prompt_text: text, created_at: '2026-11-25T18:00:00Z', images: [] })

function mountBar(over: Record<string, unknown> = {}) {
  const submit = vi.fn(async (t: string) => job(t))
  const suggest = vi.fn(
    async (): Promise<SuggestResult> => ({
      items: [
        { label: '--ar', insert: '--ar', kind: 'code', description: 'aspect ratio', type: 'ratio' },
        { label: '--aspect', insert: '--aspect', kind: 'code', description: 'alias', type: 'ratio' },
        { label: '--batch', insert: '--batch', kind: 'code', description: 'images per run', type: 'int' },
      ],
      replace: { start: 6, end: 8 },
    }),
  )
  const preview = vi.fn(async (text: string): Promise<PromptPreview> => ({ clean_text: text, tokens: [], errors: [], warnings: [], patches: [] }))
  const wrapper = mount(PromptBar, {
    props: {
      submit,
      suggest,
      preview,
      loadHistory: async () => ['older prompt', 'oldest prompt'],
      previewDelay: 0,
      suggestDelay: 0,
      ...over,
    },
    attachTo: document.body,
  })
  return { wrapper, submit, suggest, preview }
}

async function type(wrapper: ReturnType<typeof mount>, value: string, caret = value.length) {
  const ta = wrapper.get('textarea')
  const el = ta.element as HTMLTextAreaElement
  await ta.setValue(value)
  el.setSelectionRange(caret, caret)
  await ta.trigger('input')
  await flushPromises()
}

afterEach(() => {
  document.body.innerHTML = ''
})

describe('prompt bar keyboard', () => {
  it('Enter submits the text, Shift+Enter does not', async () => {
    const { wrapper, submit } = mountBar()
    await type(wrapper, 'a red fox')
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter', shiftKey: true })
    expect(submit).not.toHaveBeenCalled()
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(submit).toHaveBeenCalledWith('a red fox', [])
    expect(wrapper.emitted('submitted')![0]).toEqual([job('a red fox')])
    expect((wrapper.get('textarea').element as HTMLTextAreaElement).value).toBe('')
  })

  it('does not submit an empty prompt', async () => {
    const { wrapper, submit } = mountBar()
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    expect(submit).not.toHaveBeenCalled()
  })

  it('↑ at the start walks back through history and ↓ at the end returns to the draft', async () => {
    const { wrapper } = mountBar()
    await flushPromises()
    const ta = wrapper.get('textarea')
    const el = ta.element as HTMLTextAreaElement
    await type(wrapper, 'my draft', 0)
    await ta.trigger('keydown', { key: 'ArrowUp' })
    await flushPromises()
    expect(el.value).toBe('older prompt')
    el.setSelectionRange(0, 0)
    await ta.trigger('keydown', { key: 'ArrowUp' })
    await flushPromises()
    expect(el.value).toBe('oldest prompt')
    el.setSelectionRange(el.value.length, el.value.length)
    await ta.trigger('keydown', { key: 'ArrowDown' })
    await flushPromises()
    expect(el.value).toBe('older prompt')
    el.setSelectionRange(el.value.length, el.value.length)
    await ta.trigger('keydown', { key: 'ArrowDown' })
    await flushPromises()
    expect(el.value).toBe('my draft')
  })

  it('↑ in the middle of the text moves the caret, not the history', async () => {
    const { wrapper } = mountBar()
    await flushPromises()
    await type(wrapper, 'line one\nline two', 12)
    await wrapper.get('textarea').trigger('keydown', { key: 'ArrowUp' })
    expect((wrapper.get('textarea').element as HTMLTextAreaElement).value).toBe('line one\nline two')
  })

  it('a submitted prompt joins the session history when the server has none', async () => {
    const { wrapper } = mountBar({ loadHistory: async () => Promise.reject(Object.assign(new Error('x'), { code: 'not_found' })) })
    await type(wrapper, 'first idea')
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    const el = wrapper.get('textarea').element as HTMLTextAreaElement
    el.setSelectionRange(0, 0)
    await wrapper.get('textarea').trigger('keydown', { key: 'ArrowUp' })
    await flushPromises()
    expect(el.value).toBe('first idea')
  })

  it('`/` anywhere focuses the prompt, but not while typing in another field', async () => {
    const { wrapper } = mountBar()
    const other = document.createElement('input')
    document.body.appendChild(other)
    other.focus()
    other.dispatchEvent(new KeyboardEvent('keydown', { key: '/', bubbles: true }))
    expect(document.activeElement).toBe(other)
    other.blur()
    document.body.dispatchEvent(new KeyboardEvent('keydown', { key: '/', bubbles: true }))
    expect(document.activeElement).toBe(wrapper.get('textarea').element)
  })

  it('refuses to submit while the preview reports a parse error', async () => {
    const preview = async (text: string): Promise<PromptPreview> => ({
      clean_text: text,
      tokens: [],
      errors: [{ start: 6, end: 10, message: '--ar needs W:H' }],
      warnings: [],
      patches: [],
    })
    const { wrapper, submit } = mountBar({ preview })
    await type(wrapper, 'a cat --ar')
    await new Promise((r) => setTimeout(r, 5))
    await flushPromises()
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(submit).not.toHaveBeenCalled()
    expect(wrapper.text()).toContain('--ar needs W:H')
  })
})

describe('shortcode autocomplete', () => {
  it('opens on `--`, moves with ↑/↓ (wrapping) and accepts with Enter', async () => {
    const { wrapper, suggest } = mountBar()
    await type(wrapper, 'a cat --')
    expect(suggest).toHaveBeenCalledWith('a cat --', 8, expect.anything())
    const options = () => wrapper.findAll('[role=option]')
    expect(options()).toHaveLength(3)
    expect(options()[0].attributes('aria-selected')).toBe('true')
    const ta = wrapper.get('textarea')
    await ta.trigger('keydown', { key: 'ArrowDown' })
    await ta.trigger('keydown', { key: 'ArrowDown' })
    expect(options()[2].attributes('aria-selected')).toBe('true')
    await ta.trigger('keydown', { key: 'ArrowDown' })
    expect(options()[0].attributes('aria-selected')).toBe('true')
    await ta.trigger('keydown', { key: 'ArrowUp' })
    expect(options()[2].attributes('aria-selected')).toBe('true')
    expect(ta.attributes('aria-activedescendant')).toBe('prompt-suggestions-2')
    await ta.trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect((ta.element as HTMLTextAreaElement).value).toBe('a cat --batch ')
    expect(wrapper.emitted('submitted')).toBeUndefined()
  })

  it('Tab accepts, Esc closes without changing the text', async () => {
    const { wrapper } = mountBar()
    await type(wrapper, 'a cat --')
    const ta = wrapper.get('textarea')
    await ta.trigger('keydown', { key: 'Escape' })
    expect(wrapper.get('[role=listbox]').isVisible()).toBe(false)
    expect((ta.element as HTMLTextAreaElement).value).toBe('a cat --')
    await type(wrapper, 'a cat --')
    await ta.trigger('keydown', { key: 'Tab' })
    await flushPromises()
    expect((ta.element as HTMLTextAreaElement).value).toBe('a cat --ar ')
  })

  it('Enter submits when the highlighted suggestion is what is already typed', async () => {
    const suggest = vi.fn(async () => ({
      items: [{ label: '16:9', insert: '16:9 ', kind: 'value' as const, description: '', type: 'ratio' }],
      replace: { start: 11, end: 15 },
    }))
    const { wrapper, submit } = mountBar({ suggest })
    await type(wrapper, 'a cat --ar 16:9')
    expect(wrapper.findAll('[role=option]')).toHaveLength(1)
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(submit).toHaveBeenCalledWith('a cat --ar 16:9', [])
  })

  it('accepts with the mouse', async () => {
    const { wrapper } = mountBar()
    await type(wrapper, 'a cat --')
    await wrapper.findAll('[role=option]')[1].trigger('mousedown')
    await flushPromises()
    expect((wrapper.get('textarea').element as HTMLTextAreaElement).value).toBe('a cat --aspect ')
  })

  it('asks only when the caret is in a code or its value', () => {
    expect(wrapper_wants('a cat')).toBe(false)
    expect(wrapper_wants('a cat --')).toBe(true)
    expect(wrapper_wants('a cat --a')).toBe(true)
    expect(wrapper_wants('a cat --ar ')).toBe(true)
    expect(wrapper_wants('a cat --ar 16')).toBe(true)
    expect(wrapper_wants('a cat --ar 16:9 ')).toBe(false)
    expect(wrapper_wants('well-known')).toBe(false)
  })
})

function wrapper_wants(text: string) {
  return wantsSuggestions(text, text.length)
}

describe('highlight overlay', () => {
  it('paints codes and errors from the preview tokens behind the textarea', async () => {
    const preview = async (): Promise<PromptPreview> => ({
      clean_text: 'a cat',
      tokens: [{ code: 'ar', raw: '--ar 16:9', start: 6, end: 15, value: '16:9' }],
      errors: [{ start: 16, end: 23, message: 'unknown value' }],
      warnings: [],
      patches: [],
    })
    const { wrapper } = mountBar({ preview })
    await type(wrapper, 'a cat --ar 16:9 --steps x')
    await new Promise((r) => setTimeout(r, 5))
    await flushPromises()
    const overlay = wrapper.get('.overlay')
    expect(overlay.attributes('aria-hidden')).toBe('true')
    expect(overlay.get('.hl-code').text()).toBe('--ar 16:9')
    expect(overlay.get('.hl-error').text()).toBe('--steps')
    expect(overlay.text().replace(/\u200b/g, '')).toBe('a cat --ar 16:9 --steps x')
  })

  it('shows prompt text as text, never as HTML', async () => {
    const { wrapper } = mountBar()
    await type(wrapper, '<img src=x onerror=alert(1)> --ar 1:1')
    const overlay = wrapper.get('.overlay')
    expect(overlay.find('img').exists()).toBe(false)
    expect(overlay.text()).toContain('<img src=x onerror=alert(1)>')
  })
})

describe('image prompt strength', () => {
  afterEach(async () => {
    const { clearChips } = await import('./uploads')
    const { actionSlots } = await import('./actions')
    clearChips()
    actionSlots.value = []
  })
  const chipImage = { id: 'i_up', job_id: null, kind: 'upload', width: 8, height: 8, mime: 'image/png', url: '/u', thumb_url: '/t', created_at: '' }

  it("sends one image chip's strength as the img2img action's denoise", async () => {
    const { chips } = await import('./uploads')
    const { actionSlots } = await import('./actions')
    actionSlots.value = [{ slot: 'img2img', label: 'Image to image', parameters: [{ name: 'denoise', default: 0.6 }, { name: 'steps' }] }]
    chips.push({ key: 'c1', name: 'cat.png', localUrl: null, image: chipImage, uploading: false })
    const { wrapper, submit } = mountBar()
    await flushPromises()
    const range = wrapper.get('#img2img-strength')
    expect(wrapper.get('.strength output').text()).toBe('0.60')
    await range.setValue('0.35')
    expect(wrapper.get('.strength output').text()).toBe('0.35')
    await type(wrapper, 'a cat')
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(submit).toHaveBeenCalledWith('a cat', ['i_up'], { denoise: 0.35 })
    wrapper.unmount()
  })

  it('offers no strength when the img2img action does not take a denoise', async () => {
    const { chips } = await import('./uploads')
    const { actionSlots } = await import('./actions')
    actionSlots.value = [{ slot: 'img2img', label: 'Image to image', parameters: [{ name: 'steps' }] }]
    chips.push({ key: 'c2', name: 'cat.png', localUrl: null, image: chipImage, uploading: false })
    const { wrapper, submit } = mountBar()
    await flushPromises()
    expect(wrapper.find('.strength').exists()).toBe(false)
    await type(wrapper, 'a cat')
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(submit).toHaveBeenCalledWith('a cat', ['i_up'])
    wrapper.unmount()
  })
})

describe('value autocomplete of installed names', () => {
  const loraItems = (): SuggestResult => ({
    items: [
      { label: 'add_detail.safetensors', insert: 'add_detail.safetensors ', kind: 'value', description: 'loras', type: 'string' },
      { label: 'styles/film_grain.safetensors', insert: 'styles/film_grain.safetensors ', kind: 'value', description: 'loras/styles', type: 'string' },
    ],
    replace: { start: 13, end: 13 },
  })

  it('asks for values right after --lora, --model, --sampler, --style and --ar', () => {
    for (const t of ['a fox --lora ', 'a fox --lora add_d', '--model ', '--ckpt jugg', '--sampler ', '--scheduler k', '--style ', '--ar ']) {
      expect(wantsSuggestions(t, t.length)).toBe(true)
    }
    expect(wantsSuggestions('a fox', 5)).toBe(false)
  })

  it('walks the names with the keyboard and inserts the chosen one with its hint shown', async () => {
    const suggest = vi.fn(async () => loraItems())
    const { wrapper } = mountBar({ suggest })
    await type(wrapper, 'a fox --lora ')
    expect(suggest).toHaveBeenCalledWith('a fox --lora ', 13, expect.anything())
    const options = wrapper.findAll('[role="option"]')
    expect(options.map((o) => o.find('.opt-label').text())).toEqual(['add_detail.safetensors', 'styles/film_grain.safetensors'])
    expect(options[1].find('.opt-desc').text()).toBe('loras/styles')
    const ta = wrapper.get('textarea')
    await ta.trigger('keydown', { key: 'ArrowDown' })
    expect(ta.attributes('aria-activedescendant')).toBe('prompt-suggestions-1')
    await ta.trigger('keydown', { key: 'Tab' })
    await flushPromises()
    expect((ta.element as HTMLTextAreaElement).value).toBe('a fox --lora styles/film_grain.safetensors ')
    wrapper.unmount()
  })

  it('asks again when ComfyUI lists new model files while the list is open', async () => {
    const { applyModelsEvent } = await import('../../stores/models')
    const suggest = vi.fn(async () => loraItems())
    const { wrapper } = mountBar({ suggest })
    await type(wrapper, 'a fox --lora ')
    const asked = suggest.mock.calls.length
    expect(wrapper.findAll('[role="option"]')).toHaveLength(2)
    applyModelsEvent({ models: { checkpoints: [], loras: ['add_detail.safetensors', 'new.safetensors'], embeddings: [], upscale_models: [] } })
    await flushPromises()
    expect(suggest.mock.calls.length).toBe(asked + 1)
    expect(suggest.mock.calls[asked]).toEqual(['a fox --lora ', 13, expect.anything()])
    wrapper.unmount()
  })
})

describe('several jobs from one prompt', () => {
  it('announces every job a permuted prompt made', async () => {
    const submit = vi.fn(async (t: string) => ({ jobs: [job(t), { ...job(t), id: 'j_two' }], count: 2 }))
    const { wrapper } = mountBar({ submit })
    await type(wrapper, 'a {red, blue} fox')
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(wrapper.emitted('submitted')?.map((e) => (e[0] as Job).id)).toEqual(['j_new', 'j_two'])
    wrapper.unmount()
  })

  it('lists the expansions and the multi-prompt translation the preview returns', async () => {
    const preview = vi.fn(async (text: string): Promise<PromptPreview> => ({
      clean_text: text, tokens: [], errors: [], warnings: [], patches: [], count: 2,
      expansions: [
        { text: 'a red fox', clean_text: 'a red fox', positive: '(a red fox:1.33)', negative: null, codes: {}, patches: [{ op: 'add', path: '/10', value: { class_type: 'LoraLoader' } }] },
        { text: 'a blue fox', clean_text: 'a blue fox', positive: null, negative: null, codes: {}, patches: [] },
      ],
    }))
    const { wrapper } = mountBar({ preview })
    await type(wrapper, 'a {red, blue} fox')
    await new Promise((r) => setTimeout(r, 5))
    await flushPromises()
    expect(wrapper.findAll('.expansions li').map((li) => li.text())).toEqual(['a red fox', 'a blue fox'])
    expect(wrapper.get('.translation').text()).toContain('(a red fox:1.33)')
    expect(wrapper.get('.graph-ops').text()).toContain('add /10')
    wrapper.unmount()
  })
})

describe('--iw and the image chip strength: one value', () => {
  afterEach(async () => {
    const { clearChips } = await import('./uploads')
    const { actionSlots } = await import('./actions')
    clearChips()
    actionSlots.value = []
  })

  it('maps image weight to denoise along the documented curve, both ways', async () => {
    const { denoiseForIw, iwForDenoise } = await import('./shortcodes')
    expect([0, 0.5, 1, 2, 3].map(denoiseForIw)).toEqual([1, 0.8, 0.6, 0.35, 0.15])
    expect([1, 0.8, 0.6, 0.35, 0.15].map(iwForDenoise)).toEqual([0, 0.5, 1, 2, 3])
  })

  it('moving the slider writes --iw, typing --iw moves the slider', async () => {
    const { chips } = await import('./uploads')
    const { actionSlots } = await import('./actions')
    actionSlots.value = [{ slot: 'img2img', label: 'Image to image', parameters: [{ name: 'denoise', default: 0.6 }] }]
    chips.push({ key: 'c3', name: 'cat.png', localUrl: null, image: { id: 'i_up', job_id: null, kind: 'upload', width: 8, height: 8, mime: 'image/png', url: '/u', thumb_url: '/t', created_at: '' }, uploading: false })
    const { wrapper, submit } = mountBar()
    await flushPromises()
    await type(wrapper, 'a cat')
    await wrapper.get('#img2img-strength').setValue('0.35')
    expect((wrapper.get('textarea').element as HTMLTextAreaElement).value).toBe('a cat --iw 2')
    expect(wrapper.get('.strength .iw').text()).toBe('--iw 2')
    await type(wrapper, 'a cat --iw 0.5')
    expect(wrapper.get('.strength output').text()).toBe('0.80')
    await wrapper.get('textarea').trigger('keydown', { key: 'Escape' }) // the code list, open after a value
    await wrapper.get('textarea').trigger('keydown', { key: 'Enter' })
    await flushPromises()
    expect(submit).toHaveBeenCalledWith('a cat --iw 0.5', ['i_up'], { denoise: 0.8 })
    wrapper.unmount()
  })
})
