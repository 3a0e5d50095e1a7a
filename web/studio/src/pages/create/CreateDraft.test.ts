import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { api } from '../../api/client'
import { pendingDraft, sendToPromptBar, shownDraft } from '../../stores/promptDraft'
import CreatePage from './CreatePage.vue'

afterEach(() => {
  document.body.innerHTML = ''
  pendingDraft.value = null
  shownDraft.value = null
})

describe('Create page and a prompt from Explore', () => {
  it('puts the prompt into the bar, focuses it, shows its note and submits nothing', async () => {
    vi.spyOn(api, 'get').mockResolvedValue({ items: [], next_cursor: null } as never)
    const post = vi.spyOn(api, 'post').mockResolvedValue({ clean_text: '', tokens: [], errors: [], warnings: [], patches: [] } as never)
    sendToPromptBar({
      text: 'a castle at dusk --no blurry --ar 3:2 --seed 1234 --steps 30 --cfg 7',
      warnings: ['<lora:glow:0.7> was removed: glow is not on this computer'],
      resources: [],
      source: { label: 'Civitai image by alice', url: 'https://civitai.com/images/1' },
    })
    const page = mount(CreatePage, { props: { ready: false }, attachTo: document.body })
    await flushPromises()
    await vi.dynamicImportSettled()
    await flushPromises()
    const ta = page.get('#prompt-input').element as HTMLTextAreaElement
    expect(ta.value).toBe('a castle at dusk --no blurry --ar 3:2 --seed 1234 --steps 30 --cfg 7')
    expect(document.activeElement).toBe(ta)
    expect(pendingDraft.value).toBe(null)
    expect(page.get('[data-testid="draft-note"]').text()).toContain('<lora:glow:0.7> was removed')
    expect(post).not.toHaveBeenCalledWith('/generate', expect.anything())
    page.unmount()
  })
})
