import { beforeEach, describe, expect, it } from 'vitest'
import { handleEvent } from '../api/events'
import { createJobsStore } from './jobs'
import { applyDownloadEvent, applyDownloadList, downloads, reduceDownloads, type Download } from './downloads'
import { formatEta, fraction, progressText } from '../pages/explore/downloadText'

const dl = (over: Partial<Download> = {}): Download => ({
  id: 'd1',
  state: 'downloading',
  model_version_id: 128713,
  file_name: 'dreamshaper_8.safetensors',
  folder: 'checkpoints',
  bytes: 0,
  total: 2_000_000_000,
  speed_bps: null,
  eta_s: null,
  error: null,
  ...over,
})

beforeEach(() => {
  downloads.items = []
})

describe('downloads reducer', () => {
  it('adds new downloads first and updates known ones in place', () => {
    let list = reduceDownloads([], dl({ state: 'queued' }))
    list = reduceDownloads(list, dl({ id: 'd2', file_name: 'b.safetensors' }))
    expect(list.map((d) => d.id)).toEqual(['d2', 'd1'])
    list = reduceDownloads(list, dl({ bytes: 500_000_000, speed_bps: 10_000_000, eta_s: 150 }))
    expect(list.map((d) => d.id)).toEqual(['d2', 'd1'])
    expect(list[1]).toMatchObject({ state: 'downloading', bytes: 500_000_000 })
    expect(fraction(list[1])).toBe(0.25)
  })

  it('never takes a finished download back to running on a late progress event', () => {
    let list = reduceDownloads([], dl({ state: 'cancelled', bytes: 10 }))
    list = reduceDownloads(list, dl({ state: 'downloading', bytes: 20 }))
    expect(list[0]).toMatchObject({ state: 'cancelled', bytes: 10 })
    list = reduceDownloads([], dl({ state: 'verifying', bytes: 2_000_000_000 }))
    list = reduceDownloads(list, dl({ state: 'done', bytes: 2_000_000_000 }))
    expect(fraction(list[0])).toBe(1)
  })

  it('follows the event stream: `download` events fill the store, bad ones are ignored', () => {
    const jobs = createJobsStore()
    handleEvent(jobs, 'download', { download: dl({ bytes: 1_500_000_000, speed_bps: 8_400_000, eta_s: 62 }) })
    handleEvent(jobs, 'download', { download: { id: 7, state: 'nonsense' } })
    expect(downloads.items).toHaveLength(1)
    expect(progressText(downloads.items[0])).toBe('1.4 GB of 1.9 GB · 8.0 MB/s · 1 min left')
    applyDownloadEvent({ download: dl({ state: 'error', error: 'SHA-256 mismatch' }) })
    expect(downloads.items[0]).toMatchObject({ state: 'error', error: 'SHA-256 mismatch' })
    applyDownloadList([dl({ id: 'd0', state: 'done' }), dl({ state: 'downloading' })])
    expect(downloads.items.map((d) => [d.id, d.state])).toEqual([
      ['d0', 'done'],
      ['d1', 'error'],
    ])
  })

  it('says the time left in words', () => {
    expect(formatEta(null)).toBe('')
    expect(formatEta(0.2)).toBe('1 s left')
    expect(formatEta(42)).toBe('42 s left')
    expect(formatEta(600)).toBe('10 min left')
    expect(formatEta(3600 + 120)).toBe('1 h 2 min left')
    expect(progressText(dl({ state: 'queued', total: null, bytes: 0 }))).toBe('0 B')
  })
})
