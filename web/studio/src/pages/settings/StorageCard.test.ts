import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { storage, type Report, type UserUsage } from '../../api/storage'
import StorageCard from './StorageCard.vue'

const MINE: UserUsage = {
  usage: { originals: 10, trash: 0, thumbnails: 1, temp: 0 },
  total_bytes: 11,
  quota_bytes: 0,
  last_removed: null,
} as UserUsage
const REPORT = {
  usage: { originals: 4096, trash: 0, thumbnails: 512, temp: 100, database: 2048 },
  total_bytes: 6756,
  quota: { total: 0, per_user: 0 },
  notes: [],
  remove_bytes: 0,
  thumbnails_to_rebuild: 0,
  call_bodies: { count: 0, bytes: 0 },
  vacuum_due: false,
  runs: [],
  progress: { running: false },
} as unknown as Report

afterEach(() => vi.restoreAllMocks())

describe('Storage card', () => {
  it('asks for the whole report when the session shows the owner after the card mounted', async () => {
    const usage = vi.spyOn(storage, 'usage').mockResolvedValue(MINE)
    const report = vi.spyOn(storage, 'report').mockResolvedValue(REPORT)
    const card = mount(StorageCard, { props: { owner: false }, global: { stubs: { RouterLink: true } } })
    await flushPromises()
    expect(usage).toHaveBeenCalledTimes(1)
    expect(report).not.toHaveBeenCalled()

    await card.setProps({ owner: true })
    await flushPromises()
    expect(report).toHaveBeenCalledTimes(1)
    expect(card.find('.legend li[data-category=database]').exists()).toBe(true)
    expect(card.find('.legend li[data-category=originals]').text()).toContain('4')
  })
})
