import { afterEach, describe, expect, it, vi } from 'vitest'
import { enableAutoUnmount, flushPromises, mount } from '@vue/test-utils'
import ModelBanner from './ModelBanner.vue'
import { actionSlots } from './actions'
import { applyModelsEvent, loadModels, models } from '../../stores/models'
import { dismiss, toasts } from '../../stores/toasts'
import { status } from '../../stores/status'
import { api } from '../../api/client'

const NONE = { checkpoint: null, available: [], message: 'No checkpoint is installed' }
const lists = (checkpoints: string[] = [], embeddings: string[] = []) => ({ checkpoints, loras: [], embeddings, upscale_models: [] })

enableAutoUnmount(afterEach)

afterEach(() => {
  status.stream = 'connecting'
  models.status = null
  models.loaded = false
  models.lists = lists()
  actionSlots.value = []
  for (const t of [...toasts]) dismiss(t.id)
})

describe('models store', () => {
  it('reads the lists and the action status once, quietly without them', async () => {
    const get = vi.fn(async (path: string) => (path === '/models' ? lists(['a.safetensors']) : { ...NONE, checkpoint: 'a.safetensors' }))
    await loadModels({ get: get as never })
    expect(models.lists.checkpoints).toEqual(['a.safetensors'])
    expect(models.status?.checkpoint).toBe('a.safetensors')
    models.status = null
    await loadModels({ get: vi.fn(async () => Promise.reject(new Error('404'))) as never })
    expect(models.status).toBeNull()
  })

  it('takes a models event as it comes and ignores a malformed one', () => {
    applyModelsEvent({ models: lists([], ['neg.pt']), status: NONE })
    expect(models.lists.embeddings).toEqual(['neg.pt'])
    expect(models.status?.checkpoint).toBeNull()
    applyModelsEvent({ models: 'nonsense' })
    expect(models.lists.embeddings).toEqual(['neg.pt'])
  })
})

describe('first-run banner', () => {
  it('names what is missing, which actions wait for it and where a model goes', async () => {
    models.status = { ...NONE }
    models.loaded = true
    actionSlots.value = [
      { slot: 'generate', label: 'Generate', ready: false },
      { slot: 'upscale', label: 'Upscale (2×)', ready: false },
      { slot: 'vary', label: 'Vary', ready: false },
      { slot: 'remix', label: 'Remix', ready: false },
      { slot: 'mine', label: 'My stand-in', ready: true },
    ]
    const w = mount(ModelBanner, { props: { ready: true } })
    const text = w.text()
    expect(text).toContain('No checkpoint installed yet')
    expect(text).toContain('Generate, Upscale (2×), Vary and 1 more action need a Stable Diffusion checkpoint')
    expect(text).toContain('models/checkpoints')
    expect(text).toContain('Ready now, on your own workflows: My stand-in')
    expect(text).not.toMatch(/\/(home|root|usr|tmp)\//)
  })

  it('goes away by itself when a checkpoint arrives, and says so', async () => {
    actionSlots.value = [{ slot: 'generate', label: 'Generate', ready: false }]
    models.status = { ...NONE }
    models.loaded = true
    const w = mount(ModelBanner, { props: { ready: true } })
    expect(w.find('[role=status]').exists()).toBe(true)
    applyModelsEvent({ models: lists(['sdxl.safetensors']), status: { ...NONE, checkpoint: 'sdxl.safetensors', message: null } })
    await flushPromises()
    expect(w.find('[role=status]').exists()).toBe(false)
    expect(toasts[0].title).toBe('Checkpoint found')
    expect(toasts[0].message).toContain('sdxl.safetensors')
  })

  it('shows nothing while the status is unknown or when every action runs without a checkpoint', async () => {
    actionSlots.value = [{ slot: 'generate', label: 'Generate', ready: true }]
    const w = mount(ModelBanner, { props: { ready: false } })
    expect(w.html()).not.toContain('banner')
    models.status = { ...NONE }
    await flushPromises()
    expect(w.html()).not.toContain('banner') // reassigned to workflows that need no checkpoint
    actionSlots.value = [{ slot: 'generate', label: 'Generate', ready: false }]
    await flushPromises()
    expect(w.find('[role=status]').exists()).toBe(true)
    expect(w.text()).toContain('Generate needs a Stable Diffusion checkpoint')
    await w.get('button[aria-label="Hide this notice"]').trigger('click')
    expect(w.find('[role=status]').exists()).toBe(false)
  })

  it('reads the lists again after the stream had to reconnect', async () => {
    const get = vi.spyOn(api, 'get').mockResolvedValue({ ...NONE } as never)
    mount(ModelBanner, { props: { ready: true } })
    await flushPromises()
    get.mockClear()
    status.stream = 'reconnecting'
    await flushPromises()
    status.stream = 'open'
    await flushPromises()
    expect(get.mock.calls.map((c) => c[0]).sort()).toEqual(['/actions/status', '/models'])
    get.mockRestore()
  })
})

