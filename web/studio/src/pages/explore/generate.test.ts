import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { api } from '../../api/client'
import type { CivitaiImage, PromptFromImage } from '../../api/civitai'
import PromptBar from '../create/PromptBar.vue'
import DraftNote from '../create/DraftNote.vue'
import { landDraft, pendingDraft, shownDraft } from '../../stores/promptDraft'
import { session } from '../../stores/session'
import { downloads } from '../../stores/downloads'
import { generateFromImage } from './generate'

const IMAGE: CivitaiImage = {
  id: 101,
  url: 'https://image.civitai.com/x/abc/original=true/101.jpeg',
  thumb_url: 'https://image.civitai.com/x/abc/width=450,optimized=true/101.jpeg',
  width: 1024,
  height: 1536,
  nsfw_level: 'None',
  username: 'alice',
  created_at: '2026-11-30T10:00:00Z',
  post_id: 9,
  page_url: 'https://civitai.com/images/101',
  stats: { likes: 3, hearts: 1, comments: 0, laughs: 0, cries: 0 },
  meta: {
    prompt: 'a castle at dusk, <lora:glow:0.7>',
    negative_prompt: 'blurry',
    sampler: 'Euler a',
    steps: 30,
    cfg_scale: 7,
    seed: 1234,
    width: 1024,
    height: 1536,
    clip_skip: 2,
    model: 'dreamshaper_8',
  },
  resources: [{ type: 'lora', name: 'glow', hash: 'abcd', model_version_id: 555, weight: 0.7 }],
}

const ANSWER: PromptFromImage = {
  text: 'a castle at dusk --no blurry --ar 2:3 --seed 1234 --steps 30 --cfg 7',
  warnings: ['LoRA glow is not on this computer: its tag was removed'],
  resources: [
    { type: 'checkpoint', name: 'DreamShaper 8', hash: 'ff', model_version_id: 128713, present: true, local_name: 'dreamshaper_8.safetensors', folder: 'checkpoints', page_url: null },
    { type: 'lora', name: 'glow', hash: 'abcd', model_version_id: 555, present: false, local_name: null, folder: 'loras', page_url: 'https://civitai.com/models/1?modelVersionId=555' },
  ],
}

afterEach(() => {
  document.body.innerHTML = ''
  pendingDraft.value = null
  shownDraft.value = null
  session.user = null
  downloads.items = []
})

describe('generate from this prompt', () => {
  it('sends the image as listed, then lands the text in the prompt bar, focused and not submitted', async () => {
    const post = vi.spyOn(api, 'post').mockResolvedValue(ANSWER as never)
    const push = vi.fn(async () => undefined)
    await generateFromImage(IMAGE, { push } as never)
    expect(post).toHaveBeenCalledWith('/civitai/prompt', { image: IMAGE })
    expect(push).toHaveBeenCalledWith({ name: 'create' })
    expect(pendingDraft.value?.text).toBe(ANSWER.text)

    const submit = vi.fn()
    const bar = mount(PromptBar, { props: { submit, loadHistory: async () => [], previewDelay: 10_000 }, attachTo: document.body })
    await flushPromises()
    expect(landDraft(bar.vm as never)).toBe(true)
    await flushPromises()
    const ta = bar.get('textarea').element as HTMLTextAreaElement
    expect(ta.value).toBe(ANSWER.text)
    expect(document.activeElement).toBe(ta)
    expect(submit).not.toHaveBeenCalled()
    expect(pendingDraft.value).toBe(null) // taken once
    expect(landDraft(bar.vm as never)).toBe(false)
    expect(shownDraft.value?.warnings).toEqual(ANSWER.warnings)
  })

  it('lists the image resources: present ones marked, missing ones with their page and a Download for the owner', async () => {
    session.user = { username: 'owner', role: 'owner' }
    const post = vi.spyOn(api, 'post').mockResolvedValue({ id: 'd1', state: 'queued', model_version_id: 555, file_name: 'glow.safetensors', folder: 'loras', bytes: 0, total: null, speed_bps: null, eta_s: null, error: null } as never)
    const draft = { ...ANSWER, source: { label: 'Civitai image by alice', url: IMAGE.page_url } }
    const note = mount(DraftNote, { props: { draft } })
    expect(note.text()).toContain('LoRA glow is not on this computer')
    const present = note.get('[data-present="true"]')
    expect(present.text()).toContain('dreamshaper_8.safetensors')
    const missing = note.get('[data-present="false"]')
    expect(missing.get('a').attributes('href')).toBe('https://civitai.com/models/1?modelVersionId=555')
    await missing.get('button').trigger('click')
    await flushPromises()
    expect(post).toHaveBeenCalledWith('/civitai/downloads', { model_version_id: 555, file_id: null })
    expect(note.get('[data-present="false"]').text()).toContain('Waiting · 0 B')
  })

  it('offers no Download to other users', () => {
    session.user = { username: 'bob', role: 'user' }
    const note = mount(DraftNote, { props: { draft: { ...ANSWER, source: null } } })
    expect(note.get('[data-present="false"]').find('button').exists()).toBe(false)
    expect(note.get('[data-present="false"]').text()).toContain('missing')
  })
})
