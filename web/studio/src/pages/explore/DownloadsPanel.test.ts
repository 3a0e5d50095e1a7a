import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { api } from '../../api/client'
import { applyDownloadEvent, downloads, type Download } from '../../stores/downloads'
import DownloadsPanel from './DownloadsPanel.vue'

const dl = (over: Partial<Download> = {}): Download => ({
  id: 'd1',
  state: 'downloading',
  model_version_id: 1,
  file_name: 'sdxl.safetensors',
  folder: 'checkpoints',
  bytes: 512 * 1024 * 1024,
  total: 2048 * 1024 * 1024,
  speed_bps: 16 * 1024 * 1024,
  eta_s: 96,
  error: null,
  ...over,
})

afterEach(() => {
  downloads.items = []
})

describe('downloads panel', () => {
  it('shows live progress from events and cancels', async () => {
    const w = mount(DownloadsPanel)
    expect(w.find('aside').exists()).toBe(false)
    applyDownloadEvent({ download: dl() })
    await flushPromises()
    expect(w.text()).toContain('512 MB of 2.0 GB · 16 MB/s · 2 min left')
    expect((w.get('progress').element as HTMLProgressElement).value).toBe(0.25)
    applyDownloadEvent({ download: dl({ bytes: 1024 * 1024 * 1024, eta_s: 64 }) })
    await flushPromises()
    expect((w.get('progress').element as HTMLProgressElement).value).toBe(0.5)

    const del = vi.spyOn(api, 'del').mockResolvedValue(dl({ state: 'cancelled' }) as never)
    await w.get('button[aria-label="Cancel the download of sdxl.safetensors"]').trigger('click')
    await flushPromises()
    expect(del).toHaveBeenCalledWith('/civitai/downloads/d1')
    expect(w.get('li').attributes('data-state')).toBe('cancelled')
    expect(w.find('button[aria-label^="Cancel"]').exists()).toBe(false)
  })

  it('says why a download failed', async () => {
    applyDownloadEvent({ download: dl({ state: 'error', error: "The file's SHA-256 does not match Civitai's." }) })
    const w = mount(DownloadsPanel)
    expect(w.text()).toContain("The file's SHA-256 does not match Civitai's.")
    expect(w.find('progress').exists()).toBe(false)
  })
})
