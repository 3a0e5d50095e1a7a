import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createMemoryHistory } from 'vue-router'
import { ApiError, api } from '../../api/client'
import type { CivitaiImage } from '../../api/civitai'
import { makeRouter } from '../../router'
import { session } from '../../stores/session'
import { pendingDraft } from '../../stores/promptDraft'
import { downloads } from '../../stores/downloads'
import ExplorePage from './ExplorePage.vue'
import { loadedKey } from './state'
import { civitaiImage } from './fixtures'

const MODEL = {
  id: 4384,
  name: 'DreamShaper',
  type: 'Checkpoint',
  nsfw: false,
  creator: 'Lykon',
  tags: ['anime'],
  page_url: 'https://civitai.com/models/4384',
  stats: { downloads: 1000, likes: 10, rating: 4.9 },
  image: null,
  versions: [
    { id: 128713, name: '8', base_model: 'SD 1.5', page_url: '', files: [{ id: 93, name: 'dreamshaper_8.safetensors', size_kb: 2082642, sha256: null, type: 'Model', primary: true }] },
    { id: 109123, name: '7', base_model: 'SD 1.5', page_url: '', files: [] },
  ],
}

interface Setup {
  nsfw?: string
  pages?: Record<string, { items: CivitaiImage[]; next_cursor: string | null; stale?: boolean }>
  fail?: unknown
}
function setup(o: Setup = {}) {
  const calls: Record<string, unknown>[] = []
  vi.spyOn(api, 'get').mockImplementation(async (path: string, query?: Record<string, unknown>) => {
    if (path === '/settings') return { items: [{ name: 'civitai_nsfw', value: o.nsfw ?? 'soft', section: 'civitai' }], dev_mode: false } as never
    if (path === '/civitai/images') {
      calls.push(query ?? {})
      if (o.fail) throw o.fail
      const p = o.pages?.[String(query?.cursor ?? '')]
      return (p ?? { items: [], next_cursor: null }) as never
    }
    if (path === '/civitai/models') {
      calls.push({ models: true, ...(query ?? {}) })
      return { items: [MODEL], next_cursor: null, stale: false } as never
    }
    if (path === '/civitai/downloads') return { items: [] } as never
    throw new ApiError('not_found', 'no', [], 404)
  })
  return calls
}

async function mountPage(path = '/explore') {
  const router = makeRouter(createMemoryHistory('/studio/'))
  await router.push(path)
  await router.isReady()
  const wrapper = mount(ExplorePage, { global: { plugins: [router] }, attachTo: document.body })
  await flushPromises()
  return { wrapper, router }
}

afterEach(() => {
  document.body.innerHTML = ''
  pendingDraft.value = null
  session.user = null
  downloads.items = []
  loadedKey.images = ''
  loadedKey.models = ''
})

describe('Explore page', () => {
  it('starts at the user content level and pages on the cursors without duplicates', async () => {
    const calls = setup({
      nsfw: 'soft',
      pages: {
        '': { items: [1, 2, 3].map((i) => civitaiImage(i)), next_cursor: 'c1' },
        c1: { items: [3, 4, 5].map((i) => civitaiImage(i)), next_cursor: 'c2' },
        c2: { items: [5, 6].map((i) => civitaiImage(i)), next_cursor: null },
      },
    })
    const { wrapper } = await mountPage()
    // the first pages did not fill the screen: the grid asked for the next ones itself
    await flushPromises()
    await flushPromises()
    expect(calls[0]).toMatchObject({ sort: 'Most Reactions', period: 'Week', nsfw: 'soft', limit: 50 })
    expect(calls.map((c) => c.cursor ?? null)).toEqual([null, 'c1', 'c2'])
    const ids = wrapper.findAll('article[data-id]').map((a) => a.attributes('data-id'))
    expect(ids).toEqual(['1', '2', '3', '4', '5', '6'])
    expect(wrapper.text()).toContain("That's everything.")
    const levels = wrapper.findAll('select[aria-label="Content level"] option').map((o) => o.attributes('value'))
    expect(levels).toEqual(['none', 'soft'])
  })

  it('never asks above the user setting, even from a link', async () => {
    const calls = setup({ nsfw: 'none', pages: { '': { items: [civitaiImage(1)], next_cursor: null } } })
    await mountPage('/explore?nsfw=x')
    expect(calls[0].nsfw).toBe('none')
  })

  it('says when results come from the cache, and when there are none', async () => {
    setup({ pages: { '': { items: [civitaiImage(1)], next_cursor: null, stale: true } } })
    const { wrapper } = await mountPage()
    expect(wrapper.find('[data-testid="stale-banner"]').exists()).toBe(true)
    wrapper.unmount()
    vi.restoreAllMocks()
    loadedKey.images = '' // a new search, not the one kept from before
    setup({ pages: {} })
    const empty = await mountPage()
    expect(empty.wrapper.find('[data-testid="explore-empty"]').exists()).toBe(true)
  })

  it('shows an error with a retry', async () => {
    setup({ fail: new ApiError('civitai_unavailable', 'Civitai is unreachable', [], 503) })
    const { wrapper } = await mountPage()
    expect(wrapper.get('[role="alert"]').text()).toContain("Civitai can't be reached")
    expect(wrapper.get('[role="alert"] button').text()).toBe('Try again')
  })

  it('shows prompts as text cards, only images that have one', async () => {
    setup({ pages: { '': { items: [civitaiImage(1), civitaiImage(2, null), civitaiImage(3)], next_cursor: null } } })
    const { wrapper } = await mountPage('/explore?tab=prompts')
    const cards = wrapper.findAll('article.text-card')
    expect(cards.map((c) => c.attributes('data-id'))).toEqual(['1', '3'])
    expect(cards[0].text()).toContain('prompt 1')
    expect(cards[0].text()).toContain('Euler a · 25 steps · CFG 6')
  })

  it('opens the detail with the generation settings, keyboard first', async () => {
    setup({ pages: { '': { items: [civitaiImage(7)], next_cursor: null } } })
    const { wrapper } = await mountPage()
    const open = wrapper.get('article[data-id="7"] button.tile-open')
    expect(open.element.tagName).toBe('BUTTON')
    await open.trigger('click')
    const dialog = wrapper.get('[role="dialog"]')
    expect(dialog.get('[data-testid="detail-prompt"]').text()).toBe('prompt 7')
    for (const s of ['Euler a', '25', '6', '832×1216', 'sdxl', 'blurry']) expect(dialog.text()).toContain(s)
    await dialog.trigger('keydown', { key: 'Escape' })
    expect(wrapper.find('[role="dialog"]').exists()).toBe(false)
  })

  it('generates from a tile: the prompt goes to the Create page', async () => {
    setup({ pages: { '': { items: [civitaiImage(8)], next_cursor: null } } })
    const post = vi.spyOn(api, 'post').mockResolvedValue({ text: 'prompt 8 --no blurry --seed 8', warnings: [], resources: [] } as never)
    const { wrapper, router } = await mountPage()
    await wrapper.get('article[data-id="8"] button.use').trigger('click')
    await flushPromises()
    expect(post).toHaveBeenCalledWith('/civitai/prompt', { image: civitaiImage(8) })
    expect(pendingDraft.value?.text).toBe('prompt 8 --no blurry --seed 8')
    expect(router.currentRoute.value.name).toBe('create')
  })
  it('lists models with their versions and lets the owner download a file', async () => {
    session.user = { username: 'owner', role: 'owner' }
    const calls = setup()
    const post = vi.spyOn(api, 'post').mockResolvedValue({ id: 'd1', state: 'queued', model_version_id: 128713, file_name: 'dreamshaper_8.safetensors', folder: 'checkpoints', bytes: 0, total: null, speed_bps: null, eta_s: null, error: null } as never)
    const { wrapper } = await mountPage('/explore?tab=models&types=Checkpoint')
    expect(calls.find((c) => c.models)).toMatchObject({ sort: 'Highest Rated', types: 'Checkpoint', nsfw: 'soft', limit: 40 })
    await wrapper.get('article[data-id="4384"] button.tile-open').trigger('click')
    const dialog = wrapper.get('[role="dialog"]')
    expect(dialog.get('[data-testid="base-model"]').text()).toBe('SD 1.5')
    expect(dialog.findAll('#detail-version option').map((o) => o.text())).toEqual(['8 — SD 1.5', '7 — SD 1.5'])
    await dialog.get('button[aria-label="Download dreamshaper_8.safetensors"]').trigger('click')
    await flushPromises()
    expect(post).toHaveBeenCalledWith('/civitai/downloads', { model_version_id: 128713, file_id: 93 })
    expect(wrapper.get('aside.downloads').text()).toContain('dreamshaper_8.safetensors')
  })
  it('shows the same results again when the user comes back, without asking Civitai again', async () => {
    const calls = setup({ pages: { '': { items: [civitaiImage(1), civitaiImage(2)], next_cursor: null } } })
    const first = await mountPage('/explore?tab=images&sort=Newest&period=Day')
    expect(calls).toHaveLength(1)
    first.wrapper.unmount()
    const again = await mountPage('/explore?tab=images&sort=Newest&period=Day')
    expect(calls).toHaveLength(1)
    expect(again.wrapper.findAll('article[data-id]').map((a) => a.attributes('data-id'))).toEqual(['1', '2'])
    again.wrapper.unmount()
    await mountPage('/explore?tab=images&sort=Newest&period=Week')
    expect(calls).toHaveLength(2)
  })
})
