import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import type { CivitaiModel } from '../../api/civitai'
import ImageTile from './ImageTile.vue'
import ModelTile from './ModelTile.vue'
import { CARD_THUMB, MODEL_CAPTION, thumbHeight } from './masonry'
import { civitaiImage } from './fixtures'

const img = civitaiImage(5, null)

describe('tiles', () => {
  it('reserve the thumbnail box before it loads, and load it lazily', () => {
    const h = thumbHeight(img.width, img.height, 240)
    const w = mount(ImageTile, { props: { image: img, width: 240, height: h } })
    const tag = w.get('img')
    expect(tag.attributes()).toMatchObject({ src: img.thumb_url, width: '240', height: String(h), loading: 'lazy', alt: '' })
    expect((w.get('.tile-thumb').element as HTMLElement).style.height).toBe(`${h}px`)
    expect(w.get('button.tile-open').attributes('aria-label')).toBe('Image by alice. Open details')
    expect(w.find('button.use').exists()).toBe(false) // no prompt shared: nothing to generate from
  })

  it('give a prompt card a fixed thumbnail strip', () => {
    const withPrompt = { ...img, meta: { prompt: 'a fox', negative_prompt: null, sampler: 'Euler', steps: 20, cfg_scale: 5, seed: 1, width: 832, height: 1216, clip_skip: null, model: null } }
    const w = mount(ImageTile, { props: { image: withPrompt, width: 300, height: 260, card: true } })
    expect(w.get('img').attributes('height')).toBe(String(CARD_THUMB))
    expect(w.text()).toContain('Euler · 20 steps · CFG 5')
    expect(w.find('button.use').exists()).toBe(true)
  })

  it('size a model card from its image plus the caption', () => {
    const model: CivitaiModel = {
      id: 1,
      name: 'DreamShaper',
      type: 'Checkpoint',
      nsfw: false,
      creator: 'lykon',
      tags: [],
      page_url: 'https://civitai.com/models/1',
      stats: { downloads: 1_234_567, likes: 1, rating: 5 },
      image: { url: img.url, thumb_url: img.thumb_url, width: 512, height: 768 },
      versions: [{ id: 9, name: 'v8', base_model: 'SD 1.5', page_url: '', files: [] }],
    }
    const h = thumbHeight(512, 768, 200) + MODEL_CAPTION
    const w = mount(ModelTile, { props: { model, width: 200, height: h } })
    expect(w.get('img').attributes('height')).toBe(String(h - MODEL_CAPTION))
    expect(w.text()).toContain('SD 1.5')
    expect(w.text()).toContain('1.2M downloads')
  })
})
