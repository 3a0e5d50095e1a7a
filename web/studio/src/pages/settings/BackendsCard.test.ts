import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { api } from '../../api/client'
import type { SettingInfo } from '../../api/manage'
import BackendsCard from './BackendsCard.vue'

const setting = (over: Partial<SettingInfo>): SettingInfo => ({
  name: 'x',
  type: 'string',
  scope: 'global',
  default: null,
  value: null,
  help: '',
  label: over.name ?? 'x',
  section: 'backends',
  editable: true,
  ...over,
})
const ITEMS: SettingInfo[] = [
  setting({ name: 'comfy_backends', type: 'list', value: ['http://b:8188'], default: [], label: 'ComfyUI backends' }),
  setting({ name: 'requeue_lost_jobs', type: 'bool', value: false, default: false, label: 'Re-queue jobs of a lost backend' }),
]
const BACKENDS = {
  items: [
    { name: 'http://a:8188', url: 'http://a:8188', health: 'healthy', draining: false, load: 2, last_error: null, jobs_running: 1 },
    { name: 'http://b:8188', url: 'http://b:8188', health: 'unreachable', draining: false, load: 0, last_error: 'refused', jobs_running: 0 },
  ],
}

async function mountIt(owner = true) {
  vi.spyOn(api, 'get').mockResolvedValue(BACKENDS as never)
  const w = mount(BackendsCard, { props: { items: ITEMS, owner } })
  await flushPromises()
  return w
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('Backends card', () => {
  it('lists each backend with its health and load', async () => {
    const w = await mountIt()
    const rows = w.findAll('[data-backend]')
    expect(rows.map((r) => r.attributes('data-backend'))).toEqual(['http://a:8188', 'http://b:8188'])
    expect(rows[0].text()).toContain('Healthy · 2 queued · 1 running')
    expect(rows[1].text()).toContain('Unreachable')
    expect((w.get('#set-comfy_backends').element as HTMLTextAreaElement).value).toBe('http://b:8188')
  })

  it('drains a backend through its percent-encoded name', async () => {
    const w = await mountIt()
    const post = vi.spyOn(api, 'post').mockResolvedValue({ ...BACKENDS.items[0], draining: true } as never)
    await w.findAll('[data-backend] input[role="switch"]')[0].setValue(false)
    await flushPromises()
    expect(post).toHaveBeenCalledWith('/backends/http%3A%2F%2Fa%3A8188/drain', {})
    expect(w.findAll('[data-backend]')[0].text()).toContain('Draining')
  })

  it('saves the URLs one per line and the re-queue switch', async () => {
    const w = await mountIt()
    const patch = vi.spyOn(api, 'patch').mockResolvedValue({ items: ITEMS, dev_mode: false } as never)
    await w.get('#set-comfy_backends').setValue('http://b:8188\n  http://c:8188  \n')
    await w.get('#set-requeue_lost_jobs').setValue(true)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(patch).toHaveBeenCalledWith('/settings', { values: { comfy_backends: ['http://b:8188', 'http://c:8188'], requeue_lost_jobs: true } })
    expect(w.emitted('saved')).toBeTruthy()
  })

  it('shows other users the backends without the switches or the form', async () => {
    const w = await mountIt(false)
    expect(w.findAll('[data-backend]')).toHaveLength(2)
    expect(w.find('input[role="switch"]').exists()).toBe(false)
    expect(w.find('form').exists()).toBe(false)
  })
})
